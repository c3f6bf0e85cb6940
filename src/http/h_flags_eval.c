/* h_flags_eval.c — remote flag evaluation: POST /flags and POST /decide.
 *
 * What posthog-js, the mobile SDKs and server SDKs without local
 * evaluation call: "which flags are on for this distinct_id?".  The caller
 * holds only the public project token (phc_, read from the body by
 * dispatch.c), so the answer is computed here from the project's cached
 * flag definitions (lib/flags/flagcache.c) with kw_flag_evaluate — the same
 * definitions /flags/definitions serves, so a flag gives the same answer
 * locally (in an SDK) and remotely.  An unchanged project costs no query.
 *
 * Response shapes follow PostHog's flags service (rust/feature-flags):
 *   /flags?v=2 (v >= 2)        {errorsWhileComputingFlags, flags{key: detail}, requestId, evaluatedAt}
 *   /flags (no v, v=1)         legacy: featureFlags {key: bool|variant} for every flag
 *                              (inactive ones false), featureFlagPayloads for enabled
 *                              flags with a payload, plus the static config fields
 *   /decide?v=4+               as /flags?v=2
 *   /decide?v=2                featureFlags with enabled flags only
 *   /decide?v=1                featureFlags as a list of enabled keys
 *   /decide (no v, v=3)        legacy, as /flags.  PostHog's service answers a bare
 *                              /decide with the v=1 list; keyward answers the legacy
 *                              map, which every posthog-js that omits v understands.
 * Errors while computing are not possible here (no person lookups), so
 * errorsWhileComputingFlags is always false. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/flags_render.h"
#include "http/http.h"
#include "keyward/flags.h"
#include "keyward/keyward.h"

#define DISTINCT_ID_MAX_CHARS 200  /* PostHog truncates longer ids */

enum shape { SHAPE_V2, SHAPE_LEGACY, SHAPE_DECIDE_V2, SHAPE_DECIDE_V1 };

/* distinct_id (a string, or an integer as SDKs sometimes send it) and the
 * optional property objects; a 400 in *p when distinct_id is unusable. */
static int read_context(const json_t *body, kw_flag_context *ctx, char *id, size_t size,
                        kw_problem *p)
{
    json_t *v = json_object_get(body, "distinct_id");
    memset(ctx, 0, sizeof *ctx);
    if (json_is_integer(v)) {
        snprintf(id, size, "%lld", (long long)json_integer_value(v));
    } else if (json_is_string(v)) {
        /* Truncate to 200 characters, not bytes, so UTF-8 stays whole. */
        const char *s = json_string_value(v);
        size_t n = 0, chars = 0;
        /* Stop only at a lead byte (jansson strings are valid UTF-8). */
        for (; s[n]; n++)
            if (((unsigned char)s[n] & 0xC0) != 0x80 &&
                (chars++ == DISTINCT_ID_MAX_CHARS || n + 4 >= size))
                break;
        memcpy(id, s, n);
        id[n] = '\0';
        if (!n) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "distinct_id",
                           "The distinct_id field cannot be empty. Please provide a valid identifier.");
            return 1;
        }
    } else {
        kw_problem_set(p, KW_P_VALIDATION, "required", "distinct_id",
                       "The distinct_id field is missing from the request. Please include a valid "
                       "identifier.");
        return 1;
    }
    ctx->distinct_id = id;
    json_t *o;
    if (json_is_object(o = json_object_get(body, "person_properties"))) ctx->person_properties = o;
    if (json_is_object(o = json_object_get(body, "groups"))) ctx->groups = o;
    if (json_is_object(o = json_object_get(body, "group_properties"))) ctx->group_properties = o;
    return 0;
}

static json_t *flag_value(const kw_flag_result *r)
{
    return r->enabled && r->variant ? json_string(r->variant) : json_boolean(r->enabled);
}

