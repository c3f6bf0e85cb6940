/* h_group_types.c — a project's group types (PostHog's group analytics):
 * GET /api/projects/:id/groups_types/ and PATCH
 * /api/projects/:id/groups_types/update_metadata (display names).  The
 * types themselves are learned from captured events (lib/events/
 * group_types.c); the flag definitions serve them as group_type_mapping. */
#include "http/http.h"
#include "keyward/keyward.h"

int kw_h_group_types_list(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    json_t *list;
    if (kw_group_types_json(&req->call, req->project.id, &list, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 200, list);
    return KW_OK;
}

int kw_h_group_types_rename(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    json_t *list;
    if (kw_group_types_rename(&req->call, &req->project, req->json, &list, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 200, list);
    return KW_OK;
}
