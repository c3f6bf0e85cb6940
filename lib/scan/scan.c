/* scan.c — the scanning engine: every rule compiled into one database, and
 * kw_scan_buffer(), which turns the anchor matches in a buffer into
 * findings.
 *
 * Hyperscan (block mode) runs all rules in one pass over the buffer; the
 * match callback only appends (rule, from, to) to a per-scratch array that
 * grows geometrically and is reused across scans, so the hot loop does not
 * allocate.  Rules with a native finder (the generic assignment rule, see
 * scan_generic.c) are left out of the database and add their candidates
 * to the same array after the pass.  Then each candidate goes through its rule's extract
 * function (scan_rules.c), overlapping findings are resolved by rule
 * priority (a phx_ key inside `token = "..."` is reported once, as a phx_
 * key), and the survivors are located (line, column), masked,
 * fingerprinted and handed to the caller in offset order.
 *
 * Where Hyperscan is missing (it is x86-only in Debian) the same rules run
 * on PCRE2 with JIT, one pattern at a time: slower, same results, because
 * every built-in anchor is written to mean the same thing to both. */
#include "scan/scan_internal.h"

#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "keyward/keyward.h"

#ifdef KW_HAVE_HYPERSCAN
#include <hs/hs.h>
#else
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif

typedef struct candidate {
    unsigned rule;
    size_t from, to;
} candidate;

typedef struct found {
    unsigned rule;
    int priority; /* copied from the rule so qsort needs no context */
    kw_scan_span span;
} found;

struct kw_scan_engine {
    const kw_scan_rules *rules;
#ifdef KW_HAVE_HYPERSCAN
    hs_database_t *db;
    hs_scratch_t *prototype; /* cloned for each kw_scan_scratch */
#else
    pcre2_code **codes;
#endif
};

struct kw_scan_scratch {
#ifdef KW_HAVE_HYPERSCAN
    hs_scratch_t *hs;
#else
    pcre2_match_data *match_data;
#endif
    candidate *cands;
    size_t ncands, cands_cap;
    found *found;
    size_t nfound, found_cap;
    int out_of_memory;
};

const kw_scan_rules *kw_scan_engine_rules(const kw_scan_engine *engine) { return engine->rules; }

static void set_err(char *err, size_t errsz, const char *fmt, const char *a, const char *b)
{
    if (err && errsz) snprintf(err, errsz, fmt, a, b);
}

#ifdef KW_HAVE_HYPERSCAN

const char *kw_scan_engine_backend(void) { return "hyperscan"; }

int kw_scan_engine_new_cached(const kw_scan_rules *rules, const char *cache_dir,
                              kw_scan_engine **out, char *err, size_t errsz)
{
    int rc = KW_ERR_NOMEM;
    size_t n = rules->count;
    kw_scan_engine *engine = calloc(1, sizeof *engine);
    const char **patterns = calloc(n, sizeof *patterns);
    unsigned *flags = calloc(n, sizeof *flags);
    unsigned *ids = calloc(n, sizeof *ids);
    hs_compile_error_t *compile_error = NULL;
    if (!engine || !patterns || !flags || !ids) goto cleanup;
    engine->rules = rules;
    unsigned m = 0; /* rules the database runs: all but the natively found ones */
    for (size_t i = 0; i < n; i++) {
        const kw_scan_rule *r = &rules->items[i];
        if (r->find) continue;
        patterns[m] = r->pattern;
        ids[m] = (unsigned)i;
        flags[m] = 0;
        if (r->needs_start) flags[m] |= HS_FLAG_SOM_LEFTMOST;
        if (r->caseless) flags[m] |= HS_FLAG_CASELESS;
        m++;
    }
    if (m == 0) { /* nothing for Hyperscan to do */
        *out = engine;
        engine = NULL;
        rc = KW_OK;
        goto cleanup;
    }
    char cached[KW_SCAN_CACHE_NAME_MAX] = "";
    if (cache_dir && *cache_dir) {
        kw_scan_cache_key(patterns, flags, ids, m, cached);
        engine->db = kw_scan_cache_load(cache_dir, cached);
    }
    if (engine->db) {
        cached[0] = '\0';  /* loaded: nothing to store */
    } else if (hs_compile_multi(patterns, flags, ids, m, HS_MODE_BLOCK, NULL, &engine->db,
                                &compile_error) != HS_SUCCESS) {
        int at = compile_error ? compile_error->expression : -1;
        set_err(err, errsz, "rule '%s': %s", at >= 0 ? rules->items[ids[at]].id : "?",
                compile_error ? compile_error->message : "compile failed");
        hs_free_compile_error(compile_error);
        rc = KW_ERR_INVALID;
        goto cleanup;
    }
    if (hs_alloc_scratch(engine->db, &engine->prototype) != HS_SUCCESS) goto cleanup;
    if (cached[0]) kw_scan_cache_store(cache_dir, cached, engine->db);
    *out = engine;
    engine = NULL;
    rc = KW_OK;
cleanup:
    kw_scan_engine_free(engine);
    free(patterns);
    free(flags);
    free(ids);
    return rc;
}

