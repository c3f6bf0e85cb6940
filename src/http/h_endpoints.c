/* h_endpoints.c — /api/projects/:id/endpoints/ (CRUD, by name) and
 * …/endpoints/:name/run/.  Rules live in lib/events/endpoint.c; this file
 * translates.  Run takes its variables as a JSON object: in the body
 * ({"variables": {...}}) for POST, in ?variables=<JSON> for GET. */
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"

struct endpoint_page {
    kw_store *store;
    json_t *list;
};

static int add_endpoint(void *ctx, const kw_endpoint *e)
{
    struct endpoint_page *c = ctx;
    json_array_append_new(c->list, kw_json_endpoint(c->store, e));
    return 0;
}

int kw_h_endpoint_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset, count = 0;
    kw_req_page(req, 100, 1000, &limit, &offset);
    struct endpoint_page c = {req->app->store, json_array()};
    int rc = kw_store_endpoint_count(req->app->store, req->project.id, &count);
    if (!rc) rc = kw_store_endpoint_list(req->app->store, req->project.id, limit, offset, add_endpoint, &c);
    if (rc) {
        json_decref(c.list);
        return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    }
    kw_resp_json(resp, 200, kw_page_json(req, count, limit, offset, c.list));
    return KW_OK;
}

/* The one way the handlers below answer. */
static void respond(kw_http_req *req, kw_http_resp *resp, int failed, int status, kw_endpoint *e,
                    const kw_problem *p)
{
    if (failed) {
        kw_resp_problem(resp, p);
        return;
    }
    kw_resp_json(resp, status, kw_json_endpoint(req->app->store, e));
    kw_endpoint_clear(e);
}

int kw_h_endpoint_create(kw_http_req *req, kw_http_resp *resp)
{
    kw_endpoint e;
    kw_problem p;
    int failed = kw_endpoint_create(&req->call, &req->project, req->json, &e, &p);
    respond(req, resp, failed, 201, &e, &p);
    return KW_OK;
}

int kw_h_endpoint_get(kw_http_req *req, kw_http_resp *resp)
{
    kw_endpoint e;
    kw_problem p;
    int failed = kw_endpoint_load(&req->call, req->project.id, req->match.id, &e, &p);
    respond(req, resp, failed, 200, &e, &p);
    return KW_OK;
}

int kw_h_endpoint_update(kw_http_req *req, kw_http_resp *resp)
{
    kw_endpoint e;
    kw_problem p;
    int failed = kw_endpoint_update(&req->call, &req->project, req->match.id, req->json, &e, &p);
    respond(req, resp, failed, 200, &e, &p);
    return KW_OK;
}

int kw_h_endpoint_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_endpoint_delete(&req->call, &req->project, req->match.id, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
    return KW_OK;
}

int kw_h_endpoint_run(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    json_t *owned = NULL;
    const json_t *variables = NULL;
    if (strcmp(req->method, "POST") == 0) {
        if (req->json && !json_is_object(req->json)) {
            kw_problem_set(&p, KW_P_VALIDATION, "invalid", "non_field_errors",
                           "Invalid data. Expected a dictionary.");
            kw_resp_problem(resp, &p);
            return KW_OK;
        }
        variables = req->json ? json_object_get(req->json, "variables") : NULL;
        if (json_is_null(variables)) variables = NULL;
    } else {
        const char *q = kw_req_query(req, "variables");
        if (q && *q) {
            json_error_t err;
            owned = json_loads(q, 0, &err);
            if (!owned) {
                kw_problem_set(&p, KW_P_VALIDATION, "invalid_input", "variables",
                               "variables must be a JSON object: %s", err.text);
                kw_resp_problem(resp, &p);
                return KW_OK;
            }
            variables = owned;
        }
    }
    json_t *result;
    if (kw_endpoint_run(&req->call, &req->project, req->match.id, variables, &result, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 200, result);
    json_decref(owned);
    return KW_OK;
}
