/* test_redact_escapes.c — no secret gets through the scanner or the
 * redactor because of what is written right before it.
 *
 * A generator builds one line per combination of (text before, escape or
 * encoding, secret of every kind, text after): JSON escapes (\n, \t,
 * \u003d, \"), URL encodings (%3D, %2F, %253D), quotes and separators.
 * Every line's secret must be found by kw_scan_buffer and must not appear
 * (whole, or its hidden middle) in the redactor's output, fed whole and
 * in random chunks; the output keeps the input's line count.  The same
 * secrets glued to a longer word ("xphx_...", "\qphx_...") must not be
 * found: an escape is a boundary, a letter is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/scan.h"
#include "test_sink.h"
#include "scan/scan_internal.h"
#include "scan_samples.h"

static const char BASE62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static uint64_t seed = 20261204;

static unsigned next_rand(void)
{
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(seed >> 33);
}

/* n random chars of `alphabet` that the placeholder and entropy filters
 * do not take for an example value (a real secret could be one, rarely;
 * the test would then fail for the wrong reason). */
static void rand_chars(char *out, size_t n, const char *alphabet)
{
    size_t k = strlen(alphabet);
    do {
        for (size_t i = 0; i < n; i++) out[i] = alphabet[next_rand() % k];
        out[n] = '\0';
    } while (kw_scan_is_placeholder(out, n) || kw_scan_entropy(out, n) < 3.5);
}

typedef struct secret {
    char text[512];  /* what is written: the secret, or `name=secret` */
    size_t at, len;  /* the secret inside text */
    int token;       /* a prefixed token (glued to a word it is not one) */
} secret;

enum { KINDS = 14 };

