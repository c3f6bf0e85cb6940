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
 * 304 on If-None-Match: the definitions are built (one indexed read) but
 * not sent when unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"

struct defs {
    json_t *flags;
};

static int add_def(void *ctx, const kw_flag *f)
{
    json_t *filters = f->filters ? json_loads(f->filters, 0, NULL) : NULL;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(f->id));
    json_object_set_new(o, "team_id", json_integer(f->project_id));
    json_object_set_new(o, "name", json_string(f->name));
    json_object_set_new(o, "key", json_string(f->key));
    json_object_set_new(o, "filters", filters ? filters : json_object());
    json_object_set_new(o, "deleted", json_boolean(f->deleted));
    json_object_set_new(o, "active", json_boolean(f->active));
    json_object_set_new(o, "ensure_experience_continuity", json_boolean(f->ensure_experience_continuity));
    json_object_set_new(o, "version", json_integer(f->version));
    json_array_append_new(((struct defs *)ctx)->flags, o);
    return 0;
}

/* The project to serve, checked against the caller; 0 or a refusal in *p.
 * On the project route the path decides (the policy has checked it) and a
 * ?token= only has to agree with a phs_ key; elsewhere ?token= decides,
 * else the phs_ key's own project. */
static int resolve(kw_http_req *req, kw_project *project, kw_problem *p)
{
    kw_store *store = req->app->store;
    const kw_principal *pr = &req->principal;
    const char *token = kw_req_query(req, "token");
    int secret = pr->kind == KW_KEY_SECRET;
    kw_project by_token;
    int rc = KW_ERR_NOTFOUND;
    if (token && *token) {
        rc = kw_store_project_by_token(store, token, &by_token);
        if (rc && rc != KW_ERR_NOTFOUND) goto unavailable;
        if (secret && (rc || by_token.id != pr->project_id)) goto secret_invalid;
    }
    if (req->match.project[0]) {
        *project = req->project;
        return 0;
    }
    if (!rc) {
        *project = by_token;
    } else if (token && *token) {
        kw_problem_set(p, KW_P_AUTH_FAILED, NULL, NULL,
                       "Project API key invalid. You can find your project API key in your "
                       "project settings.");
        return 1;
    } else if (secret) {
        rc = kw_store_project_get(store, pr->project_id, project);
        if (rc == KW_ERR_NOTFOUND) goto secret_invalid;
        if (rc) goto unavailable;
    } else {
        kw_problem_set(p, KW_P_VALIDATION, "required", "token",
                       "API key not provided. You can find your project API key in your project "
                       "settings.");
        return 1;
    }
    if (secret) return 0;
    /* A person: the same membership/narrowing checks as any project route. */
    kw_route_match m = req->match;
    snprintf(m.project, sizeof m.project, "%lld", (long long)project->id);
    int level;
    return kw_policy_check(store, &m, pr, project, &level, p);
secret_invalid:
    kw_problem_set(p, KW_P_AUTH_FAILED, NULL, NULL, KW_MSG_SECRET_INVALID);
    return 1;
unavailable:
    kw_problem_set(p, KW_P_UNAVAILABLE, NULL, NULL, KW_MSG_SERVER_ERROR);
    return 1;
}

void kw_h_flag_definitions(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    kw_project project;
    if (resolve(req, &project, &p)) {
        kw_resp_problem(resp, &p);
        return;
    }
    struct defs d = {json_array()};
    if (kw_store_flag_list(req->app->store, project.id, KW_FLAG_BY_KEY, 0, add_def, &d)) {
        json_decref(d.flags);
        kw_resp_error(resp, KW_P_SERVER, NULL, KW_MSG_SERVER_ERROR);
        return;
    }
    json_t *body = json_pack("{s:o, s:{}, s:{}, s:b, s:i}", "flags", d.flags, "group_type_mapping",
                             "cohorts", "minimal_flag_called_events", 0,
                             "property_matching_version", 1);
    /* The ETag is over the bytes server.c will send: the same dump flags. */
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    char hash[KW_HASH_LEN + 1];
    if (!text || kw_key_hash(text, strlen(text), hash)) {
        free(text);
        json_decref(body);
        kw_resp_error(resp, KW_P_SERVER, NULL, KW_MSG_SERVER_ERROR);
        return;
    }
    free(text);
    char etag[48];
    snprintf(etag, sizeof etag, "W/\"%.32s\"", hash + 7);  /* skip "sha256$" */
    kw_resp_header(resp, "ETag", etag);
    kw_resp_header(resp, "Cache-Control", "private, must-revalidate");
    const char *inm = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm && strcmp(inm, etag) == 0) {
        json_decref(body);
        kw_resp_json(resp, 304, NULL);
        return;
    }
    kw_resp_json(resp, 200, body);
}
