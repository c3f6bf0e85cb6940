/* h_flags.c — feature flag definitions under /api/projects/:id/feature_flags/.
 * Validation and audit live in lib/flags/flag.c; this file translates. */
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/strbuf.h"

/* The list is what every admin tool polls, and a project's flags change a
 * few times a day: so each flag object is rendered once per version of
 * the project's flag set (the flag cache's, forgotten at once after a
 * local flag write and within one poll after another instance's), kept
 * with that set, and a page is the envelope plus a slice of those texts.
 * The page almost every caller asks for — the whole list, with no next or
 * previous link — is the same bytes for everyone, so it is also kept as a
 * ready response: an unchanged project's list then only queues it. */
struct listed {
    kw_flagset_attachment base;
    kw_strbuf text;  /* the live flags' objects, newest first, back to back */
    size_t *start;   /* n + 1 offsets into text: object i is [start[i], start[i + 1]) */
    size_t n, cap;
    kw_strbuf whole;       /* the whole list's answer */
    kw_http_ready *ready;  /* ... ready to queue; NULL without memory */
};

static void listed_free(kw_flagset_attachment *a)
{
    struct listed *l = (struct listed *)a;
    kw_http_ready_free(l->ready);
    kw_sb_free(&l->whole);
    kw_sb_free(&l->text);
    free(l->start);
    free(l);
}

struct listing {
    kw_store *store;
    struct listed *l;
};

static int list_one(void *ctx, const kw_flag *f)
{
    struct listing *c = ctx;
    struct listed *l = c->l;
    if (l->n + 2 > l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        size_t *start = realloc(l->start, cap * sizeof *start);
        if (!start) return KW_ERR_NOMEM;
        l->start = start;
        l->cap = cap;
    }
    json_t *o = kw_json_flag(c->store, f);
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text) return KW_ERR_NOMEM;
    l->start[l->n] = kw_sb_len(&l->text);
    kw_sb_append(&l->text, text);
    free(text);
    if (!kw_sb_ok(&l->text)) return KW_ERR_NOMEM;
    l->start[++l->n] = kw_sb_len(&l->text);
    return KW_OK;
}

/* A page's body: the envelope (`head`, jansson's text of it with an empty
 * results array) with the objects [first, last) put in that array. */
static void page_body(kw_strbuf *body, const struct listed *l, const char *head, size_t head_len,
                      size_t first, size_t last)
{
    if (head_len < 3 || memcmp(head + head_len - 3, "[]}", 3) != 0) {
        body->overflow = 1;
        return;
    }
    kw_sb_appendn(body, head, head_len - 2);
    for (size_t i = first; i < last; i++) {
        if (i > first) KW_SB_LIT(body, ",");
        kw_sb_appendn(body, kw_sb_str(&l->text) + l->start[i], l->start[i + 1] - l->start[i]);
    }
    KW_SB_LIT(body, "]}");
}

/* The whole list's answer: what kw_page_json writes for offset 0 when
 * every object fits one page (no links), built once. */
static void build_whole(struct listed *l)
{
    char head[96];
    int n = snprintf(head, sizeof head, "{\"count\":%zu,\"next\":null,\"previous\":null,\"results\":[]}",
                     l->n);
    kw_sb_init_heap(&l->whole, (size_t)1 << 30);
    if (n > 0 && (size_t)n < sizeof head) page_body(&l->whole, l, head, (size_t)n, 0, l->n);
    if (!kw_sb_ok(&l->whole)) return;
    kw_http_resp ready;
    kw_http_resp_init(&ready);
    /* The set owns the bytes and outlives every use of the response (a
     * request answered with it holds the set): no release here. */
    kw_resp_raw(&ready, 200, "application/json", kw_sb_str(&l->whole), kw_sb_len(&l->whole), NULL,
                NULL);
    l->ready = kw_http_ready_new(&ready);
}

