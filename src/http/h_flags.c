/* h_flags.c — feature flag definitions under /api/projects/:id/feature_flags/.
 * Validation and audit live in lib/flag.c; this file translates. */
#include "http/http.h"

struct flag_page {
    kw_store *store;
    json_t *list;
    int64_t skip, limit, count;
};

static int add_flag(void *ctx, const kw_flag *f)
{
    struct flag_page *c = ctx;
    c->count++;
    if (c->count > c->skip && (int64_t)json_array_size(c->list) < c->limit)
        json_array_append_new(c->list, kw_json_flag(c->store, f));
    return 0;
}

void kw_h_flag_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset;
    kw_req_page(req, 100, 1000, &limit, &offset);
    struct flag_page c = {req->app->store, json_array(), offset, limit, 0};
    if (kw_store_flag_list(req->app->store, req->project.id, KW_FLAG_NEWEST_FIRST, 0, add_flag, &c)) {
        json_decref(c.list);
        kw_resp_error(resp, KW_P_SERVER, NULL, KW_MSG_SERVER_ERROR);
        return;
    }
    kw_resp_json(resp, 200, kw_page_json(req, c.count, limit, offset, c.list));
}

static void respond_flag(kw_http_req *req, kw_http_resp *resp, int failed, int status, kw_flag *f,
                         const kw_problem *p)
{
    if (failed) {
        kw_resp_problem(resp, p);
        return;
    }
    kw_resp_json(resp, status, kw_json_flag(req->app->store, f));
    kw_flag_clear(f);
}

void kw_h_flag_create(kw_http_req *req, kw_http_resp *resp)
{
    kw_flag f;
    kw_problem p;
    int failed = kw_flag_create(&req->call, req->project.id, req->json, &f, &p);
    respond_flag(req, resp, failed, 201, &f, &p);
}

void kw_h_flag_get(kw_http_req *req, kw_http_resp *resp)
{
    kw_flag f;
    kw_problem p;
    int failed = kw_flag_load(&req->call, req->project.id, req->match.id, &f, &p);
    respond_flag(req, resp, failed, 200, &f, &p);
}

void kw_h_flag_update(kw_http_req *req, kw_http_resp *resp)
{
    kw_flag f;
    kw_problem p;
    int failed = kw_flag_update(&req->call, req->project.id, req->match.id, req->json, &f, &p);
    respond_flag(req, resp, failed, 200, &f, &p);
}

void kw_h_flag_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_flag_delete(&req->call, req->project.id, req->match.id, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
}
