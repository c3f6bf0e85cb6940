/* h_report.c — the key report over HTTP (keys not rotated lately, unused
 * keys, and each key's granted vs used scopes with a suggested least set):
 * GET /api/personal_api_keys/report/ (the caller's personal keys) and
 * GET /api/projects/:id/key_report/ (the project's phs_ keys and the
 * caller's personal keys that reach the project).
 *
 * Scope usage is recorded in memory and merged into the store by the
 * verifier every few seconds; the report flushes it first, so what it
 * shows includes every request answered before it.  The flags' window is
 * ?rotation_days= (default 90); the rules live in lib/keys/report.c. */
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/report.h"

/* ?rotation_days=N, 1…3650.  0, or 1 after answering 400. */
static int read_opts(kw_http_req *req, kw_http_resp *resp, kw_report_opts *o)
{
    kw_verifier_flush_usage(req->app->verifier);
    kw_report_opts_init(o);
    const char *v = kw_req_query(req, "rotation_days");
    if (!v) return 0;
    char *end;
    long days = strtol(v, &end, 10);
    if (!*v || *end || days < 1 || days > 3650) {
        kw_resp_error(resp, KW_P_VALIDATION, "rotation_days",
                      "Ensure this value is a whole number of days between 1 and 3650.");
        return 1;
    }
    o->rotation_days = (int)days;
    return 0;
}

static int answer(kw_http_resp *resp, int rc, json_t *results, const kw_report_opts *o)
{
    if (rc) {
        json_decref(results);
        return rc;
    }
    kw_resp_json(resp, 200, kw_report_wrap(results, o));
    return KW_OK;
}

int kw_h_pkey_report(kw_http_req *req, kw_http_resp *resp)
{
    kw_report_opts o;
    if (read_opts(req, resp, &o)) return KW_OK;
    json_t *results = json_array();
    int rc = kw_report_user_keys(req->app->store, req->principal.user_id, NULL, &o, results);
    return answer(resp, rc, results, &o);
}

int kw_h_key_report(kw_http_req *req, kw_http_resp *resp)
{
    kw_report_opts o;
    if (read_opts(req, resp, &o)) return KW_OK;
    json_t *results = json_array();
    int rc = kw_report_project_keys(req->app->store, &req->project, &o, results);
    if (!rc && req->principal.user_id)
        rc = kw_report_user_keys(req->app->store, req->principal.user_id, &req->project, &o, results);
    return answer(resp, rc, results, &o);
}