int kw_scan_engine_new(const kw_scan_rules *rules, kw_scan_engine **out, char *err, size_t errsz)
{
    return kw_scan_engine_new_cached(rules, NULL, out, err, errsz);
}

void kw_scan_engine_free(kw_scan_engine *engine)
{
    if (!engine) return;
    hs_free_scratch(engine->prototype);
    hs_free_database(engine->db);
    free(engine);
}

int kw_scan_scratch_new(const kw_scan_engine *engine, kw_scan_scratch **out)
{
    kw_scan_scratch *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    if (engine->prototype && hs_clone_scratch(engine->prototype, &s->hs) != HS_SUCCESS) {
        free(s);
        return KW_ERR_NOMEM;
    }
    *out = s;
    return KW_OK;
}

static void scratch_free_backend(kw_scan_scratch *s) { hs_free_scratch(s->hs); }

#else /* PCRE2 */

const char *kw_scan_engine_backend(void) { return "pcre2-jit"; }

/* PCRE2 compiles each pattern on first use (JIT); nothing to keep. */
int kw_scan_engine_new_cached(const kw_scan_rules *rules, const char *cache_dir,
                              kw_scan_engine **out, char *err, size_t errsz)
{
    (void)cache_dir;
    return kw_scan_engine_new(rules, out, err, errsz);
}

int kw_scan_engine_new(const kw_scan_rules *rules, kw_scan_engine **out, char *err, size_t errsz)
{
    kw_scan_engine *engine = calloc(1, sizeof *engine);
    if (!engine) return KW_ERR_NOMEM;
    engine->rules = rules;
    engine->codes = calloc(rules->count ? rules->count : 1, sizeof *engine->codes);
    if (!engine->codes) goto nomem;
    for (size_t i = 0; i < rules->count; i++) {
        const kw_scan_rule *r = &rules->items[i];
        if (r->find) continue; /* found natively; codes[i] stays NULL */
        int errcode;
        PCRE2_SIZE erroffset;
        engine->codes[i] = pcre2_compile((PCRE2_SPTR)r->pattern, PCRE2_ZERO_TERMINATED,
                                         r->caseless ? PCRE2_CASELESS : 0, &errcode, &erroffset,
                                         NULL);
        if (!engine->codes[i]) {
            char msg[160];
            pcre2_get_error_message(errcode, (PCRE2_UCHAR *)msg, sizeof msg);
            set_err(err, errsz, "rule '%s': %s", r->id, msg);
            kw_scan_engine_free(engine);
            return KW_ERR_INVALID;
        }
        pcre2_jit_compile(engine->codes[i], PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    }
    *out = engine;
    return KW_OK;
nomem:
    kw_scan_engine_free(engine);
    return KW_ERR_NOMEM;
}

void kw_scan_engine_free(kw_scan_engine *engine)
{
    if (!engine) return;
    if (engine->codes)
        for (size_t i = 0; i < engine->rules->count; i++) pcre2_code_free(engine->codes[i]);
    free(engine->codes);
    free(engine);
}

int kw_scan_scratch_new(const kw_scan_engine *engine, kw_scan_scratch **out)
{
    (void)engine;
    kw_scan_scratch *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    s->match_data = pcre2_match_data_create(1, NULL);
    if (!s->match_data) {
        free(s);
        return KW_ERR_NOMEM;
    }
    *out = s;
    return KW_OK;
}

static void scratch_free_backend(kw_scan_scratch *s) { pcre2_match_data_free(s->match_data); }

#endif

void kw_scan_scratch_free(kw_scan_scratch *s)
{
    if (!s) return;
    scratch_free_backend(s);
    free(s->cands);
    free(s->found);
    free(s);
}

static int push_candidate(kw_scan_scratch *s, unsigned rule, size_t from, size_t to)
{
    if (s->ncands == s->cands_cap) {
        size_t cap = s->cands_cap ? s->cands_cap * 2 : 64;
        candidate *c = realloc(s->cands, cap * sizeof *c);
        if (!c) {
            s->out_of_memory = 1;
            return 1;
        }
        s->cands = c;
        s->cands_cap = cap;
    }
    s->cands[s->ncands++] = (candidate){rule, from, to};
    return 0;
}

#ifdef KW_HAVE_HYPERSCAN
static int on_hs_match(unsigned id, unsigned long long from, unsigned long long to,
                       unsigned flags, void *ctx)
{
    (void)flags;
    return push_candidate(ctx, id, (size_t)from, (size_t)to);
}

static int find_candidates(const kw_scan_engine *engine, kw_scan_scratch *s, const char *data,
                           size_t len)
{
    if (len > UINT_MAX) return KW_ERR_LIMIT;
    if (!engine->db) return KW_OK;
    hs_error_t e = hs_scan(engine->db, data, (unsigned)len, 0, s->hs, on_hs_match, s);
    if (s->out_of_memory) return KW_ERR_NOMEM;
    return e == HS_SUCCESS ? KW_OK : KW_ERR_INVALID;
}
#else
static int find_candidates(const kw_scan_engine *engine, kw_scan_scratch *s, const char *data,
                           size_t len)
{
    for (size_t i = 0; i < engine->rules->count; i++) {
        if (!engine->codes[i]) continue; /* a native rule */
        size_t offset = 0;
        while (offset <= len) {
            int m = pcre2_match(engine->codes[i], (PCRE2_SPTR)data, len, offset, 0,
                                s->match_data, NULL);
            if (m == PCRE2_ERROR_NOMATCH) break;
            if (m < 0) return KW_ERR_INVALID;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->match_data);
            if (push_candidate(s, (unsigned)i, ov[0], ov[1])) return KW_ERR_NOMEM;
            offset = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
        }
    }
    return KW_OK;
}
#endif

