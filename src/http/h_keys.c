/* h_keys.c — personal API keys: PostHog's /api/personal_api_keys/.
 * The list is a bare array (PostHog does not paginate it), newest first,
 * and holds only the caller's own keys; another user's id is "Not found.".
 * Every rule lives in lib/keys/pkey.c; these functions only translate. */
#include "http/http.h"

struct list_ctx {
    json_t *list;
    kw_store *store;
};

static int add_key(void *ctx, const kw_pkey *key)
{
    json_array_append_new(((struct list_ctx *)ctx)->list, kw_json_pkey(((struct list_ctx *)ctx)->store, key, NULL));
    return 0;
}

int kw_h_pkey_list(kw_http_req *req, kw_http_resp *resp)
{
    struct list_ctx c = {json_array(), req->app->store};
    int rc = kw_store_pkey_list(req->app->store, req->principal.user_id, add_key, &c);
    if (rc) {
        json_decref(c.list);
        return rc;
    }
    kw_resp_json(resp, 200, c.list);
    return KW_OK;
}

/* One record buffer per server thread: a kw_pkey is 12 KiB. */
static _Thread_local kw_pkey key_buf;

int kw_h_pkey_create(kw_http_req *req, kw_http_resp *resp)
{
    char value[KW_KEY_LEN + 1];
    kw_problem p;
    if (kw_pkey_create(&req->call, req->json, &key_buf, value, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 201, kw_json_pkey(req->app->store, &key_buf, value));
    return KW_OK;
}

int kw_h_pkey_get(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    const char *id = req->match.id[0] ? req->match.id : "@current";
    if (kw_pkey_load(&req->call, id, &key_buf, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 200, kw_json_pkey(req->app->store, &key_buf, NULL));
    return KW_OK;
}

int kw_h_pkey_update(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_pkey_update(&req->call, req->match.id, req->json, &key_buf, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 200, kw_json_pkey(req->app->store, &key_buf, NULL));
    return KW_OK;
}

int kw_h_pkey_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_pkey_delete(&req->call, req->match.id, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
    return KW_OK;
}

int kw_h_pkey_roll(kw_http_req *req, kw_http_resp *resp)
{
    char value[KW_KEY_LEN + 1];
    kw_problem p;
    if (kw_pkey_roll(&req->call, req->match.id, req->json, &key_buf, value, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 200, kw_json_pkey(req->app->store, &key_buf, value));
    return KW_OK;
}
