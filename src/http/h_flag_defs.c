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
 * (lib/flagcache.c) and the ?token= lookup from the verification cache, so
 * a phs_ poll of unchanged flags touches no database: it costs two cache
 * probes and, on a 200, sends the cached bytes without copying them. */
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
    if (req->match.project[0]) {
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
    /* A person: the same membership/narrowing checks as any project route. */
    kw_project project;
    if (kw_problem_from_store(p, kw_store_project_get(req->app->store, *project_id, &project)))
        return 1;
    kw_route_match m = req->match;
    snprintf(m.project, sizeof m.project, "%lld", (long long)project.id);
    int level;
    return kw_policy_check(req->app->store, &m, pr, &project, &level, p);
secret_invalid:
    kw_problem_set(p, KW_P_AUTH_FAILED, NULL, NULL, KW_MSG_SECRET_INVALID);
    return 1;
unavailable:
    kw_problem_set(p, KW_P_UNAVAILABLE, NULL, NULL, KW_MSG_SERVER_ERROR);
    return 1;
}

static void release_set(void *set) { kw_flagset_release(set); }

void kw_h_flag_definitions(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    int64_t project_id;
    if (resolve(req, &project_id, &p)) {
        kw_resp_problem(resp, &p);
        return;
    }
    const kw_flagset *set;
    int rc = kw_flagcache_get(req->app->flags, project_id, &set);
    if (rc) {
        kw_problem_from_store(&p, rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc);
        kw_resp_problem(resp, &p);
        return;
    }
    kw_resp_header(resp, "ETag", set->etag);
    kw_resp_header(resp, "Cache-Control", "private, must-revalidate");
    const char *inm = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm && strcmp(inm, set->etag) == 0) {
        kw_flagset_release(set);
        kw_resp_json(resp, 304, NULL);
        return;
    }
    kw_resp_raw(resp, 200, "application/json", set->body, set->body_len, release_set, (void *)set);
}