typedef struct native_ctx {
    kw_scan_scratch *s;
    unsigned rule;
} native_ctx;

static int on_native_anchor(size_t to, void *ctx)
{
    native_ctx *n = ctx;
    return push_candidate(n->s, n->rule, to, to);
}

/* The rules whose anchors are found in C (scan_generic.c), after the
 * regex pass: their candidates join the same list. */
static int find_native_candidates(const kw_scan_engine *engine, kw_scan_scratch *s,
                                  const char *data, size_t len)
{
    for (size_t i = 0; i < engine->rules->count; i++) {
        const kw_scan_rule *r = &engine->rules->items[i];
        if (!r->find) continue;
        native_ctx n = {s, (unsigned)i};
        r->find(data, len, on_native_anchor, &n);
        if (s->out_of_memory) return KW_ERR_NOMEM;
    }
    return KW_OK;
}

static int push_found(kw_scan_scratch *s, unsigned rule, int priority, const kw_scan_span *span)
{
    if (s->nfound == s->found_cap) {
        size_t cap = s->found_cap ? s->found_cap * 2 : 16;
        found *f = realloc(s->found, cap * sizeof *f);
        if (!f) return KW_ERR_NOMEM;
        s->found = f;
        s->found_cap = cap;
    }
    s->found[s->nfound++] = (found){rule, priority, *span};
    return KW_OK;
}

/* Overlap resolution order: by start, then the more specific rule, then
 * the longer match. */
static int by_start_priority(const void *pa, const void *pb)
{
    const found *a = pa, *b = pb;
    if (a->span.start != b->span.start) return a->span.start < b->span.start ? -1 : 1;
    if (a->priority != b->priority) return b->priority - a->priority;
    if (a->span.len != b->span.len) return a->span.len > b->span.len ? -1 : 1;
    return 0;
}

static int by_report(const void *pa, const void *pb)
{
    const found *a = pa, *b = pb;
    if (a->span.report != b->span.report) return a->span.report < b->span.report ? -1 : 1;
    return a->span.start < b->span.start ? -1 : a->span.start > b->span.start;
}

static void resolve_overlaps(kw_scan_scratch *s)
{
    if (s->nfound > 1) qsort(s->found, s->nfound, sizeof *s->found, by_start_priority);
    size_t kept = 0, covered_to = 0;
    for (size_t i = 0; i < s->nfound; i++) {
        if (kept > 0 && s->found[i].span.start < covered_to) continue;
        covered_to = s->found[i].span.start + s->found[i].span.len;
        s->found[kept++] = s->found[i];
    }
    s->nfound = kept;
    if (kept > 1) qsort(s->found, kept, sizeof *s->found, by_report);
}

