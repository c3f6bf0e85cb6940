/* flag_match.c — one feature-flag property filter against caller properties.
 *
 * PostHog's SDKs (posthog-python match_property) and its flag service agree
 * on the common cases and we follow them: values are compared as Python's
 * str() would print them, case-insensitively; a list value under exact /
 * is_not means "any of"; regex is an unanchored search.  Where the two
 * PostHog implementations disagree we picked one on purpose and say so here
 * and in docs/flags.md:
 *   - a property the caller did not send makes the filter not match (the
 *     SDK calls that "inconclusive" and asks the server; we *are* the server
 *     and have every property the caller sent), except is_not_set, which
 *     then matches;
 *   - gt/gte/lt/lte compare numerically when both sides parse as numbers
 *     (also numeric strings, as PostHog's flag service does), otherwise as
 *     strings (as posthog-python does).
 * Case folding is ASCII only (PostHog's service also lowercases ASCII for
 * icontains).  Regexes are PCRE2 (UTF + UCP, close to Python's re for the
 * patterns people write).  A member writes them and an anonymous caller
 * runs them, so they run under the bounds flags.h states: compiled and
 * JIT-compiled once per version of a project's flags (kw_flag_regexes,
 * kept with the cached set, read-only and so shared by every thread), a
 * step limit per match, and a per-request time budget.  A pattern that does
 * not compile, a match that hits a bound, or one the spent budget skips,
 * makes both regex and not_regex not match. */
#include "keyward/flags.h"
#include "keyward/keyward.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyward/strbuf.h"

/* A JSON value printed as Python's str() prints it.  Strings are borrowed;
 * everything else is written into buf or, for arrays/objects, allocated. */
typedef struct pystr {
    const char *s;
    size_t len;
    char *owned;
    char buf[40];
} pystr;

/* Python's repr() of a float: the shortest digits that round-trip, fixed
 * notation for exponents in [-4, 16), else "d.ddde+XX"; always a '.' or an
 * exponent ("100.0", "1e+16", "1e-05"). */
static void py_float_repr(double d, char *out, size_t outsz)
{
    if (isnan(d)) { snprintf(out, outsz, "nan"); return; }
    if (isinf(d)) { snprintf(out, outsz, d < 0 ? "-inf" : "inf"); return; }
    char sci[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(sci, sizeof sci, "%.*e", prec - 1, d);
        if (strtod(sci, NULL) == d) break;
    }
    /* sci is "[-]d[.ddd]e[+-]XX": pull out the digits and the exponent. */
    char digits[20];
    size_t nd = 0;
    const char *p = sci;
    int neg = (*p == '-');
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (isdigit((unsigned char)*p) && nd < sizeof digits - 1) digits[nd++] = *p;
    digits[nd] = '\0';
    int exp = atoi(p + 1);
    kw_strbuf sb;  /* out is sized for any double; a cut repr is never used */
    kw_sb_init(&sb, out, outsz);
#define PUT(c) do { char ch_ = (c); kw_sb_appendn(&sb, &ch_, 1); } while (0)
    if (neg) PUT('-');
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            PUT('0'); PUT('.');
            for (int i = -1; i > exp; i--) PUT('0');
            for (size_t i = 0; i < nd; i++) PUT(digits[i]);
        } else {
            for (int i = 0; i <= exp; i++) PUT((size_t)i < nd ? digits[i] : '0');
            PUT('.');
            if ((size_t)exp + 1 < nd)
                for (size_t i = (size_t)exp + 1; i < nd; i++) PUT(digits[i]);
            else
                PUT('0');
        }
    } else {
        PUT(digits[0]);
        if (nd > 1) {
            PUT('.');
            for (size_t i = 1; i < nd; i++) PUT(digits[i]);
        }
        kw_sb_appendf(&sb, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    }
#undef PUT
}

