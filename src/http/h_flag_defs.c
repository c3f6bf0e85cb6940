/* h_flag_defs.c — flag definitions for local evaluation, the route the
 * server-side SDKs poll: GET /flags/definitions?token=phc_…,
 * /api/feature_flag/local_evaluation/?token=… and
 * /api/projects/:id/feature_flags/local_evaluation/ (older SDKs).
 *
 * Callers are machines holding a phs_ key (or a phx_ key / a session).  On
 * the two routes without a :project segment the project is the ?token=
 * one, or the phs_ key's own; a phs_ key of another project is answered
 * like an invalid one (401), as PostHog does, so a key never reveals that
 * another project exists.  For a person the table's membership check is
 * applied to the resolved project by running kw_policy_check once more.
 *
 * SDKs poll every 30 s or so, hence the weak ETag over the exact body and a
 * 304 on If-None-Match.  The body and its ETag come from the flag cache
 * (lib/flags/flagcache.c) and the ?token= lookup from the verification cache, so
 * a phs_ poll of unchanged flags touches no database: it costs two cache
 * probes and, on a 200, sends the cached bytes without copying them.
 *
 * The same file answers posthog-node's getRemoteConfigPayload:
 * GET /api/projects/@current/feature_flags/<key>/remote_config?token=phc_…
 * — the JSON payload of the flag's "true" branch (stored as JSON text, sent
 * decoded), null when the flag has none, 404 for an unknown or deleted flag.  With
 * @current the ?token= picks the project (why the SDK sends it: a personal
 * key may reach several), checked against the caller like the definitions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"

/* The project to serve, checked against the caller; 0 or a refusal in *p.
 * On the project route the path decides (the policy has checked it) and a
 * ?token= only has to agree with a phs_ key; elsewhere ?token= decides,
 * else the phs_ key's own project (no lookup: deleting a project deletes
 * its keys, which bumps the auth generation). */
static int resolve(kw_http_req *req, int64_t *project_id, kw_problem *p)
{
    const kw_principal *pr = &req->principal;
    const char *token = kw_req_query(req, "token");
    int secret = pr->kind == KW_KEY_SECRET;
    int found = 0;
    int64_t by_token = 0;
    if (token && *token) {
        size_t len = strnlen(token, KW_KEY_MAX_LEN + 1);
        kw_principal tp;
        kw_verify_result r = KW_VERIFY_INVALID;
        if (len <= KW_KEY_MAX_LEN) r = kw_verify_project(req->app->verifier, token, len, &tp);
        if (r == KW_VERIFY_UNAVAILABLE) goto unavailable;
        found = r == KW_VERIFY_OK;
        by_token = found ? tp.project_id : 0;
        if (secret && (!found || by_token != pr->project_id)) goto secret_invalid;
    }
    /* Remote config: under @current the ?token= decides (posthog-node
     * sends it for exactly that); a number in the path still wins. */
    int token_decides = req->match.route->id == KW_ROUTE_FLAG_REMOTE_CONFIG && found &&
                        strcmp(req->match.project, "@current") == 0;
    if (req->match.project[0] && !token_decides) {
        *project_id = req->project.id;
        return 0;
    }
    if (found) {
        *project_id = by_token;
    } else if (token && *token) {
        kw_problem_set(p, KW_P_AUTH_FAILED, NULL, NULL,
                       "Project API key invalid. You can find your project API key in your "
                       "project settings.");
        return 1;
    } else if (secret) {
        *project_id = pr->project_id;
    } else {
        kw_problem_set(p, KW_P_VALIDATION, "required", "token",
                       "API key not provided. You can find your project API key in your project "
                       "settings.");
        return 1;
    }
    if (secret) return 0;
    /* A person: the same membership/narrowing checks as any project route
     * (which also resolve the project: 404 when it is gone). */
    kw_project project;
    kw_route_match m = req->match;
    snprintf(m.project, sizeof m.project, "%lld", (long long)*project_id);
    int level;
    return kw_policy_check(req->app->store, req->app->directory, &m, pr, &project, &level, p);
secret_invalid:
    kw_problem_set(p, KW_P_AUTH_FAILED, NULL, NULL, KW_MSG_SECRET_INVALID);
    return 1;
unavailable:
    return kw_problem_from_store(p, KW_ERR_UNAVAILABLE);
}

static void release_set(void *set) { kw_flagset_release(set); }

/* The two answers to a poll of one set, built once and shared by every
 * request for as long as the set lives (a ready response is reference
 * counted and may be queued on many connections): an unchanged poll then
 * adds no headers and allocates nothing. */