/* kw_key_mask, with every byte that is not printable ASCII (NUL included:
 * the mask's length is fixed, a NUL in the secret must not cut it short)
 * shown as '.'. */
static void make_mask(const char *secret, size_t len, char out[KW_MASK_MAX])
{
    kw_key_mask(secret, len, out);
    size_t n = len < 16 ? 8 : 11; /* "********" or "abcd...wxyz" */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x21 || (unsigned char)out[i] > 0x7e) out[i] = '.';
}

static void fingerprint(const char *secret, size_t len, char out[KW_SCAN_FINGERPRINT_LEN + 1])
{
    static const char HEX[] = "0123456789abcdef";
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)secret, len, digest);
    for (size_t i = 0; i < sizeof digest; i++) {
        out[2 * i] = HEX[digest[i] >> 4];
        out[2 * i + 1] = HEX[digest[i] & 15];
    }
    out[KW_SCAN_FINGERPRINT_LEN] = '\0';
}

/* Whether the line starting at line_start carries "keyward:allow".  The
 * answer is remembered per line (*cached_start), so a line with many
 * findings is searched once: the lookup stays linear in the line. */
static int line_allows(const char *data, size_t len, size_t line_start, size_t offset,
                       size_t *cached_start, int *cached)
{
    if (*cached_start == line_start) return *cached;
    const char *eol = memchr(data + offset, '\n', len - offset);
    size_t line_end = eol ? (size_t)(eol - data) : len;
    *cached_start = line_start;
    *cached = memmem(data + line_start, line_end - line_start, "keyward:allow", 13) != NULL;
    return *cached;
}

int kw_scan_buffer(const kw_scan_engine *engine, kw_scan_scratch *s, const char *data,
                   size_t len, unsigned flags, kw_scan_finding_fn fn, void *ctx)
{
    const kw_scan_rules *rules = engine->rules;
    s->ncands = 0;
    s->nfound = 0;
    s->out_of_memory = 0;
    int rc = find_candidates(engine, s, data, len);
    if (!rc) rc = find_native_candidates(engine, s, data, len);
    if (rc) return rc;
    for (size_t i = 0; i < s->ncands; i++) {
        const candidate *c = &s->cands[i];
        /* Ids come from the database, which may have been read from the
         * cache (scan_cache.c): never trusted to index the rules. */
        if (c->rule >= rules->count) continue;
        const kw_scan_rule *rule = &rules->items[c->rule];
        kw_scan_span span;
        if (!rule->needs_start && c->to < rule->anchor_len) continue;
        if (rule->extract(rule, data, len, c->from, c->to, flags, &span) && push_found(s, c->rule, rule->priority, &span))
            return KW_ERR_NOMEM;
    }
    resolve_overlaps(s);

    size_t line = 1, line_start = 0, counted_to = 0, allow_start = SIZE_MAX;
    int allow = 0;
    for (size_t i = 0; i < s->nfound; i++) {
        const found *f = &s->found[i];
        const kw_scan_rule *rule = &rules->items[f->rule];
        kw_scan_finding finding = {
            .rule_id = rule->id,
            .rule_description = rule->description,
            .confidence = f->span.confidence,
            .offset = f->span.report,
            .secret_offset = f->span.start,
            .secret_len = f->span.len,
        };
        if (flags & (KW_SCAN_LOCATE | KW_SCAN_HONOR_ALLOW)) {
            /* findings come in offset order, so counting is incremental */
            for (const char *p = data + counted_to;
                 (p = memchr(p, '\n', (size_t)(data + f->span.report - p))) != NULL; p++) {
                line++;
                line_start = (size_t)(p - data) + 1;
            }
            counted_to = f->span.report;
            if ((flags & KW_SCAN_HONOR_ALLOW) && line_allows(data, len, line_start, f->span.report, &allow_start, &allow))
                continue;
            finding.line = line;
            finding.column = f->span.report - line_start + 1;
        }
        make_mask(data + f->span.start, f->span.len, finding.mask);
        if (flags & KW_SCAN_LOCATE) fingerprint(data + f->span.start, f->span.len, finding.fingerprint);
        rc = fn(&finding, data, ctx);
        if (rc) return rc;
    }
    return KW_OK;
}

int kw_scan_looks_binary(const char *data, size_t len)
{
    return memchr(data, '\0', len < 8192 ? len : 8192) != NULL;
}
