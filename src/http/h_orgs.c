/* h_orgs.c — organizations and their projects over PostHog's routes:
 * /api/organizations/[:id/], /api/organizations/:id/projects/ and
 * creating, renaming and deleting /api/projects/:id/.
 *
 * The policy has already resolved :org ("@current" included) and the
 * caller's level there, or the :project; the rules of each change are in
 * lib/org/org.c.  Organizations are serialized in PostHog's shape
 * (OrganizationSerializer's fields keyward has), with the caller's
 * membership_level and the organization's projects. */
#include <ctype.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"

/* PostHog's slug is the slugified name (with a suffix when taken); ours is
 * derived, never stored: lowercase letters and digits, '-' between runs. */
static void slugify(const char *name, char *out, size_t size)
{
    size_t n = 0;
    int dash = 0;
    for (const unsigned char *c = (const unsigned char *)name; *c && n + 2 < size; c++) {
        if (isalnum(*c) && *c < 0x80) {
            if (dash && n) out[n++] = '-';
            out[n++] = (char)tolower(*c);
            dash = 0;
        } else {
            dash = 1;
        }
    }
    out[n] = '\0';
}

struct teams {
    json_t *teams, *projects;
};

static int add_team(void *ctx, const kw_project *p)
{
    struct teams *t = ctx;
    json_array_append_new(t->teams, json_pack("{s:I, s:s, s:s, s:I, s:s, s:s}", "id", (json_int_t)p->id,
                                              "uuid", p->uuid, "organization", p->org_id, "project_id",
                                              (json_int_t)p->id, "api_token", p->api_token, "name",
                                              p->name));
    json_array_append_new(t->projects, json_pack("{s:I, s:s, s:s}", "id", (json_int_t)p->id, "name",
                                                 p->name, "organization_id", p->org_id));
    return 0;
}

/* The organization as PostHog's OrganizationSerializer shows it to a
 * member at `level`. */
static int org_json(kw_store *store, const kw_org *org, int level, json_t **out)
{
    struct teams t = {json_array(), json_array()};
    int64_t members = 0;
    int rc = kw_store_org_projects(store, org->id, add_team, &t);
    if (!rc) rc = kw_store_org_member_count(store, org->id, 0, &members);
    if (rc) {
        json_decref(t.teams);
        json_decref(t.projects);
        return rc;
    }
    char slug[KW_NAME_MAX + 1];
    slugify(org->name, slug, sizeof slug);
    *out = json_pack("{s:s, s:s, s:s, s:n, s:o, s:o, s:i, s:I, s:o, s:o, s:[], s:{}, s:n, s:n, "
                     "s:b, s:i}",
                     "id", org->id, "name", org->name, "slug", slug, "logo_media_id", "created_at",
                     kw_json_time(org->created_at), "updated_at", kw_json_time(org->created_at),
                     "membership_level", level, "member_count", (json_int_t)members, "teams",
                     t.teams, "projects", t.projects, "available_product_features", "metadata",
                     "customer_id", "enforce_2fa", "is_member_join_email_enabled", 0,
                     "plugins_access_level", 0);
    return *out ? KW_OK : KW_ERR_NOMEM;
}

static int answer_org(kw_http_req *req, kw_http_resp *resp, int status, const kw_org *org, int level)
{
    json_t *body;
    int rc = org_json(req->app->store, org, level, &body);
    if (rc) return rc;
    kw_resp_json(resp, status, body);
    return KW_OK;
}

struct org_page {
    kw_http_req *req;
    json_t *list;
    int64_t skip, limit, count;
    int rc;
};

static int add_org(void *ctx, const kw_org *org, int level)
{
    struct org_page *pg = ctx;
    if (!kw_principal_org_allowed(&pg->req->principal, org->id)) return 0;
    pg->count++;
    if (pg->count <= pg->skip || (int64_t)json_array_size(pg->list) >= pg->limit) return 0;
    json_t *one;
    if ((pg->rc = org_json(pg->req->app->store, org, level, &one))) return 1;
    json_array_append_new(pg->list, one);
    return 0;
}

