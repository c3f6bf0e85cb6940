/* h_members.c — an organization's members over PostHog's routes:
 * GET /api/organizations/:id/members/, PATCH and DELETE
 * …/members/:user_uuid/ (the rules are in lib/org/member.c).  A member is
 * PostHog's OrganizationMemberSerializer: the membership's id (keyward's
 * memberships have none of their own, so the user's uuid), the user, the
 * level and when they joined. */
#include "http/http.h"
#include "keyward/keyward.h"

static json_t *member_json(const kw_member *m)
{
    return json_pack("{s:s, s:o, s:i, s:o, s:o, s:b, s:b, s:n}", "id", m->user.uuid, "user",
                     kw_json_user_basic(&m->user), "level", m->level, "joined_at",
                     kw_json_time(m->joined_at), "updated_at", kw_json_time(m->joined_at),
                     "is_2fa_enabled", 0, "has_social_auth", 0, "last_login");
}

static int add_member(void *ctx, const kw_member *m)
{
    json_array_append_new(ctx, member_json(m));
    return 0;
}

int kw_h_member_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset, count;
    kw_req_page(req, 100, 1000, &limit, &offset);
    json_t *list = json_array();
    int rc = kw_store_org_member_count(req->app->store, req->match.org, 0, &count);
    if (!rc) rc = kw_store_org_members(req->app->store, req->match.org, limit, offset, add_member, list);
    if (rc) {
        json_decref(list);
        return rc;
    }
    kw_resp_json(resp, 200, kw_page_json(req, count, limit, offset, list));
    return KW_OK;
}

int kw_h_member_update(kw_http_req *req, kw_http_resp *resp)
{
    kw_member m;
    kw_problem p;
    if (kw_member_update(&req->call, req->match.org, req->level, req->match.id, req->json, &m, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 200, member_json(&m));
    return KW_OK;
}

int kw_h_member_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_member_remove(&req->call, req->match.org, req->level, req->match.id, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
    return KW_OK;
}