/* Returns 0, or -1 when memory ran out (arrays/objects only). */
static int pystr_of(const json_t *v, pystr *ps)
{
    ps->owned = NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        ps->s = json_string_value(v);
        ps->len = json_string_length(v);
        return 0;
    case JSON_INTEGER:
        snprintf(ps->buf, sizeof ps->buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        py_float_repr(json_real_value(v), ps->buf, sizeof ps->buf);
        break;
    case JSON_TRUE: snprintf(ps->buf, sizeof ps->buf, "True"); break;
    case JSON_FALSE: snprintf(ps->buf, sizeof ps->buf, "False"); break;
    case JSON_NULL: snprintf(ps->buf, sizeof ps->buf, "None"); break;
    default:
        /* Python would print a repr (['a', 'b']); compact JSON is close
         * enough for a case nobody targets on purpose. */
        ps->owned = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!ps->owned) return -1;
        ps->s = ps->owned;
        ps->len = strlen(ps->owned);
        return 0;
    }
    ps->s = ps->buf;
    ps->len = strlen(ps->buf);
    return 0;
}

static void pystr_free(pystr *ps)
{
    free(ps->owned);
    ps->owned = NULL;
}

static int ieq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return 0;
    for (size_t i = 0; i < alen; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i])) return 0;
    return 1;
}

static void lower_into(char *out, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = (char)tolower((unsigned char)s[i]);
}

/* Is needle within hay at some offset, ignoring ASCII case?  In linear
 * time, on lowered copies with memmem (the two-way algorithm): a person
 * property may be megabytes (an inflated /flags body) and a member-written
 * value long and self-overlapping, and the naive scan then took tens of
 * seconds for one anonymous request.  Short strings, nearly all of them,
 * are lowered on the stack. */
static int icontains(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    if (nlen == 0) return 1;
    if (nlen > hlen) return 0;
    char hbuf[512], nbuf[128];
    char *h = hlen <= sizeof hbuf ? hbuf : malloc(hlen);
    char *n = nlen <= sizeof nbuf ? nbuf : malloc(nlen);
    int hit = 0;
    if (h && n) {
        lower_into(h, hay, hlen);
        lower_into(n, needle, nlen);
        hit = memmem(h, hlen, n, nlen) != NULL;
    }
    if (h != hbuf) free(h);
    if (n != nbuf) free(n);
    return hit;
}

/* float() of a JSON value for gt/lt: numbers, and strings that are a whole
 * decimal number (surrounding spaces allowed, hex refused as Python does). */
static int as_number(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 1;
    }
    if (!json_is_string(v)) return 0;
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || strpbrk(s, "xXpP")) return 0;
    char *end;
    double d = strtod(s, &end);
    if (end == s) return 0;
    while (isspace((unsigned char)*end)) end++;
    if (*end) return 0;
    *out = d;
    return 1;
}

static int cmp_op(int c, const char *op)
{
    if (!strcmp(op, "gt")) return c > 0;
    if (!strcmp(op, "gte")) return c >= 0;
    if (!strcmp(op, "lt")) return c < 0;
    return c <= 0; /* lte */
}

/* gt/gte/lt/lte: numerically when both sides are numbers (want parsed
 * once, when the filter was prepared), else as Python compares strings. */
static int match_order(const struct kw_flag_property *f, const json_t *have)
{
    double a;
    if (f->want_is_number && as_number(have, &a)) {
        if (isnan(a) || isnan(f->want_number)) return 0;
        return cmp_op(a < f->want_number ? -1 : a > f->want_number ? 1 : 0, f->op_name);
    }
    pystr hs, ws;
    if (pystr_of(have, &hs) < 0) return 0;
    if (pystr_of(f->want, &ws) < 0) { pystr_free(&hs); return 0; }
    size_t n = hs.len < ws.len ? hs.len : ws.len;
    int c = memcmp(hs.s, ws.s, n); /* UTF-8 byte order = code point order */
    if (c == 0) c = hs.len < ws.len ? -1 : hs.len > ws.len ? 1 : 0;
    pystr_free(&hs);
    pystr_free(&ws);
    return cmp_op(c, f->op_name);
}

/* ---- regexes: compiled once, matched under bounds ------------------- */