/* The set's rendered list, built with one store read the first time. */
static int listed_of(kw_store *store, const kw_flagset *set, const struct listed **out)
{
    kw_flagset_attachment *have = kw_flagset_attachment_get(set, KW_FLAGSET_ADMIN_LIST);
    if (!have) {
        struct listed *l = calloc(1, sizeof *l);
        if (!l) return KW_ERR_NOMEM;
        l->base.free_fn = listed_free;
        kw_sb_init_heap(&l->text, (size_t)1 << 30);
        struct listing c = {store, l};
        int rc = KW_OK;
        if (!(l->start = malloc(sizeof *l->start))) rc = KW_ERR_NOMEM;
        else l->start[0] = 0;
        if (!rc) rc = kw_store_flag_list(store, set->project_id, KW_FLAG_NEWEST_FIRST, 0, list_one, &c);
        if (rc) {
            listed_free(&l->base);
            return rc;
        }
        build_whole(l);
        have = kw_flagset_attach(set, KW_FLAGSET_ADMIN_LIST, &l->base);
        if (have != &l->base) listed_free(&l->base);
    }
    *out = (const struct listed *)have;
    return KW_OK;
}

static void release_set(void *set) { kw_flagset_release(set); }

int kw_h_flag_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset;
    kw_req_page(req, 100, 1000, &limit, &offset);
    const kw_flagset *set;
    int rc = kw_flagcache_get_at(req->app->flags, req->project.id, kw_req_now(req), &set);
    if (rc) return rc;
    const struct listed *l;
    rc = listed_of(req->app->store, set, &l);
    if (rc) {
        kw_flagset_release(set);
        return rc;
    }
    int64_t count = (int64_t)l->n;
    if (offset == 0 && count <= limit && kw_sb_ok(&l->whole)) {
        /* The set (and with it these bytes) is held until the answer is
         * sent; shared only when nothing before this handler added a
         * header, so the ready response is exactly what would be built. */
        kw_resp_raw(resp, 200, "application/json", kw_sb_str(&l->whole), kw_sb_len(&l->whole),
                    release_set, (void *)set);
        resp->shared = resp->n_headers == 0 ? l->ready : NULL;
        return KW_OK;
    }
    json_t *envelope = kw_page_json(req, count, limit, offset, json_array());
    char *head = envelope ? json_dumps(envelope, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(envelope);
    size_t first = offset < count ? (size_t)offset : l->n;
    size_t last = count - (int64_t)first > limit ? first + (size_t)limit : l->n;
    kw_strbuf body;
    kw_sb_init_heap(&body, (size_t)1 << 30);
    if (head) page_body(&body, l, head, strlen(head), first, last);
    else body.overflow = 1;
    free(head);
    kw_flagset_release(set);
    if (!kw_sb_ok(&body)) {
        kw_sb_free(&body);
        return KW_ERR_NOMEM;
    }
    kw_resp_raw(resp, 200, "application/json", kw_sb_str(&body), kw_sb_len(&body), free,
                body.data);
    return KW_OK;
}

static void respond_flag(kw_http_req *req, kw_http_resp *resp, int failed, int status, kw_flag *f,
                         const kw_problem *p)
{
    if (failed) {
        kw_resp_problem(resp, p);
        return;
    }
    kw_resp_json(resp, status, kw_json_flag(req->app->store, f));
    kw_flag_clear(f);
}

int kw_h_flag_create(kw_http_req *req, kw_http_resp *resp)
{
    kw_flag f;
    kw_problem p;
    int failed = kw_flag_create(&req->call, req->project.id, req->json, &f, &p);
    respond_flag(req, resp, failed, 201, &f, &p);
    return KW_OK;
}

int kw_h_flag_get(kw_http_req *req, kw_http_resp *resp)
{
    kw_flag f;
    kw_problem p;
    int failed = kw_flag_load(&req->call, req->project.id, req->match.id, &f, &p);
    respond_flag(req, resp, failed, 200, &f, &p);
    return KW_OK;
}

int kw_h_flag_update(kw_http_req *req, kw_http_resp *resp)
{
    kw_flag f;
    kw_problem p;
    int failed = kw_flag_update(&req->call, req->project.id, req->match.id, req->json, &f, &p);
    respond_flag(req, resp, failed, 200, &f, &p);
    return KW_OK;
}

int kw_h_flag_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_flag_delete(&req->call, req->project.id, req->match.id, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
    return KW_OK;
}
