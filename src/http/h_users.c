/* h_users.c — PATCH /api/users/:id/: departure (is_active).
 *
 * The one user field an organization admin may change about someone else
 * is is_active: {"is_active": false} makes the user's personal keys stop
 * working at once (project secret keys they created keep working).  :id is
 * the user's numeric id (the "id" of user objects) or "@me"; the rules
 * — admin of every organization the user belongs to, never of a lower
 * level than theirs, not yourself — are in lib/org/user.c.  Answers the user object with is_active. */
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/validate.h"

int kw_h_user_update(kw_http_req *req, kw_http_resp *resp)
{
    const char *ref = req->match.id;
    int64_t id = 0;
    if (strcmp(ref, "@me") == 0) {
        id = req->principal.user_id;
    } else if (*ref && strspn(ref, "0123456789") == strlen(ref) && strlen(ref) <= 18) {
        id = strtoll(ref, NULL, 10);
    }
    if (id <= 0) {
        kw_resp_error(resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
        return KW_OK;
    }
    kw_problem p;
    int present = 0, active = 1;
    if (kw_v_object(req->json, &p) || kw_v_bool(req->json, "is_active", &present, &active, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    if (!present) {
        kw_resp_error(resp, KW_P_VALIDATION, "is_active",
                      "Only \"is_active\" can be changed through this route.");
        return KW_OK;
    }
    kw_user user;
    if (kw_user_set_active(&req->call, id, active, &user, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    json_t *out = kw_json_user_basic(&user);
    json_object_set_new(out, "is_active", json_boolean(user.is_active));
    json_object_set_new(out, "date_joined", kw_json_time(user.created_at));
    kw_resp_json(resp, 200, out);
    return KW_OK;
}