typedef struct rx_entry {
    const json_t *node;  /* the filter's "value": the key */
    pcre2_code *code;    /* NULL: refused (too many, too long) or invalid */
} rx_entry;

struct kw_flag_regexes {
    rx_entry *items;
    size_t n;
};

int kw_flag_filter_is_regex(const json_t *filter)
{
    const char *op = json_string_value(json_object_get(filter, "operator"));
    const char *type = json_string_value(json_object_get(filter, "type"));
    if (type && (!strcmp(type, "cohort") || !strcmp(type, "flag"))) return 0;
    return op && (!strcmp(op, "regex") || !strcmp(op, "not_regex"));
}

size_t kw_flag_regex_pattern_size(const json_t *filter)
{
    const json_t *v = json_object_get(filter, "value");
    pystr ps;
    if (!v) v = json_null();
    if (pystr_of(v, &ps) < 0) return SIZE_MAX;
    size_t n = ps.len;
    pystr_free(&ps);
    return n;
}

/* Memory one interpreted match may use for backtracking (JIT matches run
 * on their own fixed stack). */
#define FLAG_REGEX_HEAP_KIB 4096

static _Atomic uint64_t compiles;

uint64_t kw_flag_regex_compiles(void)
{
    return atomic_load_explicit(&compiles, memory_order_relaxed);
}

/* NULL when the pattern is too long or does not compile. */
static pcre2_code *compile_pattern(const json_t *value, int jit)
{
    pystr ps;
    if (pystr_of(value, &ps) < 0) return NULL;
    pcre2_code *re = NULL;
    if (ps.len <= KW_FLAG_REGEX_MAX_BYTES) {
        int err;
        PCRE2_SIZE erroff;
        atomic_fetch_add_explicit(&compiles, 1, memory_order_relaxed);
        re = pcre2_compile((PCRE2_SPTR)ps.s, ps.len, PCRE2_UTF | PCRE2_UCP, &err, &erroff, NULL);
        /* without JIT (no executable memory) the interpreter runs it */
        if (re && jit) pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    }
    pystr_free(&ps);
    return re;
}

static int by_node(const void *a, const void *b)
{
    const json_t *x = ((const rx_entry *)a)->node, *y = ((const rx_entry *)b)->node;
    return x < y ? -1 : x > y;
}

int kw_flag_regexes_build(const json_t *flags, kw_flag_regexes **out)
{
    kw_flag_regexes *r = calloc(1, sizeof *r);
    if (!r) return KW_ERR_NOMEM;
    size_t cap = 0, i, j, k;
    const json_t *flag, *group, *filter;
    json_array_foreach(flags, i, flag) {
        size_t in_flag = 0;
        const json_t *groups = json_object_get(json_object_get(flag, "filters"), "groups");
        json_array_foreach(groups, j, group) {
            json_array_foreach(json_object_get(group, "properties"), k, filter) {
                const json_t *value = json_object_get(filter, "value");
                if (!kw_flag_filter_is_regex(filter)) continue;
                /* a flag stored before the limits were enforced: its
                 * filters past the limit stay uncompiled (no match) */
                int allowed = ++in_flag <= KW_FLAG_REGEX_MAX_PER_FLAG;
                /* null, true and false are shared nodes (jansson
                 * singletons), no key; their patterns ("None", "True",
                 * "False") are compiled where they are matched */
                if (!value || json_is_null(value) || json_is_boolean(value)) continue;
                if (r->n == cap) {
                    cap = cap ? cap * 2 : 16;
                    rx_entry *bigger = realloc(r->items, cap * sizeof *bigger);
                    if (!bigger) {
                        kw_flag_regexes_free(r);
                        return KW_ERR_NOMEM;
                    }
                    r->items = bigger;
                }
                r->items[r->n++] = (rx_entry){value, allowed ? compile_pattern(value, 1) : NULL};
            }
        }
    }
    if (r->n > 1) qsort(r->items, r->n, sizeof *r->items, by_node);
    *out = r;
    return KW_OK;
}