struct ready {
    kw_flagset_attachment base;  /* first */
    kw_http_ready *ok, *not_modified;
};

static void ready_free(kw_flagset_attachment *a)
{
    struct ready *r = (struct ready *)a;
    kw_http_ready_free(r->ok);
    kw_http_ready_free(r->not_modified);
    free(r);
}

/* The headers both answers carry, on a fresh response. */
static void defs_headers(kw_http_resp *resp, const kw_flagset *set)
{
    kw_resp_header(resp, "ETag", set->etag);
    kw_resp_header(resp, "Cache-Control", "private, must-revalidate");
}

static const struct ready *ready_of(const kw_flagset *set)
{
    kw_flagset_attachment *have = kw_flagset_attachment_get(set, KW_FLAGSET_DEFINITIONS);
    if (have) return (const struct ready *)have;
    struct ready *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->base.free_fn = ready_free;
    kw_http_resp ok, nm;
    kw_http_resp_init(&ok);
    defs_headers(&ok, set);
    /* The set owns the bytes, and outlives the response's use (see
     * kw_http_resp.shared): no release here. */
    kw_resp_raw(&ok, 200, "application/json", set->body, set->body_len, NULL, NULL);
    kw_http_resp_init(&nm);
    defs_headers(&nm, set);
    kw_resp_json(&nm, 304, NULL);
    r->ok = kw_http_ready_new(&ok);
    r->not_modified = kw_http_ready_new(&nm);
    if (!r->ok || !r->not_modified) {
        ready_free(&r->base);
        return NULL;
    }
    have = kw_flagset_attach(set, KW_FLAGSET_DEFINITIONS, &r->base);
    if (have != &r->base) ready_free(&r->base);
    return (const struct ready *)have;
}

int kw_h_flag_definitions(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    int64_t project_id;
    if (resolve(req, &project_id, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    const kw_flagset *set;
    int rc = kw_flagcache_get_at(req->app->flags, project_id, kw_req_now(req), &set);
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    /* Shared only when nothing before this handler added a header, so
     * the ready response is exactly what would be built. */
    const struct ready *ready = resp->n_headers == 0 ? ready_of(set) : NULL;
    defs_headers(resp, set);
    if (kw_etag_none_match(kw_req_header(req, "If-None-Match"), set->etag)) {
        kw_resp_json(resp, 304, NULL);
        resp->release = release_set;  /* at completion (shared) or at once */
        resp->release_ctx = (void *)set;
        resp->shared = ready ? ready->not_modified : NULL;
        return KW_OK;
    }
    kw_resp_raw(resp, 200, "application/json", set->body, set->body_len, release_set, (void *)set);
    resp->shared = ready ? ready->ok : NULL;
    return KW_OK;
}

struct remote_find {
    const char *ref;   /* the path's flag key, or id when all digits */
    int64_t id;        /* > 0 when ref is a number */
    int found;
    json_t *payload;   /* the "true" payload, or NULL */
};

static int find_flag(void *ctx, const kw_flag *f)
{
    struct remote_find *r = ctx;
    if (f->deleted || (r->id > 0 ? f->id != r->id : strcmp(f->key, r->ref) != 0)) return 0;
    r->found = 1;
    json_t *filters = f->filters ? json_loads(f->filters, 0, NULL) : NULL;
    json_t *payload = json_object_get(json_object_get(filters, "payloads"), "true");
    /* Payloads are stored as JSON text (PostHog's form): sent decoded, so
     * 4.x (which returns response.json() as is) and 5.x (which also parses
     * a string) both get the value; text that is no JSON goes as a string. */
    json_t *decoded = json_is_string(payload)
                          ? json_loads(json_string_value(payload), JSON_DECODE_ANY, NULL) : NULL;
    r->payload = decoded ? decoded : payload ? json_incref(payload) : NULL;
    json_decref(filters);
    return 1;  /* stop */
}

int kw_h_flag_remote_config(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    int64_t project_id = 0;
    if (resolve(req, &project_id, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    struct remote_find r = {req->match.id, 0, 0, NULL};
    size_t n = strlen(r.ref);
    if (n > 0 && n <= 18 && strspn(r.ref, "0123456789") == n) r.id = strtoll(r.ref, NULL, 10);
    int rc = kw_store_flag_list(req->app->store, project_id, KW_FLAG_BY_KEY, 0, find_flag, &r);
    if (rc < 0) {
        json_decref(r.payload);
        return rc;
    }
    if (!r.found) {
        kw_resp_error(resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
        return KW_OK;
    }
    kw_resp_json(resp, 200, r.payload ? r.payload : json_null());
    return KW_OK;
}
