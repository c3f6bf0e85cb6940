/* capture.c — accepting events sent with a project token (phc_), as
 * PostHog's /e/, /batch/, /capture/ and /i/v0/e/ do.
 *
 * The SDKs send three shapes: one event object (posthog-js, /capture/),
 * an array of events (posthog-js batches) or {api_key, batch: [...]}
 * (posthog-node, posthog-python).  Each event needs a name and a
 * distinct id (top level, properties.distinct_id or $distinct_id, as
 * PostHog reads them); anything else is kept as sent: properties verbatim
 * (re-serialized compactly), uuid when the SDK gave one, timestamp when it
 * parses (else the time of arrival, as PostHog does).  A refusal names the
 * field and uses PostHog's texts ("Invalid payload: …", code
 * invalid_payload).  The whole request is stored in one transaction or not
 * at all, so an SDK retrying a failed batch never half-duplicates it.
 * Capture writes no activity entry: events are data, not administration.
 *
 * Staging (validation, copies) and storing are separate steps, so the
 * server can stage on the request's thread and store many requests'
 * batches in one transaction (capture_group.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events/capture_batch.h"
#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keyward/strbuf.h"
#include "store/txn.h"
#include "keyward/validate.h"

/* The project token: api_key, token or $token at the top (or of the
 * first event of an array), else properties.token (posthog-js). */
static const char *token_of(const json_t *o)
{
    static const char *const FIELDS[] = {"api_key", "token", "$token"};
    if (!json_is_object(o)) return NULL;
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(o, FIELDS[i]);
        if (json_is_string(v) && json_string_length(v)) return json_string_value(v);
    }
    json_t *props = json_object_get(o, "properties");
    for (size_t i = 1; i < 3; i++) {
        json_t *v = json_object_get(props, FIELDS[i]);
        if (json_is_string(v) && json_string_length(v)) return json_string_value(v);
    }
    return NULL;
}

const char *kw_payload_token(const json_t *payload)
{
    if (json_is_array(payload)) return token_of(json_array_get(payload, 0));
    const char *t = token_of(payload);
    if (!t) t = token_of(json_array_get(json_object_get(payload, "batch"), 0));
    return t;
}

static int invalid(kw_problem *p, const char *attr, const char *detail)
{
    kw_problem_set(p, KW_P_VALIDATION, "invalid_payload", attr, "Invalid payload: %s", detail);
    return 1;
}

/* PostgreSQL text (and jsonb) cannot hold NUL; refuse it everywhere. */
static int has_nul(const json_t *v)
{
    const char *key;
    json_t *item;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_STRING: return strlen(json_string_value(v)) != json_string_length(v);
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, item)
            if (has_nul(item)) return 1;
        return 0;
    case JSON_ARRAY:
        json_array_foreach(v, i, item)
            if (has_nul(item)) return 1;
        return 0;
    default: return 0;
    }
}

