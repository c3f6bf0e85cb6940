/* h_activity.c — GET /api/projects/:id/activity_log/ (PostHog's shape).
 *
 * Filters: scope, scopes (comma list), user (id), item_id.  Pagination is
 * by cursor (newest first; `next` carries the last entry's time and id) as
 * PostHog's default, or page/page_size with a count when ?page= is given.
 * page_size is capped at 1000. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

#define MAX_SCOPES 16

struct entries {
    kw_store *store;
    json_t *list;
    kw_time last_time;
    char last_id[KW_ID_LEN + 1];
    int64_t cached_user;
    json_t *cached_user_json;
};

static int add_entry(void *ctx, const kw_activity *a)
{
    struct entries *e = ctx;
    if (a->user_id != e->cached_user || !e->cached_user_json) {
        json_decref(e->cached_user_json);
        e->cached_user = a->user_id;
        e->cached_user_json = kw_json_user_by_id(e->store, a->user_id);
    }
    json_t *detail = json_loads(a->detail, 0, NULL);
    json_array_append_new(
        e->list, json_pack("{s:s, s:O, s:b, s:b, s:s, s:s?, s:s, s:o, s:o, s:s?}", "id", a->id,
                           "user", e->cached_user_json, "unread", 0, "is_system", a->user_id == 0,
                           "activity", a->activity, "item_id", a->item_id[0] ? a->item_id : NULL,
                           "scope", a->scope, "detail", detail ? detail : json_object(),
                           "created_at", kw_json_time(a->created_at), "ip_address",
                           a->ip_address[0] ? a->ip_address : NULL));
    e->last_time = a->created_at;
    snprintf(e->last_id, sizeof e->last_id, "%s", a->id);
    return 0;
}

static int64_t param_int(kw_http_req *req, const char *name, int64_t fallback)
{
    const char *v = kw_req_query(req, name);
    if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 12) return fallback;
    return strtoll(v, NULL, 10);
}

void kw_h_activity_list(kw_http_req *req, kw_http_resp *resp)
{
    const char *scopes[MAX_SCOPES + 1] = {0};
    char scope_buf[512];
    int n = 0;
    const char *scope = kw_req_query(req, "scope");
    if (scope && *scope) scopes[n++] = scope;
    const char *many = kw_req_query(req, "scopes");
    if (many && *many) {
        snprintf(scope_buf, sizeof scope_buf, "%s", many);
        for (char *save, *tok = strtok_r(scope_buf, ",", &save); tok && n < MAX_SCOPES;
             tok = strtok_r(NULL, ",", &save))
            scopes[n++] = tok;
    }
    kw_activity_query q = {0};
    q.project_id = req->project.id;
    q.scopes = n ? scopes : NULL;
    q.user_id = param_int(req, "user", 0);
    q.item_id = kw_req_query(req, "item_id");
    q.ascending = (kw_req_query(req, "ordering") &&
                   strcmp(kw_req_query(req, "ordering"), "created_at") == 0);
    q.limit = param_int(req, "page_size", 100);
    if (q.limit <= 0) q.limit = 100;
    if (q.limit > 1000) q.limit = 1000;
    int64_t page = param_int(req, "page", 0);
    char cursor_id[KW_ID_LEN + 1] = "";
    const char *cursor = kw_req_query(req, "cursor");
    if (!page && cursor) {
        long long t = 0;
        if (sscanf(cursor, "%lld_%36[0-9a-f-]", &t, cursor_id) == 2) {
            q.before = t;
            q.before_id = cursor_id;
        }
    }
    if (page > 0) q.offset = (page - 1) * q.limit;

    struct entries e = {req->app->store, json_array(), 0, "", -1, NULL};
    int rc = kw_store_activity_list(req->app->store, &q, add_entry, &e);
    json_decref(e.cached_user_json);
    int64_t count = 0;
    if (!rc && page > 0) rc = kw_store_activity_count(req->app->store, &q, &count);
    if (rc) {
        json_decref(e.list);
        kw_resp_error(resp, KW_P_SERVER, NULL, KW_MSG_SERVER_ERROR);
        return;
    }
    /* next/previous keep the caller's filters. */
    char query[768];
    int full = (int64_t)json_array_size(e.list) == q.limit;
    int len = snprintf(query, sizeof query, "page_size=%lld", (long long)q.limit);
    if (scope && *scope) len += snprintf(query + len, sizeof query - (size_t)len, "&scope=%s", scope);
    if (q.user_id) len += snprintf(query + len, sizeof query - (size_t)len, "&user=%lld", (long long)q.user_id);
    if (q.ascending) len += snprintf(query + len, sizeof query - (size_t)len, "&ordering=created_at");
    char link[1024];
    json_t *body;
    if (page > 0) {
        json_t *next = json_null(), *prev = json_null();
        if (page * q.limit < count) {
            snprintf(link, sizeof link, "%s&page=%lld", query, (long long)(page + 1));
            next = kw_req_url(req, link);
        }
        if (page > 1) {
            snprintf(link, sizeof link, "%s&page=%lld", query, (long long)(page - 1));
            prev = kw_req_url(req, link);
        }
        body = json_pack("{s:I, s:o, s:o, s:o}", "count", (json_int_t)count, "next", next,
                         "previous", prev, "results", e.list);
    } else {
        json_t *next = json_null();
        if (full) {
            snprintf(link, sizeof link, "%s&cursor=%lld_%s", query, (long long)e.last_time, e.last_id);
            next = kw_req_url(req, link);
        }
        body = json_pack("{s:o, s:n, s:o}", "next", next, "previous", "results", e.list);
    }
    kw_resp_json(resp, 200, body);
}
