/* webhook.c — an organization's webhooks (create, change, delete, test)
 * and the key events they receive (see webhook.h).
 *
 * Every rule about a webhook's fields lives in parse_fields, shared by
 * create and update, so a PATCH cannot store what a POST would refuse.
 * URLs are checked for shape only (http or https, a host, no spaces or
 * control characters, no credentials); where they may point is the
 * sender's rule (docs/webhooks.md, "SSRF"), checked on the address each
 * delivery actually connects to.  Changes are written with an activity
 * entry at organization level; the secret never enters one. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keyward/validate.h"
#include "keyward/webhook.h"
#include "store/txn.h"

#define AUDIT_SCOPE "Webhook"
#define EVENTS_LIST_MAX 16

/* The key events first, in the order of ACTIVITIES below. */
/* The key events first, in the order of ACTIVITIES. */
const char *const kw_webhook_event_names[] = {
    "key.created",       "key.rolled",  "key.deleted",      "key.revoked",
    "key.expiring_soon", "key.expired", "key.rate_limited", "webhook.test",
    NULL};
static const char *const ACTIVITIES[] = {"created",       "rolled",  "deleted",     "revoked",
                                         "expiring_soon", "expired", "rate_limited"};

static int known_event(const char *name)
{
    for (int i = 0; kw_webhook_event_names[i]; i++)
        if (strcmp(name, kw_webhook_event_names[i]) == 0) return 1;
    return 0;
}

/* http:// or https://, a non-empty host, printable ASCII without spaces,
 * no user:password@ (a credential would be stored and shown). */
static int url_ok(const char *url)
{
    const char *rest;
    if (strncmp(url, "http://", 7) == 0)
        rest = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        rest = url + 8;
    else
        return 0;
    for (const unsigned char *c = (const unsigned char *)url; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f) return 0;
    size_t host = strcspn(rest, "/?#");
    if (host == 0 || rest[0] == ':') return 0;
    if (memchr(rest, '@', host)) return 0;
    return 1;
}

static int bad(kw_problem *p, const char *attr, const char *detail)
{
    kw_problem_set(p, KW_P_VALIDATION, "invalid_input", attr, "%s", detail);
    return 1;
}

/* Reads the fields present in `body` into *w; `creating` makes url
 * required.  0, or 1 with *p filled. */
static int parse_fields(const json_t *body, int creating, kw_webhook *w, kw_problem *p)
{
    const char *url;
    json_t *events;
    int has_enabled = 0, enabled = 1;
    if (kw_v_object(body, p)) return 1;
    if (kw_v_string(body, "url", creating, KW_WEBHOOK_URL_MAX, 0, &url, p)) return 1;
    if (url && (strlen(url) > KW_WEBHOOK_URL_MAX || !url_ok(url)))
        return bad(p, "url", "Enter a valid URL: http:// or https:// followed by a host, "
                             "without credentials, spaces or control characters.");
    if (kw_v_list(body, "events", 0, 0, &events, p)) return 1;
    if (events) {
        if (kw_v_list_length(events, "events", 1, EVENTS_LIST_MAX, p)) return 1;
        size_t i;
        json_t *item;
        json_array_foreach(events, i, item) {
            if (!json_is_string(item) || !known_event(json_string_value(item))) {
                kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "events",
                               "Unknown event: %.64s. Known events: key.created, key.rolled, "
                               "key.deleted, key.revoked, key.expiring_soon, key.expired, "
                               "webhook.test.",
                               json_is_string(item) ? json_string_value(item) : kw_v_type_name(item));
                return 1;
            }
        }
    }
    if (kw_v_bool(body, "enabled", &has_enabled, &enabled, p)) return 1;
    if (url) snprintf(w->url, sizeof w->url, "%s", url);
    if (events) {
        char *text = json_dumps(events, JSON_COMPACT);
        if (!text) return kw_storage_problem(p, KW_ERR_NOMEM);
        if (strlen(text) >= sizeof w->events) {
            free(text);
            return bad(p, "events", "Ensure this field is shorter.");
        }
        strcpy(w->events, text);
        free(text);
    } else if (creating) {
        strcpy(w->events, "[]");
    }
    if (has_enabled)
        w->enabled = enabled;
    else if (creating)
        w->enabled = 1;
    return 0;
}

/* The entry names the URL's scheme and host only: a receiver's path or
 * query often carries a token of its own (chat services' incoming-hook
 * URLs are credentials), and the activity log has more readers than the
 * webhook routes. */