/* Kind k, fresh random content each call. */
static void make_secret(int k, secret *s)
{
    char a[128], b[128];
    s->at = 0;
    s->token = 1;
    switch (k) {
    case 0: kw_key_generate(KW_KEY_PERSONAL, s->text); break;
    case 1: kw_key_generate(KW_KEY_SECRET, s->text); break;
    case 2: kw_key_generate(KW_KEY_PROJECT, s->text); break;
    case 3: /* a legacy PostHog key: no checksum */
        rand_chars(a, 43, BASE62);
        snprintf(s->text, sizeof s->text, "phx_%s", a);
        break;
    case 4:
        rand_chars(a, 16, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        snprintf(s->text, sizeof s->text, "AKIA%s", a);
        break;
    case 5:
        rand_chars(a, 30, BASE62); /* and its CRC32, without which it is no token */
        samples_crc_suffix(a, a + 30);
        snprintf(s->text, sizeof s->text, "ghp_%s", a);
        break;
    case 6:
        rand_chars(a, 22, BASE62);
        rand_chars(b, 59, BASE62);
        snprintf(s->text, sizeof s->text, "github_pat_%s_%s", a, b);
        break;
    case 7: /* the ids hold "1234" and "00000", which are no placeholder there */
        rand_chars(a, 24, BASE62);
        snprintf(s->text, sizeof s->text, "xoxb-1234%04u-100000%05u-%s", next_rand() % 10000,
                 next_rand() % 100000, a);
        break;
    case 8:
        rand_chars(a, 24, BASE62);
        snprintf(s->text, sizeof s->text, "sk_live_%s", a);
        break;
    case 9:
        rand_chars(a, 43, BASE62);
        snprintf(s->text, sizeof s->text, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI5ODc2In0.%s", a);
        break;
    case 10:
        rand_chars(a, 28, BASE62);
        snprintf(s->text, sizeof s->text, "api_key=%s", a);
        s->at = 8;
        s->token = 0;
        break;
    case 11: /* JSON inside a JSON string */
        rand_chars(a, 24, BASE62);
        snprintf(s->text, sizeof s->text, "{\\\"password\\\": \\\"%s\\\"}", a);
        s->at = 17;
        s->token = 0;
        break;
    case 12:
        rand_chars(a, 40, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/");
        snprintf(s->text, sizeof s->text, "AWS_SECRET_ACCESS_KEY=%s", a);
        s->at = 22;
        s->token = 0;
        break;
    default: /* a Slack user token with two more numeric ids */
        rand_chars(a, 32, "0123456789abcdef");
        snprintf(s->text, sizeof s->text, "xoxp-%u00000-%u1234-%u-%s", 1000 + next_rand() % 9000,
                 1000 + next_rand() % 9000, 100 + next_rand() % 900, a);
        break;
    }
    s->len = strlen(s->text) - s->at - (k == 11 ? 3 : 0);
}

static const char *const LEADS[] = {
    "", "msg=", "{\"log\":\"", "GET /cb?next=", "2026-12-04T10:00:00Z INFO ",
};
static const char *const ESCAPES[] = {
    "", "\\n", "\\t", "\\r", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\u003d", "\\u003D",
    "\\u0022", "\\u000a", "\\x3d", "%3D", "%3d", "%2F", "%22", "%20", "%3A", "%26", "%253D",
    "%2522", "\"", "'", "`", "=", ":", " ", "\t", "(", "[", "{", ",", ";", "<", ">", "/", "|",
};
static const char *const TRAILS[] = {
    "", "\\n", "\\\"}", "%26x=1", " end", "\"", ",", "\\u0026", "\\nnext.step=1",
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct planted {
    size_t line_start;   /* offset of the line in the document */
    size_t at, len;      /* the secret, document offsets */
} planted;

typedef struct doc {
    char *data;
    size_t len, cap;
    planted *p;
    size_t n;
} doc;

static void append(doc *d, const char *s)
{
    size_t n = strlen(s);
    if (d->len + n + 1 > d->cap) {
        d->cap = (d->len + n + 1) * 2;
        d->data = realloc(d->data, d->cap);
        assert_non_null(d->data);
    }
    memcpy(d->data + d->len, s, n + 1);
    d->len += n;
}

/* Every lead x escape x kind x trail, one per line. */
static doc generate(void)
{
    doc d = {0};
    size_t lines = COUNT(LEADS) * COUNT(ESCAPES) * KINDS * COUNT(TRAILS);
    d.p = calloc(lines, sizeof *d.p);
    assert_non_null(d.p);
    for (size_t l = 0; l < COUNT(LEADS); l++)
        for (size_t e = 0; e < COUNT(ESCAPES); e++)
            for (int k = 0; k < KINDS; k++)
                for (size_t t = 0; t < COUNT(TRAILS); t++) {
                    secret s;
                    make_secret(k, &s);
                    planted *p = &d.p[d.n++];
                    p->line_start = d.len;
                    append(&d, LEADS[l]);
                    append(&d, ESCAPES[e]);
                    p->at = d.len + s.at;
                    p->len = s.len;
                    append(&d, s.text);
                    append(&d, TRAILS[t]);
                    append(&d, "\n");
                }
    return d;
}

typedef struct hits {
    size_t (*span)[2];
    size_t n, cap;
} hits;

static int collect(const kw_scan_finding *f, const char *data, void *ctx)
{
    (void)data;
    hits *h = ctx;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->span = realloc(h->span, h->cap * sizeof *h->span);
        assert_non_null(h->span);
    }
    h->span[h->n][0] = f->secret_offset;
    h->span[h->n][1] = f->secret_offset + f->secret_len;
    h->n++;
    return 0;
}

static hits scan_all(const char *data, size_t len)
{
    kw_scan_rules *rules;
    kw_scan_engine *engine;
    kw_scan_scratch *scratch;
    char err[256];
    hits h = {0};
    assert_int_equal(kw_scan_rules_new(&rules), KW_OK);
    assert_int_equal(kw_scan_engine_new(rules, &engine, err, sizeof err), KW_OK);
    assert_int_equal(kw_scan_scratch_new(engine, &scratch), KW_OK);
    assert_int_equal(kw_scan_buffer(engine, scratch, data, len, 0, collect, &h), KW_OK);
    kw_scan_scratch_free(scratch);
    kw_scan_engine_free(engine);
    kw_scan_rules_free(rules);
    return h;
}

/* Findings come in offset order: is [at, at+len) inside one of them? */
static int covered(const hits *h, size_t *cursor, size_t at, size_t len)
{
    while (*cursor < h->n && h->span[*cursor][1] <= at) (*cursor)++;
    for (size_t i = *cursor; i < h->n && h->span[i][0] <= at; i++)
        if (h->span[i][1] >= at + len) return 1;
    return 0;
}

static void test_scan_finds_secret_after_every_escape(void **state)
{
    (void)state;
    doc d = generate();
    hits h = scan_all(d.data, d.len);
    size_t cursor = 0, missed = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (covered(&h, &cursor, d.p[i].at, d.p[i].len)) continue;
        if (missed++ < 10) {
            const char *eol = strchr(d.data + d.p[i].line_start, '\n');
            print_error("missed: %.*s\n", (int)(eol - d.data - d.p[i].line_start),
                        d.data + d.p[i].line_start);
        }
    }
    if (missed) fail_msg("%zu of %zu planted secrets not found", missed, d.n);
    free(h.span);
    free(d.data);
    free(d.p);
}


/* Redacts in chunks of 1..max_chunk random bytes (max_chunk 0: whole). */
static sink redact_chunks(const char *in, size_t len, size_t max_chunk)
{
    kw_scan_rules *rules;
    kw_scan_engine *engine;
    kw_redactor *r;
    char err[256];
    sink out = {0};
    assert_int_equal(kw_scan_rules_new(&rules), KW_OK);
    assert_int_equal(kw_scan_engine_new(rules, &engine, err, sizeof err), KW_OK);
    assert_int_equal(kw_redact_new(engine, to_sink, &out, &r), KW_OK);
    for (size_t i = 0; i < len;) {
        size_t n = max_chunk ? 1 + next_rand() % max_chunk : len;
        if (n > len - i) n = len - i;
        assert_int_equal(kw_redact_feed(r, in + i, n), KW_OK);
        i += n;
    }
    assert_int_equal(kw_redact_finish(r), KW_OK);
    kw_redact_free(r);
    kw_scan_engine_free(engine);
    kw_scan_rules_free(rules);
    return out;
}

/* No planted secret, nor the middle its mask hides, is in its output line;
 * there are as many output lines as input lines. */
static void assert_nothing_leaks(const doc *d, const sink *out)
{
    const char *line = out->data;
    size_t leaked = 0;
    for (size_t i = 0; i < d->n; i++) {
        const char *eol = memchr(line, '\n', (size_t)(out->data + out->len - line));
        if (!eol) fail_msg("output has %zu lines, input %zu", i, d->n);
        const char *secret = d->data + d->p[i].at;
        size_t n = d->p[i].len, mid = n / 2 - 4;
        if (memmem(line, (size_t)(eol - line), secret + mid, 8) && leaked++ < 10)
            print_error("leaked: %.*s\n", (int)(eol - line), line);
        line = eol + 1;
    }
    assert_true(line == out->data + out->len);
    if (leaked) fail_msg("%zu of %zu planted secrets leaked", leaked, d->n);
}

static void test_redact_masks_secret_after_every_escape(void **state)
{
    (void)state;
    doc d = generate();
    sink whole = redact_chunks(d.data, d.len, 0);
    assert_nothing_leaks(&d, &whole);
    /* trickled: partial lines, cuts inside escapes and secrets */
    static const size_t MAX_CHUNKS[] = {3, 17, 200, 5000};
    for (size_t c = 0; c < COUNT(MAX_CHUNKS); c++) {
        sink out = redact_chunks(d.data, d.len, MAX_CHUNKS[c]);
        if (out.len != whole.len || memcmp(out.data, whole.data, whole.len) != 0)
            fail_msg("chunks up to %zu bytes: output differs from whole input", MAX_CHUNKS[c]);
        free(out.data);
    }
    free(whole.data);
    free(d.data);
    free(d.p);
}

/* The same secrets glued to a longer word are not tokens: a letter, digit
 * or '_' before them, or a backslash or percent sign that does not make
 * an escape with it. */
static void test_glued_tokens_not_found(void **state)
{
    (void)state;
    static const char *const GLUE[] = {"x", "n", "D", "9", "_", "Zq", "\\q", "%3G", "%G3",
                                       "\\u00g1", "\\xg1", "u003d", "x3d"};
    doc d = {0};
    for (size_t g = 0; g < COUNT(GLUE); g++)
        for (int k = 0; k < KINDS; k++) {
            secret s;
            make_secret(k, &s);
            if (!s.token) continue;
            append(&d, "id ");
            append(&d, GLUE[g]);
            append(&d, s.text);
            append(&d, " end\n");
        }
    hits h = scan_all(d.data, d.len);
    for (size_t i = 0; i < h.n; i++)
        print_error("found: %.*s\n", (int)(h.span[i][1] - h.span[i][0]), d.data + h.span[i][0]);
    assert_int_equal(h.n, 0);
    free(h.span);
    free(d.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_finds_secret_after_every_escape),
        cmocka_unit_test(test_redact_masks_secret_after_every_escape),
        cmocka_unit_test(test_glued_tokens_not_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
