/* h_activity.c — GET /api/projects/:id/activity_log/ (PostHog's shape).
 *
 * Filters: scope, scopes (comma list), user (id), item_id.  Pagination is
 * by cursor (newest first; `next` carries the last entry's time and id) as
 * PostHog's default, or page/page_size with a count when ?page= is given.
 * page_size is capped at 1000. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/strbuf.h"

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

/* The link to another page: the filters plus this page's position.  A
 * filter too long to repeat (cannot happen under the query caps) gives no
 * link rather than a cut one. */
static json_t *page_link(const kw_http_req *req, const kw_strbuf *filters, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *page_link(const kw_http_req *req, const kw_strbuf *filters, const char *fmt, ...)
{
    if (!kw_sb_ok(filters)) return json_null();
    kw_strbuf link;
    kw_sb_init_heap(&link, 5 * KW_QUERY_VALUE_MAX);
    kw_sb_append(&link, kw_sb_str(filters));
    va_list ap;
    va_start(ap, fmt);
    kw_sb_vappendf(&link, fmt, ap);
    va_end(ap);
    json_t *url = kw_sb_ok(&link) ? kw_req_url(req, kw_sb_str(&link)) : json_null();
    kw_sb_free(&link);
    return url;
}

int kw_h_activity_list(kw_http_req *req, kw_http_resp *resp)
{
    const char *scopes[MAX_SCOPES + 1] = {0};
    char scope_buf[KW_QUERY_VALUE_MAX + 1];  /* dispatch caps every value */
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
        return rc;
    }
    /* next/previous keep the caller's filters (values encoded again). */
    kw_strbuf query;
    kw_sb_init_heap(&query, 4 * KW_QUERY_VALUE_MAX);
    int full = (int64_t)json_array_size(e.list) == q.limit;
    kw_sb_appendf(&query, "page_size=%lld", (long long)q.limit);
    if (scope && *scope) {
        kw_sb_append(&query, "&scope=");
        kw_sb_urlencode(&query, scope);
    }
    if (q.user_id) kw_sb_appendf(&query, "&user=%lld", (long long)q.user_id);
    if (q.ascending) kw_sb_append(&query, "&ordering=created_at");
    json_t *body;
    if (page > 0) {
        json_t *next = json_null(), *prev = json_null();
        if (page * q.limit < count) next = page_link(req, &query, "&page=%lld", (long long)(page + 1));
        if (page > 1) prev = page_link(req, &query, "&page=%lld", (long long)(page - 1));
        body = json_pack("{s:I, s:o, s:o, s:o}", "count", (json_int_t)count, "next", next,
                         "previous", prev, "results", e.list);
    } else {
        json_t *next = json_null();
        if (full) next = page_link(req, &query, "&cursor=%lld_%s", (long long)e.last_time, e.last_id);
        body = json_pack("{s:o, s:n, s:o}", "next", next, "previous", "results", e.list);
    }
    kw_sb_free(&query);
    kw_resp_json(resp, 200, body);
    return KW_OK;
}