static int audit(const kw_call *c, const kw_webhook *w, const char *activity)
{
    const char *host = strstr(w->url, "://");
    size_t origin = host ? (size_t)(host + 3 - w->url) + strcspn(host + 3, "/?#") : 0;
    char name[KW_WEBHOOK_URL_MAX + 1];
    snprintf(name, sizeof name, "%.*s", (int)origin, w->url);
    return kw_audit_record(c, 0, w->org_id, activity, AUDIT_SCOPE, w->id, name, NULL);
}

int kw_webhook_load(const kw_call *c, const char *org_id, const char *id, kw_webhook *out,
                    kw_problem *p)
{
    int rc = *id ? kw_store_webhook_get(c->store, org_id, id, out) : KW_ERR_NOTFOUND;
    if (rc == KW_ERR_NOTFOUND) {
        kw_problem_set(p, KW_P_NOT_FOUND, NULL, NULL, KW_MSG_NOT_FOUND);
        return 1;
    }
    return rc ? kw_storage_problem(p, rc) : 0;
}

int kw_webhook_create(const kw_call *c, const char *org_id, const json_t *body, kw_webhook *out,
                      kw_problem *p)
{
    memset(out, 0, sizeof *out);
    snprintf(out->org_id, sizeof out->org_id, "%s", org_id);
    if (parse_fields(body, 1, out, p)) return 1;
    out->created_by = c->actor ? c->actor->user_id : 0;
    out->created_at = kw_now();
    if (kw_uuid_v4(out->id) || kw_webhook_new_secret(out->secret))
        return kw_storage_problem(p, KW_ERR_CRYPTO);
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    /* The count and the insert under the organization's row lock
     * (PostgreSQL; SQLite has one writer), so two concurrent creates
     * cannot both pass the limit. */
    int64_t n = 0;
    rc = kw_store_org_lock(c->store, org_id);
    if (!rc) rc = kw_store_webhook_count(c->store, org_id, &n);
    if (!rc && n >= KW_WEBHOOK_MAX_PER_ORG) {
        kw_store_rollback(c->store);
        kw_problem_set(p, KW_P_VALIDATION, "invalid_input", NULL,
                       "An organization can have at most %d webhooks.", KW_WEBHOOK_MAX_PER_ORG);
        return 1;
    }
    if (!rc) rc = kw_store_webhook_insert(c->store, out);
    if (!rc) rc = audit(c, out, "created");
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

int kw_webhook_update(const kw_call *c, const char *org_id, const char *id, const json_t *body,
                      kw_webhook *out, kw_problem *p)
{
    if (kw_webhook_load(c, org_id, id, out, p) || parse_fields(body, 0, out, p)) return 1;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_webhook_update(c->store, out);
    if (!rc) rc = audit(c, out, "updated");
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

int kw_webhook_delete(const kw_call *c, const char *org_id, const char *id, kw_problem *p)
{
    kw_webhook w;
    if (kw_webhook_load(c, org_id, id, &w, p)) return 1;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_webhook_delete(c->store, org_id, id);  /* its outbox goes with it */
    if (!rc) rc = audit(c, &w, "deleted");
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

static json_t *time_json(kw_time t)
{
    char text[KW_TIME_TEXT];
    kw_time_format(t, text);
    return json_string(text);
}

/* {"type", "timestamp", "data"}: the Standard Webhooks payload shape. */
static char *payload_text(const char *event, kw_time now, json_t *data)
{
    json_t *obj = json_pack("{s:s, s:o, s:o}", "type", event, "timestamp", time_json(now),
                            "data", data);
    if (!obj) return NULL;
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return text;
}

static int enqueue(const kw_call *c, const char *org_id, const char *only, const char *event,
                   json_t *data)
{
    kw_time now = kw_now();
    char *text = payload_text(event, now, data);
    if (!text) return KW_ERR_NOMEM;
    int rc = kw_store_webhook_enqueue(c->store, org_id, only, event, text, now);
    free(text);
    return rc;
}

/* One pending test per webhook: a test is for seeing a receiver answer,
 * and more of them only lengthen the queue a failing receiver holds.
 * The check and the insert run under the organization's row lock
 * (PostgreSQL; SQLite has one writer), so two tests at once queue one. */
int kw_webhook_test(const kw_call *c, const char *org_id, const char *id, int *retry_after,
                    kw_problem *p)
{
    kw_webhook w;
    *retry_after = 0;
    if (kw_webhook_load(c, org_id, id, &w, p)) return 1;
    if (!w.enabled) {
        kw_problem_set(p, KW_P_VALIDATION, "webhook_disabled", "enabled",
                       "This webhook is paused (enabled: false): nothing is queued for it.");
        return 1;
    }
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    kw_time pending = 0;
    rc = kw_store_org_lock(c->store, org_id);
    if (!rc) rc = kw_store_outbox_pending_test(c->store, w.id, &pending);
    if (!rc && pending) {
        kw_store_rollback(c->store);
        /* Until its next attempt, or the webhook's wait after a failure. */
        kw_time until = pending > w.held_until ? pending : w.held_until, now = kw_now();
        int64_t secs = until > now ? (until - now + 999999) / 1000000 : 1;
        *retry_after = secs < 1 ? 1 : secs > 86400 ? 86400 : (int)secs;
        kw_problem_set(p, KW_P_THROTTLED, NULL, NULL,
                       "A test of this webhook is still pending: see its deliveries. "
                       "Expected available in %d second%s.",
                       *retry_after, *retry_after == 1 ? "" : "s");
        return 1;
    }
    if (!rc)
        rc = enqueue(c, org_id, w.id, "webhook.test",
                     json_pack("{s:s, s:s}", "webhook_id", w.id, "organization_id", org_id));
    if (rc == KW_ERR_LIMIT) {
        kw_store_rollback(c->store);
        *retry_after = 60;
        kw_problem_set(p, KW_P_THROTTLED, NULL, NULL,
                       "This webhook has %d events still to deliver: no test is queued. "
                       "Expected available in 60 seconds.", KW_WEBHOOK_PENDING_MAX);
        return 1;
    }
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

int kw_webhook_key_event(const kw_call *c, const char *org_id, const char *activity,
                         const kw_webhook_key *key, const json_t *context)
{
    const char *event = NULL;
    for (size_t i = 0; i < sizeof ACTIVITIES / sizeof ACTIVITIES[0]; i++)
        if (strcmp(activity, ACTIVITIES[i]) == 0) event = kw_webhook_event_names[i];
    if (!event || !org_id || !org_id[0]) return KW_OK;
    /* Never the value or its hash: what identifies the key to a person. */
    json_t *data = json_pack("{s:s, s:s, s:s?, s:s?, s:s}", "id", key->id, "kind", key->kind,
                             "label", key->label, "mask_value", key->mask, "organization_id",
                             org_id);
    if (!data) return KW_ERR_NOMEM;
    if (key->project_id) json_object_set_new(data, "project_id", json_integer(key->project_id));
    if (key->user_id) json_object_set_new(data, "user_id", json_integer(key->user_id));
    if (key->expires_at) json_object_set_new(data, "expires_at", time_json(key->expires_at));
    if (context) json_object_set_new(data, "context", json_deep_copy(context));
    if (c->actor && c->actor->user_id)
        json_object_set_new(data, "actor_user_id", json_integer(c->actor->user_id));
    return enqueue(c, org_id, NULL, event, data);
}

/* A key refused for its rate limit, announced once a minute per instance
 * (the verifier notes the first refusal of each minute): to every
 * organization the key reaches, with its limit.  The key is read again,
 * so an event never names a key deleted meanwhile. */
int kw_webhook_rate_limited(const kw_call *c, const kw_rate_notice *n)
{
    json_t *context = json_pack("{s:i, s:o}", "rate_limit_per_minute", n->per_minute,
                                "first_refused_at", time_json(n->at));
    if (!context) return KW_ERR_NOMEM;
    int rc = kw_store_begin(c->store);
    if (rc) {
        json_decref(context);
        return rc;
    }
    if (n->kind == KW_KEY_PERSONAL) {
        kw_pkey key;
        rc = kw_store_pkey_get(c->store, n->user_id, n->key_id, &key);
        if (!rc) rc = kw_webhook_personal_key_event(c, &key, "rate_limited", context);
    } else if (n->kind == KW_KEY_SECRET) {
        kw_psk key;
        kw_project project;
        memset(&key, 0, sizeof key);
        rc = kw_store_psk_get(c->store, n->project_id, n->key_id, &key);
        if (!rc) rc = kw_store_project_get(c->store, n->project_id, &project);
        kw_webhook_key k = {key.id, key.label, key.mask_value, "project_secret", key.project_id,
                            0, key.expires_at};
        if (!rc) rc = kw_webhook_key_event(c, project.org_id, "rate_limited", &k, context);
    }
    json_decref(context);
    if (rc == KW_ERR_NOTFOUND) rc = KW_OK;  /* gone since: nothing to announce */
    if (rc) {
        kw_store_rollback(c->store);
        return rc;
    }
    return kw_store_commit(c->store);
}
