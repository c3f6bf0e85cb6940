/* h_secret_keys.c — project secret API keys (phs_):
 * /api/projects/:id/project_secret_api_keys/.
 * The policy table has already checked scope and project level (admin for
 * writes); every rule of the key itself lives in lib/keys/psk.c.  The list is
 * paginated, newest first, as PostHog's; `value` is shown only in the
 * create (201) and roll (200) responses. */
#include "http/http.h"

struct psk_page {
    kw_store *store;
    json_t *list;
};

static int add_psk(void *ctx, const kw_psk *key)
{
    struct psk_page *c = ctx;
    json_array_append_new(c->list, kw_json_psk(c->store, key, NULL));
    return 0;
}

int kw_h_psk_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset, count = 0;
    kw_req_page(req, 100, 1000, &limit, &offset);
    struct psk_page c = {req->app->store, json_array()};
    int rc = kw_store_psk_count(req->app->store, req->project.id, &count);
    if (!rc) rc = kw_store_psk_list(req->app->store, req->project.id, limit, offset, add_psk, &c);
    if (rc) {
        json_decref(c.list);
        return rc;
    }
    kw_resp_json(resp, 200, kw_page_json(req, count, limit, offset, c.list));
    return KW_OK;
}

/* One record buffer per server thread (4 KiB of scopes text). */
static _Thread_local kw_psk key_buf;

/* The one way every handler below answers. */
static void respond(kw_http_req *req, kw_http_resp *resp, int failed, int status,
                    const char *value, const kw_problem *p)
{
    if (failed)
        kw_resp_problem(resp, p);
    else
        kw_resp_json(resp, status, kw_json_psk(req->app->store, &key_buf, value));
}

int kw_h_psk_create(kw_http_req *req, kw_http_resp *resp)
{
    char value[KW_KEY_LEN + 1];
    kw_problem p;
    int failed = kw_psk_create(&req->call, &req->project, req->json, &key_buf, value, &p);
    respond(req, resp, failed, 201, value, &p);
    return KW_OK;
}

int kw_h_psk_get(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    int failed = kw_psk_load(&req->call, req->project.id, req->match.id, &key_buf, &p);
    respond(req, resp, failed, 200, NULL, &p);
    return KW_OK;
}

int kw_h_psk_update(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    int failed = kw_psk_update(&req->call, &req->project, req->match.id, req->json, &key_buf, &p);
    respond(req, resp, failed, 200, NULL, &p);
    return KW_OK;
}

int kw_h_psk_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_psk_delete(&req->call, &req->project, req->match.id, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
    return KW_OK;
}

int kw_h_psk_roll(kw_http_req *req, kw_http_resp *resp)
{
    char value[KW_KEY_LEN + 1];
    kw_problem p;
    int failed = kw_psk_roll(&req->call, &req->project, req->match.id, req->json, &key_buf, value, &p);
    respond(req, resp, failed, 200, value, &p);
    return KW_OK;
}
