/* h_projects.c — health, the current user (kept by me_cache.c), and
 * projects. */
#include <pthread.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"

/* Load balancers poll this: no JSON built, and the response itself is
 * built once per process and queued as is (kw_http_ready). */
static const char HEALTH_OK[] = "{\"status\":\"ok\"}";
static kw_http_ready *health_ready;
static pthread_once_t health_once = PTHREAD_ONCE_INIT;

static void build_health(void)
{
    kw_http_resp r;
    kw_http_resp_init(&r);
    kw_resp_raw(&r, 200, "application/json", HEALTH_OK, sizeof HEALTH_OK - 1, NULL, NULL);
    health_ready = kw_http_ready_new(&r);  /* NULL without memory: built per request */
}

int kw_h_health(kw_http_req *req, kw_http_resp *resp)
{
    (void)req;
    kw_resp_raw(resp, 200, "application/json", HEALTH_OK, sizeof HEALTH_OK - 1, NULL, NULL);
    if (resp->n_headers == 0) {  /* the ready one is exactly what would be built */
        pthread_once(&health_once, build_health);
        resp->shared = health_ready;
    }
    return KW_OK;
}

struct collect {
    const kw_principal *principal;
    kw_store *store;
    json_t *list;
    int64_t skip, limit, count;
};

static int add_org(void *ctx, const kw_org *org, int level)
{
    struct collect *c = ctx;
    json_array_append_new(c->list, json_pack("{s:s, s:s, s:i}", "id", org->id, "name", org->name,
                                             "membership_level", level));
    return 0;
}

static int add_project(void *ctx, const kw_project *p)
{
    struct collect *c = ctx;
    if (!kw_principal_team_allowed(c->principal, p->id) ||
        !kw_principal_org_allowed(c->principal, p->org_id))
        return 0;
    c->count++;
    if (c->count <= c->skip || (int64_t)json_array_size(c->list) >= c->limit) return 0;
    kw_org org;
    json_array_append_new(c->list, kw_json_project(p, kw_store_org_get(c->store, p->org_id, &org)
                                                          ? NULL : &org));
    return 0;
}

int kw_h_me(kw_http_req *req, kw_http_resp *resp)
{
    if (kw_me_cache_answer(req, resp)) return KW_OK;
    int64_t generation = kw_me_cache_generation(req);
    kw_user user;
    kw_store *store = req->app->store;
    int rc = kw_store_user_get(store, req->principal.user_id, &user);
    if (rc) return rc;
    struct collect orgs = {&req->principal, store, json_array(), 0, 1000, 0};
    struct collect first = {&req->principal, store, json_array(), 0, 1, 0};
    rc = kw_store_user_orgs(store, user.id, add_org, &orgs);
    if (!rc) rc = kw_store_user_projects(store, user.id, add_project, &first);
    if (rc) {
        json_decref(orgs.list);
        json_decref(first.list);
        return rc;
    }
    json_t *me = kw_json_user_basic(&user);
    json_object_set_new(me, "is_active", json_boolean(user.is_active));
    json_object_set_new(me, "date_joined", kw_json_time(user.created_at));
    json_t *team = json_array_get(first.list, 0);
    json_object_set(me, "team", team ? team : json_null());
    json_t *org0 = json_array_get(orgs.list, 0);
    json_object_set(me, "organization", org0 ? org0 : json_null());
    json_object_set_new(me, "organizations", orgs.list);
    json_decref(first.list);
    kw_me_cache_send(req, resp, generation, me);
    return KW_OK;
}

int kw_h_project_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset;
    kw_req_page(req, 100, 1000, &limit, &offset);
    struct collect c = {&req->principal, req->app->store, json_array(), offset, limit, 0};
    int rc = kw_store_user_projects(req->app->store, req->principal.user_id, add_project, &c);
    if (rc) {
        json_decref(c.list);
        return rc;
    }
    kw_resp_json(resp, 200, kw_page_json(req, c.count, limit, offset, c.list));
    return KW_OK;
}

static json_t *project_json(kw_http_req *req)
{
    kw_org org;
    int have_org = kw_store_org_get(req->app->store, req->project.org_id, &org) == KW_OK;
    return kw_json_project(&req->project, have_org ? &org : NULL);
}

/* The project as GET answers it: its row and its browser SDK settings. */
static int send_project(kw_http_req *req, kw_http_resp *resp)
{
    json_t *project = project_json(req);
    int rc = kw_json_project_settings(req->app->store, req->project.id, project);
    if (rc) {
        json_decref(project);
        return rc;
    }
    kw_resp_json(resp, 200, project);
    return KW_OK;
}

int kw_h_project_get(kw_http_req *req, kw_http_resp *resp)
{
    return send_project(req, resp);
}

int kw_h_project_reset_token(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_project_reset_token(&req->call, &req->project, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    return send_project(req, resp);
}