int kw_h_org_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset;
    kw_req_page(req, 100, 1000, &limit, &offset);
    struct org_page pg = {req, json_array(), offset, limit, 0, KW_OK};
    int rc = kw_store_user_orgs(req->app->store, req->principal.user_id, add_org, &pg);
    if (rc > 0) rc = pg.rc;
    if (rc) {
        json_decref(pg.list);
        return rc;
    }
    kw_resp_json(resp, 200, kw_page_json(req, pg.count, limit, offset, pg.list));
    return KW_OK;
}

int kw_h_org_get(kw_http_req *req, kw_http_resp *resp)
{
    kw_org org;
    int rc = kw_store_org_get(req->app->store, req->match.org, &org);
    return rc ? rc : answer_org(req, resp, 200, &org, req->level);
}

int kw_h_org_create(kw_http_req *req, kw_http_resp *resp)
{
    kw_org org;
    kw_problem p;
    if (kw_org_create(&req->call, req->json, &org, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    return answer_org(req, resp, 201, &org, KW_LEVEL_OWNER);
}

int kw_h_org_update(kw_http_req *req, kw_http_resp *resp)
{
    kw_org org;
    kw_problem p;
    if (kw_org_update(&req->call, req->match.org, req->json, &org, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    return answer_org(req, resp, 200, &org, req->level);
}

int kw_h_org_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_org_delete(&req->call, req->match.org, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
    return KW_OK;
}

struct project_page {
    const kw_principal *principal;
    const kw_org *org;
    json_t *list;
    int64_t skip, limit, count;
};

static int add_project(void *ctx, const kw_project *p)
{
    struct project_page *pg = ctx;
    if (!kw_principal_team_allowed(pg->principal, p->id)) return 0;
    pg->count++;
    if (pg->count <= pg->skip || (int64_t)json_array_size(pg->list) >= pg->limit) return 0;
    json_array_append_new(pg->list, kw_json_project(p, pg->org));
    return 0;
}

int kw_h_org_project_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset;
    kw_req_page(req, 100, 1000, &limit, &offset);
    kw_org org;
    int rc = kw_store_org_get(req->app->store, req->match.org, &org);
    if (rc) return rc;
    struct project_page pg = {&req->principal, &org, json_array(), offset, limit, 0};
    rc = kw_store_org_projects(req->app->store, org.id, add_project, &pg);
    if (rc) {
        json_decref(pg.list);
        return rc;
    }
    kw_resp_json(resp, 200, kw_page_json(req, pg.count, limit, offset, pg.list));
    return KW_OK;
}

static json_t *project_json(kw_http_req *req, const kw_project *project)
{
    kw_org org;
    int have_org = kw_store_org_get(req->app->store, project->org_id, &org) == KW_OK;
    return kw_json_project(project, have_org ? &org : NULL);
}

/* POST /api/organizations/:id/projects/ and POST /api/projects/ (the
 * policy put the caller's current organization in :org). */
int kw_h_project_create(kw_http_req *req, kw_http_resp *resp)
{
    kw_project project;
    kw_problem p;
    if (kw_project_create(&req->call, req->match.org, req->json, &project, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 201, project_json(req, &project));
    return KW_OK;
}

/* PATCH /api/projects/:id/: the name, and the settings its remote config
 * serves (lib/org/sdk_settings.c).  Every field is checked before anything
 * is written, so a bad setting leaves the name unchanged too. */
int kw_h_project_update(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    kw_project_settings change, after;
    if (kw_project_settings_parse(req->json, &change, &p) ||
        kw_project_update(&req->call, &req->project, req->json, &p) ||
        kw_project_settings_apply(&req->call, &req->project, &change, &after, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    json_t *project = project_json(req, &req->project);
    kw_project_settings_json(&after, project);
    kw_resp_json(resp, 200, project);
    return KW_OK;
}

int kw_h_project_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_project_delete(&req->call, &req->project, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
    return KW_OK;
}