/* Evaluates every flag of the set into the shape's containers. */
static int evaluate_all(const kw_flagset *set, const kw_flag_context *ctx, enum shape shape,
                        json_t *flags, json_t *payloads)
{
    size_t i;
    const json_t *def;
    json_array_foreach(set->flags, i, def) {
        kw_flag_result r;
        const char *key = i < set->n_prepared ? set->prepared[i].key : NULL;
        if (!key || kw_flag_evaluate_prepared(&set->prepared[i], ctx, &r) != KW_OK) continue;
        int rc = 0;
        switch (shape) {
        case SHAPE_V2:  /* rendered from pieces instead (flags_render.c) */
            break;
        case SHAPE_LEGACY:
            rc = json_object_set_new(flags, key, flag_value(&r));
            if (!rc && r.enabled && r.payload && !json_is_null(r.payload))
                rc = json_object_set_new(payloads, key, kw_flags_payload_json(r.payload));
            break;
        case SHAPE_DECIDE_V2:
            if (r.enabled) rc = json_object_set_new(flags, key, flag_value(&r));
            break;
        case SHAPE_DECIDE_V1:
            if (r.enabled) rc = json_array_append_new(flags, json_string(key));
            break;
        }
        if (rc) return KW_ERR_NOMEM;
    }
    return KW_OK;
}

static json_t *response(enum shape shape, json_t *flags, json_t *payloads)
{
    char request_id[KW_ID_LEN + 1];
    if (kw_uuid_v4(request_id)) {
        json_decref(flags);
        json_decref(payloads);
        return NULL;
    }
    json_int_t evaluated_at = (json_int_t)(kw_now() / 1000);
    json_t *body = json_pack(
        "{s:o, s:o*, s:b, s:{s:b}, s:{}, s:b, s:[ss], s:b, s:s, s:I}", "featureFlags", flags,
        "featureFlagPayloads", shape == SHAPE_LEGACY ? payloads : NULL, "errorsWhileComputingFlags",
        0, "config", "enable_collect_everything", 1, "toolbarParams", "isAuthenticated", 0,
        "supportedCompression", "gzip", "gzip-js", "sessionRecording", 0, "requestId", request_id,
        "evaluatedAt", evaluated_at);
    if (shape != SHAPE_LEGACY) json_decref(payloads);
    return body;
}

static int evaluate(kw_http_req *req, kw_http_resp *resp, enum shape shape)
{
    kw_problem p;
    kw_flag_context ctx;
    char distinct_id[DISTINCT_ID_MAX_CHARS * 4 + 1];
    if (read_context(req->json, &ctx, distinct_id, sizeof distinct_id, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    const kw_flagset *set;
    int rc = kw_flagcache_get_at(req->app->flags, req->principal.project_id, kw_req_now(req), &set);
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    /* member-written regexes: this request's share of matching time */
    kw_flag_budget budget;
    kw_flag_budget_init(&budget);
    ctx.regexes = set->regexes;
    ctx.budget = &budget;
    ctx.group_type_mapping = set->group_type_mapping;
    if (shape == SHAPE_V2) {
        /* The answer SDKs ask for on every page load: from pieces rendered
         * once per version of the flags (flags_render.c). */
        char request_id[KW_ID_LEN + 1], *text;
        size_t len;
        rc = kw_uuid_v4(request_id);
        if (!rc)
            rc = kw_flags_render_v2(set, &ctx, request_id, (long long)(kw_now() / 1000), &text, &len);
        kw_flagset_release(set);
        if (rc) return rc;
        kw_resp_raw(resp, 200, "application/json", text, len, free, text);
        return KW_OK;
    }
    json_t *flags = shape == SHAPE_DECIDE_V1 ? json_array() : json_object();
    json_t *payloads = json_object();
    rc = flags && payloads ? evaluate_all(set, &ctx, shape, flags, payloads) : KW_ERR_NOMEM;
    kw_flagset_release(set);
    json_t *body = rc ? NULL : response(shape, flags, payloads);
    if (!body) {
        if (rc) {
            json_decref(flags);
            json_decref(payloads);
        }
        return rc ? rc : KW_ERR_NOMEM;
    }
    kw_resp_json(resp, 200, body);
    return KW_OK;
}

static int version(const kw_http_req *req)
{
    const char *v = kw_req_query(req, "v");
    return v && *v ? atoi(v) : 0;
}

int kw_h_flags_eval(kw_http_req *req, kw_http_resp *resp)
{
    return evaluate(req, resp, version(req) >= 2 ? SHAPE_V2 : SHAPE_LEGACY);
}

int kw_h_decide(kw_http_req *req, kw_http_resp *resp)
{
    int v = version(req);
    enum shape shape = v >= 4 ? SHAPE_V2 : v == 2 ? SHAPE_DECIDE_V2 : v == 1 ? SHAPE_DECIDE_V1
                                                                         : SHAPE_LEGACY;
    return evaluate(req, resp, shape);
}
