/* fuzz_scan.c — the scanner (built-in rules, the compiled engine) on a
 * buffer.
 *
 * Input: byte 0 holds the KW_SCAN_* flags (low 3 bits); the rest is the
 * buffer, scanned from an exactly-sized heap copy so ASan sees any read
 * past its end.
 * Invariants:
 *   - findings arrive in offset order, each secret inside the buffer, the
 *     secrets do not overlap, a secret is at most KW_SCAN_MAX_SECRET bytes
 *     (private key blocks excepted);
 *   - the mask is NUL-terminated printable ASCII; line/column (with
 *     KW_SCAN_LOCATE) agree with the newlines before the offset, and the
 *     fingerprint is 64 hex digits;
 *   - a keyward-key rule with high confidence reports a key whose checksum
 *     holds (kw_key_classify says KEYWARD);
 *   - with KW_SCAN_HONOR_ALLOW the findings are a subset of those without;
 *     the same buffer scanned twice gives the same findings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "keyward/keyward.h"
#include "keyward/scan.h"
#include "scan/scan_internal.h"

static kw_scan_rules *rules;
static kw_scan_engine *engine;
static kw_scan_scratch *scratch;

#define MAX_KEEP 4096

typedef struct seen {
    unsigned flags;
    size_t n;
    size_t last_offset;
    size_t offs[MAX_KEEP], lens[MAX_KEEP];
} seen;

static int on_finding(const kw_scan_finding *f, const char *data, void *ctx)
{
    seen *s = ctx;
    (void)data;
    FZ_CHECK(s->n == 0 || f->offset >= s->last_offset, "findings out of order");
    FZ_CHECK(f->rule_id && f->rule_description, "rule id");
    FZ_CHECK(f->confidence == KW_SCAN_MEDIUM || f->confidence == KW_SCAN_HIGH, "confidence");
    /* With KW_SCAN_PARTIAL a private key block cut by the end of the buffer
     * is reported as reaching it, possibly with nothing after its header. */
    FZ_CHECK(f->secret_len > 0 || (s->flags & KW_SCAN_PARTIAL), "empty secret (rule %s)", f->rule_id);
    FZ_CHECK(memchr(f->mask, '\0', sizeof f->mask) != NULL, "mask not terminated");
    for (const char *p = f->mask; *p; p++)
        FZ_CHECK(*p >= 0x21 && *p <= 0x7e, "mask byte 0x%02x", (unsigned char)*p);
    FZ_CHECK(strlen(f->mask) == (f->secret_len < 16 ? 8u : 11u), "mask \"%s\" for a %zu-byte secret",
             f->mask, f->secret_len);
    if (s->n < MAX_KEEP) {
        s->offs[s->n] = f->secret_offset;
        s->lens[s->n] = f->secret_len;
    }
    s->n++;
    s->last_offset = f->offset;
    return 0;
}

typedef struct scan_ctx {
    seen s;
    const char *buf;
    size_t len;
} scan_ctx;

static int check_finding(const kw_scan_finding *f, const char *data, void *vctx)
{
    scan_ctx *c = vctx;
    FZ_CHECK(data == c->buf, "data pointer");
    FZ_CHECK(f->secret_offset <= c->len && f->secret_len <= c->len - f->secret_offset,
             "secret [%zu,+%zu) outside %zu bytes (rule %s)", f->secret_offset, f->secret_len,
             c->len, f->rule_id);
    FZ_CHECK(f->offset <= c->len, "offset %zu", f->offset);
    if (strstr(f->rule_id, "private-key") == NULL)
        FZ_CHECK(f->secret_len <= KW_SCAN_MAX_SECRET, "secret of %zu bytes (rule %s)", f->secret_len,
                 f->rule_id);
    if (c->s.flags & KW_SCAN_LOCATE) {
        size_t line = 1, col_start = 0;
        for (size_t i = 0; i < f->offset; i++)
            if (c->buf[i] == '\n') {
                line++;
                col_start = i + 1;
            }
        FZ_CHECK(f->line == line && f->column == f->offset - col_start + 1,
                 "line/column %zu:%zu, expected %zu:%zu", f->line, f->column, line,
                 f->offset - col_start + 1);
        FZ_CHECK(strlen(f->fingerprint) == KW_SCAN_FINGERPRINT_LEN &&
                     strspn(f->fingerprint, "0123456789abcdef") == KW_SCAN_FINGERPRINT_LEN,
                 "fingerprint");
    }
    if (f->confidence == KW_SCAN_HIGH && strncmp(f->rule_id, "posthog-", 8) == 0 &&
        f->secret_len == KW_KEY_LEN)
        FZ_CHECK(kw_key_classify(c->buf + f->secret_offset, f->secret_len, NULL) == KW_FORMAT_KEYWARD,
                 "high-confidence keyward key with a bad checksum");
    return on_finding(f, data, &c->s);
}

/* No two reported secrets overlap (O(n^2) on the first few hundred). */
static void check_disjoint(const seen *s)
{
    size_t n = s->n < 512 ? s->n : 512;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            FZ_CHECK(s->offs[i] + s->lens[i] <= s->offs[j] || s->offs[j] + s->lens[j] <= s->offs[i],
                     "secrets [%zu,+%zu) and [%zu,+%zu) overlap", s->offs[i], s->lens[i], s->offs[j],
                     s->lens[j]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    FZ_CHECK(kw_scan_rules_new(&rules) == KW_OK, "rules");
    FZ_CHECK(kw_scan_engine_new(rules, &engine, err, sizeof err) == KW_OK, "engine: %s", err);
    FZ_CHECK(kw_scan_scratch_new(engine, &scratch) == KW_OK, "scratch");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned flags = data[0] & (KW_SCAN_LOCATE | KW_SCAN_HONOR_ALLOW | KW_SCAN_PARTIAL);
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    FZ_CHECK(buf != NULL, "oom");
    memcpy(buf, data + 1, len);

    static scan_ctx a, b;
    memset(&a.s, 0, sizeof a.s);
    a.s.flags = flags;
    a.buf = buf;
    a.len = len;
    FZ_CHECK(kw_scan_buffer(engine, scratch, buf, len, flags, check_finding, &a) == KW_OK, "scan");
    check_disjoint(&a.s);

    /* Deterministic, and honoring keyward:allow only removes findings. */
    memset(&b.s, 0, sizeof b.s);
    b.s.flags = flags & ~(unsigned)KW_SCAN_HONOR_ALLOW;
    b.buf = buf;
    b.len = len;
    FZ_CHECK(kw_scan_buffer(engine, scratch, buf, len, b.s.flags, check_finding, &b) == KW_OK, "scan");
    FZ_CHECK(a.s.n <= b.s.n, "allow added findings: %zu > %zu", a.s.n, b.s.n);
    if (!(flags & KW_SCAN_HONOR_ALLOW)) {
        FZ_CHECK(a.s.n == b.s.n, "second scan: %zu vs %zu findings", a.s.n, b.s.n);
        for (size_t i = 0; i < a.s.n && i < MAX_KEEP; i++)
            FZ_CHECK(a.s.offs[i] == b.s.offs[i], "second scan differs at finding %zu", i);
    }
    free(buf);
    return 0;
}