/* Copies at most `max` bytes of s without splitting a UTF-8 sequence. */
static void copy_utf8(char *dst, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max) {
        n = max;
        while (n && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
}

/* PostHog reads the id from these places, in this order; numbers become
 * text ("2"). */
static int distinct_id_of(const json_t *e, const json_t *props, char *out)
{
    const json_t *where[] = {json_object_get(e, "distinct_id"), json_object_get(props, "distinct_id"),
                             json_object_get(e, "$distinct_id")};
    for (size_t i = 0; i < 3; i++) {
        const json_t *v = where[i];
        if (json_is_string(v) && json_string_length(v)) {
            copy_utf8(out, json_string_value(v), KW_DISTINCT_ID_MAX);
            return 0;
        }
        if (json_is_integer(v)) {
            snprintf(out, KW_DISTINCT_ID_MAX + 1, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            return 0;
        }
    }
    return 1;
}

/* The batch's text: every string its events need, each followed by its
 * NUL, in one heap builder; strings are placed by offset while the builder
 * may still move.  Its limit only stops a runaway: the text is about the
 * size of the request body, which the server bounds far lower. */
#define CAPTURE_TEXT_LIMIT ((size_t)64 << 20)
/* Spare room above this is handed back once the text is complete. */
#define TEXT_SLACK_KEPT ((size_t)64 << 10)

static void text_add(kw_strbuf *t, const char *s, size_t n, size_t *at)
{
    *at = kw_sb_len(t);
    kw_sb_appendn(t, s, n);
    kw_sb_appendn(t, "", 1);  /* the string's own NUL, kept in the text */
}

static int dump_to_text(const char *buffer, size_t size, void *data)
{
    kw_sb_appendn(data, buffer, size);
    return kw_sb_ok(data) ? 0 : -1;
}

/* A JSON value as compact text: 0, or -1 when jansson could not dump it
 * (the builder's own overflow is seen by kw_sb_ok). */
static int text_add_json(kw_strbuf *t, const json_t *v, size_t *at)
{
    *at = kw_sb_len(t);
    int rc = json_dump_callback(v, dump_to_text, t, JSON_COMPACT);
    kw_sb_appendn(t, "", 1);
    return rc;
}

/* Where an event's strings are in the text, until the text stops moving. */
struct placed {
    size_t event, distinct_id, properties;
};

static int stage_event(const json_t *e, kw_event *out, struct placed *at, kw_strbuf *t,
                       kw_time now, kw_problem *p)
{
    if (!json_is_object(e)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid_payload", NULL,
                       "Invalid payload: All events must be dictionaries not '%s'!", kw_v_type_name(e));
        return 1;
    }
    json_t *name = json_object_get(e, "event");
    if (!json_is_string(name) || !json_string_length(name))
        return invalid(p, "event", "All events must have the event name field \"event\"!");
    if (json_string_length(name) > KW_EVENT_NAME_MAX)
        return invalid(p, "event", "Event names may not be longer than 400 bytes.");
    json_t *props = json_object_get(e, "properties");
    if (props && !json_is_null(props) && !json_is_object(props))
        return invalid(p, "properties", "Event properties must be an object.");
    char distinct_id[KW_DISTINCT_ID_MAX + 1];
    if (distinct_id_of(e, props, distinct_id))
        return invalid(p, "distinct_id", "All events must have the event field \"distinct_id\"!");
    if (has_nul(e)) return invalid(p, NULL, "Null characters are not allowed.");
    text_add(t, json_string_value(name), json_string_length(name), &at->event);
    text_add(t, distinct_id, strlen(distinct_id), &at->distinct_id);
    int dumped = 0;
    if (json_is_object(props))
        dumped = text_add_json(t, props, &at->properties);
    else
        text_add(t, "{}", 2, &at->properties);
    if (dumped || !kw_sb_ok(t)) return kw_storage_problem(p, KW_ERR_NOMEM);
    /* A gzip body of a few KiB inflates to megabytes of properties (an
     * array of zeros), which every endpoint reading the event back would
     * parse.  413, not 400: posthog-node halves a batch on 413 until the
     * event is alone, then drops it and delivers the rest, where a 400
     * drops the whole batch. */
    if (kw_sb_len(t) - at->properties - 1 > KW_EVENT_PROPERTIES_MAX) {
        kw_problem_set(p, KW_P_TOO_LARGE, NULL, "properties",
                       "An event's properties may be at most %zu bytes once serialized; this "
                       "one has %zu. Nothing of this request was stored.",
                       KW_EVENT_PROPERTIES_MAX, kw_sb_len(t) - at->properties - 1);
        return 1;
    }

    memset(out, 0, sizeof *out);
    json_t *uuid = json_object_get(e, "uuid");
    if (json_is_string(uuid) && json_string_length(uuid) && json_string_length(uuid) <= KW_ID_LEN)
        strcpy(out->uuid, json_string_value(uuid));
    else if (kw_uuid_v4(out->uuid))
        return kw_storage_problem(p, KW_ERR_CRYPTO);
    json_t *ts = json_object_get(e, "timestamp");
    if (!json_is_string(ts) || kw_time_parse(json_string_value(ts), &out->timestamp) ||
        out->timestamp < 0)
        out->timestamp = now;
    out->created_at = now;
    return 0;
}

void kw_capture_batch_free(kw_capture_batch *b)
{
    if (!b) return;
    free(b->text);
    free(b);
}

size_t kw_capture_batch_size(const kw_capture_batch *b) { return b ? b->n : 0; }

/* The list of events a payload carries, with a reference of its own. */
static json_t *event_list(json_t *payload, kw_problem *p)
{
    if (json_is_array(payload)) return json_incref(payload);
    if (!json_is_object(payload)) {
        invalid(p, NULL, "expected an event, a list of events or {\"batch\": [...]}.");
        return NULL;
    }
    json_t *batch = json_object_get(payload, "batch");
    if (batch && !json_is_array(batch)) {
        invalid(p, "batch", "\"batch\" must be a list.");
        return NULL;
    }
    if (batch) return json_incref(batch);
    json_t *one = json_array();
    if (!one || json_array_append(one, payload)) {
        json_decref(one);
        kw_storage_problem(p, KW_ERR_NOMEM);
        return NULL;
    }
    return one;
}

int kw_capture_stage(const kw_call *c, int64_t project_id, json_t *payload, kw_capture_batch **out,
                     kw_problem *p)
{
    (void)c;
    *out = NULL;
    json_t *list = event_list(payload, p);
    size_t n = json_array_size(list);
    kw_capture_batch *b = NULL;
    kw_strbuf t;
    kw_sb_init_heap(&t, CAPTURE_TEXT_LIMIT);
    int failed = 1;
    if (!list) goto done;
    if (n > KW_CAPTURE_MAX_EVENTS) {
        kw_problem_set(p, KW_P_TOO_LARGE, NULL, NULL,
                       "A request may carry at most %d events; this one has %zu.",
                       KW_CAPTURE_MAX_EVENTS, n);
        goto done;
    }
    /* the batch, its events and where their text goes, in one block */
    size_t block = sizeof *b + n * (sizeof(kw_event) + sizeof(struct placed));
    b = calloc(1, block);
    if (!b) {
        kw_storage_problem(p, KW_ERR_NOMEM);
        goto done;
    }
    b->project_id = project_id;
    b->events = (kw_event *)(b + 1);
    struct placed *at = (struct placed *)(b->events + n);
    kw_time now = kw_now();
    for (size_t i = 0; i < n; i++)
        if (stage_event(json_array_get(list, i), &b->events[i], &at[i], &t, now, p)) goto done;
    const char *names[KW_GROUP_TYPES_SEEN_MAX];
    size_t name_at[KW_GROUP_TYPES_SEEN_MAX];
    size_t n_names = kw_group_types_collect(list, names, KW_GROUP_TYPES_SEEN_MAX);
    for (size_t i = 0; i < n_names; i++) text_add(&t, names[i], strlen(names[i]), &name_at[i]);
    if (!kw_sb_ok(&t)) {
        kw_storage_problem(p, KW_ERR_NOMEM);
        goto done;
    }
    /* the text has stopped moving: point into it */
    /* The builder grows by doubling: a large batch gives back the slack
     * before it waits in a queue bounded by the memory it holds. */
    if (t.cap - t.len > TEXT_SLACK_KEPT) {
        char *fit = realloc(t.data, t.len + 1);
        if (fit) t.data = fit, t.cap = t.len + 1;
    }
    b->text = t.data;  /* the builder's heap buffer is now the batch's */
    b->bytes = block + t.cap;
    for (size_t i = 0; i < n; i++) {
        b->events[i].event = b->text + at[i].event;
        b->events[i].distinct_id = b->text + at[i].distinct_id;
        b->events[i].properties = b->text + at[i].properties;
    }
    for (size_t i = 0; i < n_names; i++) b->group_types[i] = b->text + name_at[i];
    b->n_group_types = n_names;
    b->n = n;
    failed = 0;
done:
    json_decref(list);
    json_decref(payload);  /* freed here, on the thread that parsed it */
    if (failed) {
        kw_sb_free(&t);
        free(b);
        return 1;
    }
    *out = b;
    return 0;
}

void kw_capture_batch_stored(const kw_call *c, const kw_capture_batch *b)
{
    if (b->n) kw_group_types_learn(c, b->project_id, b->group_types, b->n_group_types);
}

int kw_capture_refusal(const kw_call *c, const kw_capture_batch *b, int rc)
{
    if (rc != KW_ERR_EXISTS) return rc;
    kw_project project;
    return kw_store_project_get(c->store, b->project_id, &project) == KW_ERR_NOTFOUND
               ? KW_ERR_NOTFOUND : rc;
}

int kw_capture_store(const kw_call *c, kw_capture_batch *b)
{
    int rc = b->n ? kw_store_events_insert(c->store, b->project_id, b->events, b->n) : KW_OK;
    if (!rc) kw_capture_batch_stored(c, b);
    return kw_capture_refusal(c, b, rc);
}

int kw_capture_problem(kw_problem *p, int rc)
{
    if (rc != KW_ERR_NOTFOUND) return kw_storage_problem(p, rc);
    kw_problem_set(p, KW_P_AUTH_FAILED, "invalid_api_key", NULL, KW_MSG_PROJECT_TOKEN_INVALID);
    return 1;
}

int kw_capture_store_now(const kw_call *c, kw_capture_batch *b, size_t *stored, kw_problem *p)
{
    int rc = kw_capture_store(c, b);
    if (!rc) *stored = b->n;
    kw_capture_batch_free(b);
    return rc ? kw_capture_problem(p, rc) : 0;
}

int kw_capture(const kw_call *c, int64_t project_id, const json_t *payload, size_t *stored,
               kw_problem *p)
{
    *stored = 0;
    kw_capture_batch *b;
    if (kw_capture_stage(c, project_id, json_incref((json_t *)payload), &b, p)) return 1;
    return kw_capture_store_now(c, b, stored, p);
}
