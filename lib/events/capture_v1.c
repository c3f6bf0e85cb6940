/* capture_v1.c — PostHog's Capture V1 batches (POST /i/v1/analytics/events,
 * posthog-node 5's POSTHOG_CAPTURE_MODE=v1), stored like every other
 * captured event.
 *
 * A V1 batch is {created_at, historical_migration?, batch: [event]}, the
 * token travelling as a bearer token instead of in the body.  Its events
 * lift what older bodies carried as properties out of them: $session_id
 * and $window_id become top-level session_id / window_id, the sentinel
 * properties ($process_person_profile, $cookieless_mode, $ignore_sent_at,
 * $product_tour_id) become typed `options`, and $lib / $lib_version are
 * dropped because the server takes them from the PostHog-Sdk-Info header.
 * Each event is folded back into the shape the rest of keyward stores
 * (the properties as the SDK had them before it sent them) and handed to
 * kw_capture, so validation, limits and the all-or-nothing transaction
 * are the same as on /batch/. */
#include <string.h>

#include "events/capture_batch.h"
#include "keyward/keyward.h"
#include "keyward/service.h"

/* options field → the property it was lifted from. */
static const struct {
    const char *option, *property;
} OPTIONS[] = {
    {"cookieless_mode", "$cookieless_mode"},
    {"disable_skew_correction", "$ignore_sent_at"},
    {"process_person_profile", "$process_person_profile"},
    {"product_tour_id", "$product_tour_id"},
};

static int invalid(kw_problem *p, const char *attr, const char *detail)
{
    kw_problem_set(p, KW_P_VALIDATION, "invalid_payload", attr, "Invalid payload: %s", detail);
    return 1;
}

/* Sets props[name] = v unless the properties already name it (what the
 * SDK put in the properties wins, as PostHog reads it). */
static void put(json_t *props, const char *name, json_t *v)
{
    if (v && !json_object_get(props, name)) json_object_set(props, name, v);
}

/* One V1 event as an older event body; NULL when it cannot be one (the
 * caller then passes it as is, so kw_capture gives its usual refusal). */
static json_t *fold(const json_t *e, const char *lib, const char *lib_version, kw_problem *p,
                    int *bad)
{
    json_t *opts = json_object_get(e, "options");
    if (opts && !json_is_null(opts) && !json_is_object(opts)) {
        *bad = invalid(p, "options", "Event options must be an object.");
        return NULL;
    }
    json_t *props_in = json_object_get(e, "properties");
    if (props_in && !json_is_null(props_in) && !json_is_object(props_in)) return NULL;
    json_t *out = json_copy((json_t *)e);
    json_t *props = json_is_object(props_in) ? json_copy(props_in) : json_object();
    if (!out || !props) {
        json_decref(out);
        json_decref(props);
        *bad = kw_problem_from_store(p, KW_ERR_NOMEM);
        return NULL;
    }
    json_t *sid = json_object_get(e, "session_id"), *wid = json_object_get(e, "window_id");
    put(props, "$session_id", json_is_string(sid) ? sid : NULL);
    put(props, "$window_id", json_is_string(wid) ? wid : NULL);
    for (size_t i = 0; i < sizeof OPTIONS / sizeof OPTIONS[0]; i++)
        put(props, OPTIONS[i].property, json_object_get(opts, OPTIONS[i].option));
    if (lib) {
        json_t *l = json_string(lib), *v = lib_version ? json_string(lib_version) : NULL;
        put(props, "$lib", l);
        put(props, "$lib_version", v);
        json_decref(l);
        json_decref(v);
    }
    json_object_del(out, "session_id");
    json_object_del(out, "window_id");
    json_object_del(out, "options");
    json_object_set_new(out, "properties", props);
    return out;
}

/* "posthog-node/5.70.0" → lib and version (each ≤ 63 bytes of printable
 * ASCII); anything else names no library. */
static void split_sdk_info(const char *info, char lib[64], char version[64])
{
    lib[0] = version[0] = '\0';
    if (!info) return;
    const char *slash = strrchr(info, '/');
    size_t n = slash ? (size_t)(slash - info) : 0, m = slash ? strlen(slash + 1) : 0;
    if (!n || n > 63 || m > 63) return;
    for (const char *s = info; *s; s++)
        if (*s <= 0x20 || *s >= 0x7f || *s == '"') return;
    memcpy(lib, info, n);
    lib[n] = '\0';
    memcpy(version, slash + 1, m + 1);
}

int kw_capture_v1_stage(const kw_call *c, int64_t project_id, json_t *payload,
                        const char *sdk_info, kw_capture_batch **out, kw_problem *p)
{
    *out = NULL;
    json_t *batch = json_object_get(payload, "batch");
    int bad = !json_is_object(payload) ? invalid(p, NULL, "expected {\"batch\": [...]}.")
              : !json_is_array(batch)  ? invalid(p, "batch", "\"batch\" must be a list.")
                                       : 0;
    if (bad) {
        json_decref(payload);
        return 1;
    }
    if (json_array_size(batch) > KW_CAPTURE_MAX_EVENTS)
        return kw_capture_stage(c, project_id, payload, out, p);  /* its 413 */
    char lib[64], version[64];
    split_sdk_info(sdk_info, lib, version);
    json_t *events = json_array();
    json_t *body = json_pack("{s:o}", "batch", events);
    if (!events || !body) {
        json_decref(body);
        json_decref(payload);
        return kw_problem_from_store(p, KW_ERR_NOMEM);
    }
    size_t i;
    json_t *e;
    json_array_foreach(batch, i, e) {
        json_t *folded = json_is_object(e) ? fold(e, lib[0] ? lib : NULL, version[0] ? version : NULL,
                                                  p, &bad)
                                           : NULL;
        if (bad) break;
        json_array_append_new(events, folded ? folded : json_incref(e));
    }
    if (bad) {
        json_decref(body);
        json_decref(payload);
        return 1;
    }
    int rc = kw_capture_stage(c, project_id, body, out, p);  /* copies what it needs */
    json_decref(payload);
    return rc;
}

int kw_capture_v1(const kw_call *c, int64_t project_id, const json_t *payload,
                  const char *sdk_info, size_t *stored, kw_problem *p)
{
    *stored = 0;
    kw_capture_batch *b;
    if (kw_capture_v1_stage(c, project_id, json_incref((json_t *)payload), sdk_info, &b, p))
        return 1;
    return kw_capture_store_now(c, b, stored, p);
}