void kw_flag_regexes_free(kw_flag_regexes *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) pcre2_code_free(r->items[i].code);
    free(r->items);
    free(r);
}

void kw_flag_budget_init(kw_flag_budget *b)
{
    b->regex_ns_left = (int64_t)KW_FLAG_REGEX_BUDGET_MS * 1000000;
    b->skipped = 0;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* 1 match, 0 no match, -1 pattern invalid, match aborted by its limit, or
 * not run because the request's budget is spent. */
static int regex_search(const json_t *pattern, const json_t *subject, const kw_flag_context *ctx)
{
    kw_flag_budget *budget = ctx ? ctx->budget : NULL;
    if (budget && budget->regex_ns_left <= 0) {
        budget->skipped++;
        return -1;
    }
    const rx_entry *cached = NULL;
    if (ctx && ctx->regexes && ctx->regexes->n) {
        rx_entry key = {pattern, NULL};
        cached = bsearch(&key, ctx->regexes->items, ctx->regexes->n, sizeof key, by_node);
    }
    /* not from the table's flags (a caller without one): compile here */
    pcre2_code *owned = cached ? NULL : compile_pattern(pattern, 0);
    const pcre2_code *re = cached ? cached->code : owned;
    if (!re) return -1;

    pystr ss;
    int rc = -1;
    pcre2_match_data *md = NULL;
    pcre2_match_context *mc = NULL;
    if (pystr_of(subject, &ss) < 0) goto done;
    md = pcre2_match_data_create_from_pattern(re, NULL);
    mc = pcre2_match_context_create(NULL);
    if (!md || !mc) goto unmatched;
    pcre2_set_match_limit(mc, KW_FLAG_REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(mc, KW_FLAG_REGEX_MATCH_LIMIT);
    pcre2_set_heap_limit(mc, FLAG_REGEX_HEAP_KIB); /* the interpreter's backtracking frames */
    int64_t start = budget ? monotonic_ns() : 0;
    int m = pcre2_match(re, (PCRE2_SPTR)ss.s, ss.len, 0, 0, md, mc);
    if (budget) budget->regex_ns_left -= monotonic_ns() - start;
    if (m >= 0) rc = 1;
    else if (m == PCRE2_ERROR_NOMATCH) rc = 0;
unmatched:
    pystr_free(&ss);
done:
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    pcre2_code_free(owned);
    return rc;
}

/* exact: want may be a list (any element), else one value. */
static int match_exact(const json_t *want, const json_t *have)
{
    pystr hs;
    int hit = 0;
    if (pystr_of(have, &hs) < 0) return 0;
    if (json_is_array(want)) {
        size_t i;
        const json_t *el;
        json_array_foreach(want, i, el) {
            pystr ws;
            if (pystr_of(el, &ws) < 0) continue;
            hit = ieq(ws.s, ws.len, hs.s, hs.len);
            pystr_free(&ws);
            if (hit) break;
        }
    } else {
        pystr ws;
        if (pystr_of(want, &ws) == 0) {
            hit = ieq(ws.s, ws.len, hs.s, hs.len);
            pystr_free(&ws);
        }
    }
    pystr_free(&hs);
    return hit;
}

/* starts_with / ends_with / icontains family: have (haystack) vs want. */
static int match_affix(const char *op, const json_t *want, const json_t *have)
{
    pystr hs, ws;
    int hit = 0;
    if (pystr_of(have, &hs) < 0) return 0;
    if (pystr_of(want, &ws) < 0) { pystr_free(&hs); return 0; }
    if (strstr(op, "icontains"))
        hit = icontains(hs.s, hs.len, ws.s, ws.len);
    else if (strstr(op, "starts_with"))
        hit = ws.len <= hs.len && ieq(hs.s, ws.len, ws.s, ws.len);
    else
        hit = ws.len <= hs.len && ieq(hs.s + hs.len - ws.len, ws.len, ws.s, ws.len);
    pystr_free(&hs);
    pystr_free(&ws);
    return strncmp(op, "not_", 4) ? hit : !hit;
}

int kw_flag_match_property(const json_t *filter, const json_t *properties)
{
    return kw_flag_match_property_in(filter, properties, NULL);
}

/* Operator names, read once per filter into what matching switches on. */
static const struct {
    const char *name;
    enum kw_flag_op op;
} OPS[] = {
    {"exact", KW_FLAG_OP_EXACT},          {"is_not", KW_FLAG_OP_IS_NOT},
    {"is_set", KW_FLAG_OP_IS_SET},        {"is_not_set", KW_FLAG_OP_IS_NOT_SET},
    {"icontains", KW_FLAG_OP_AFFIX},      {"not_icontains", KW_FLAG_OP_AFFIX},
    {"starts_with", KW_FLAG_OP_AFFIX},    {"not_starts_with", KW_FLAG_OP_AFFIX},
    {"ends_with", KW_FLAG_OP_AFFIX},      {"not_ends_with", KW_FLAG_OP_AFFIX},
    {"regex", KW_FLAG_OP_REGEX},          {"not_regex", KW_FLAG_OP_NOT_REGEX},
    {"gt", KW_FLAG_OP_ORDER},             {"gte", KW_FLAG_OP_ORDER},
    {"lt", KW_FLAG_OP_ORDER},             {"lte", KW_FLAG_OP_ORDER},
};

void kw_flag_property_prepare(const json_t *filter, struct kw_flag_property *f)
{
    memset(f, 0, sizeof *f);
    f->op = KW_FLAG_OP_NEVER;
    f->op_name = "exact";
    f->want = json_null();
    if (!json_is_object(filter)) return;
    const char *type = json_string_value(json_object_get(filter, "type"));
    /* Cohorts need the cohort definitions and person history; flag
     * dependencies need the other flags' results.  Neither is here. */
    if (type && (!strcmp(type, "cohort") || !strcmp(type, "flag"))) return;
    if (!(f->key = json_string_value(json_object_get(filter, "key")))) return;
    const char *op = json_string_value(json_object_get(filter, "operator"));
    if (op && *op) f->op_name = op;
    const json_t *want = json_object_get(filter, "value");
    if (want) f->want = want;
    /* Unknown operators, dates (is_date_*) and semver_*: not supported. */
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (!strcmp(f->op_name, OPS[i].name)) f->op = OPS[i].op;
    if (f->op == KW_FLAG_OP_ORDER) f->want_is_number = as_number(f->want, &f->want_number);
}

int kw_flag_property_match(const struct kw_flag_property *f, const json_t *properties,
                           const kw_flag_context *ctx)
{
    if (f->op == KW_FLAG_OP_NEVER) return 0;
    const json_t *have = json_is_object(properties) ? json_object_get(properties, f->key) : NULL;
    if (f->op == KW_FLAG_OP_IS_NOT_SET) return have == NULL;
    if (!have) return 0;
    /* posthog-python: a null property matches nothing but is_not. */
    if (json_is_null(have) && f->op != KW_FLAG_OP_IS_NOT) return 0;
    switch (f->op) {
    case KW_FLAG_OP_IS_SET: return 1;
    case KW_FLAG_OP_EXACT: return match_exact(f->want, have);
    case KW_FLAG_OP_IS_NOT: return !match_exact(f->want, have);
    case KW_FLAG_OP_AFFIX: return match_affix(f->op_name, f->want, have);
    case KW_FLAG_OP_REGEX: return regex_search(f->want, have, ctx) == 1;
    case KW_FLAG_OP_NOT_REGEX: return regex_search(f->want, have, ctx) == 0;
    case KW_FLAG_OP_ORDER: return match_order(f, have);
    case KW_FLAG_OP_NEVER:
    case KW_FLAG_OP_IS_NOT_SET: break;
    }
    return 0;
}

int kw_flag_match_property_in(const json_t *filter, const json_t *properties,
                              const kw_flag_context *ctx)
{
    struct kw_flag_property f;
    kw_flag_property_prepare(filter, &f);
    return kw_flag_property_match(&f, properties, ctx);
}
