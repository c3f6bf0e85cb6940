/* respond.c — building responses: JSON bodies, the one error shape,
 * headers, query parameters and DRF-style pagination. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/strbuf.h"

_Static_assert(sizeof(kw_http_req) - offsetof(kw_http_req, principal) < sizeof(kw_principal) + 16,
               "kw_http_req.principal must stay the last member");
_Static_assert(sizeof(kw_http_resp) - offsetof(kw_http_resp, header_text) < 2048 + 16,
               "kw_http_resp.header_text must stay the last member");

void kw_http_req_init(kw_http_req *req)
{
    memset(req, 0, offsetof(kw_http_req, principal));
    kw_principal_clear(&req->principal);
}

void kw_http_resp_init(kw_http_resp *resp)
{
    memset(resp, 0, offsetof(kw_http_resp, header_text));
    resp->status = 500;
}

void kw_resp_json(kw_http_resp *resp, int status, json_t *body)
{
    json_decref(resp->body);
    if (resp->release) resp->release(resp->release_ctx);
    resp->raw = NULL;
    resp->release = NULL;
    resp->shared = NULL;  /* a ready answer is not this one any more */
    resp->status = status;
    resp->body = body;
}

void kw_http_resp_move(kw_http_resp *dst, kw_http_resp *src)
{
    /* The answer moves whole (status, body, a pre-serialized body with its
     * release, a ready response): dst owns it now, src keeps nothing. */
    memcpy(dst, src, offsetof(kw_http_resp, header_text));
    dst->n_headers = 0;
    dst->header_used = 0;
    /* The values point into src's own header_text: copied, not aliased. */
    for (int i = 0; i < src->n_headers; i++)
        kw_resp_header(dst, src->header_names[i], src->header_values[i]);
    kw_http_resp_init(src);
}

void kw_resp_problem(kw_http_resp *resp, const kw_problem *p)
{
    kw_resp_json(resp, p->status,
                 json_pack("{s:s, s:s, s:s, s:s?}", "type", p->type, "code", p->code, "detail",
                           p->detail, "attr", p->attr));
    if (p->kind == KW_P_UNAVAILABLE) kw_resp_header(resp, "Retry-After", "1");
}

void kw_resp_error(kw_http_resp *resp, kw_problem_kind kind, const char *attr, const char *detail)
{
    kw_problem p;
    kw_problem_set(&p, kind, NULL, attr, "%s", detail);
    kw_resp_problem(resp, &p);
}

void kw_resp_raw(kw_http_resp *resp, int status, const char *type, const char *data, size_t len,
                 void (*release)(void *), void *release_ctx)
{
    json_decref(resp->body);
    resp->body = NULL;
    resp->status = status;
    resp->raw_type = type;
    resp->raw = data;
    resp->raw_len = len;
    resp->release = release;
    resp->release_ctx = release_ctx;
    resp->shared = NULL;
}

void kw_resp_header(kw_http_resp *resp, const char *name, const char *value)
{
    size_t room = sizeof resp->header_text - resp->header_used;
    size_t len = strlen(value);
    /* Cannot happen with keyward's own headers (8 × at most a CSP); a
     * header that does not fit is left out rather than cut. */
    if (resp->n_headers >= KW_RESP_MAX_HEADERS || len >= room) return;
    char *copy = resp->header_text + resp->header_used;
    memcpy(copy, value, len + 1);
    resp->header_used += len + 1;
    resp->header_names[resp->n_headers] = name;
    resp->header_values[resp->n_headers] = copy;
    resp->n_headers++;
}

void kw_resp_throttled(kw_http_resp *resp, int seconds)
{
    if (seconds < 1) seconds = 1;
    kw_problem p;
    kw_problem_set(&p, KW_P_THROTTLED, NULL, NULL,
                   "Request was throttled. Expected available in %d second%s.", seconds,
                   seconds == 1 ? "" : "s");
    kw_resp_problem(resp, &p);
    char text[16];
    snprintf(text, sizeof text, "%d", seconds);
    kw_resp_header(resp, "Retry-After", text);
}

int kw_http_public_url(const char *url, char *out, size_t size)
{
    size_t len = strlen(url);
    while (len && url[len - 1] == '/') len--;
    size_t scheme = strncmp(url, "https://", 8) == 0 ? 8 : strncmp(url, "http://", 7) == 0 ? 7 : 0;
    if (!scheme || len <= scheme || len > KW_PUBLIC_URL_MAX || len >= size || url[scheme] == '/')
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)url[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '?' || ch == '#' || ch == '"' || ch == '\\') return -1;
    }
    memcpy(out, url, len);
    out[len] = '\0';
    return 0;
}

json_t *kw_req_url(const kw_http_req *req, const char *query)
{
    const char *base = req->app ? req->app->public_url : NULL;
    kw_strbuf url;
    kw_sb_init_heap(&url, 16 * 1024);
    kw_sb_appendf(&url, "%s%s?%s", base ? base : "", req->path, query);
    json_t *out = kw_sb_ok(&url) ? json_string(kw_sb_str(&url)) : json_null();
    kw_sb_free(&url);
    return out ? out : json_null();
}

static int64_t query_int(const kw_http_req *req, const char *name, int64_t fallback)
{
    const char *v = kw_req_query(req, name);
    if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 12) return fallback;
    return strtoll(v, NULL, 10);
}

void kw_req_page(const kw_http_req *req, int64_t default_limit, int64_t max_limit, int64_t *limit,
                 int64_t *offset)
{
    *limit = query_int(req, "limit", default_limit);
    if (*limit <= 0) *limit = default_limit;
    if (*limit > max_limit) *limit = max_limit;
    *offset = query_int(req, "offset", 0);
}

json_t *kw_page_json(const kw_http_req *req, int64_t count, int64_t limit, int64_t offset,
                     json_t *results)
{
    char q[96];
    json_t *next = json_null(), *prev = json_null();
    if (offset + limit < count) {
        snprintf(q, sizeof q, "limit=%lld&offset=%lld", (long long)limit, (long long)(offset + limit));
        next = kw_req_url(req, q);
    }
    if (offset > 0) {
        int64_t p = offset - limit > 0 ? offset - limit : 0;
        snprintf(q, sizeof q, "limit=%lld&offset=%lld", (long long)limit, (long long)p);
        prev = kw_req_url(req, q);
    }
    return json_pack("{s:I, s:o, s:o, s:o}", "count", (json_int_t)count, "next", next, "previous",
                     prev, "results", results);
}
