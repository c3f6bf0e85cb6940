/* redact.c — streaming redactor: bytes in, the same bytes out with every
 * key and secret replaced by its mask ("phx_...a1B2").
 *
 * Input accumulates in one buffer (1 MiB).  Whenever the newly fed bytes
 * contain a newline, or the buffer is full, the whole buffer is scanned in
 * Hyperscan block mode and everything up to the last newline is written
 * out; the unfinished last line stays for the next round.  So:
 *   - a secret split across read() boundaries is always seen whole, since
 *     secrets never contain a newline and only complete lines are cut off;
 *   - a log pipe gets each complete line as soon as it arrives (one write
 *     per fed chunk: line-buffered behaviour without a flush per line);
 *   - big files go at block-scan speed: clean regions are written straight
 *     from the buffer, only buffers with findings are rewritten, and a
 *     caller that reads with kw_redact_space/commit reads straight into the
 *     buffer (no copy at all between read() and write() for clean input).
 * Two cases need care.  A line longer than the buffer is cut
 * KW_SCAN_MAX_SECRET bytes before its end, and a token touching the end of
 * the buffer is held back whole.  A private key block is reported at its
 * BEGIN line but its secret (the base64 body) spans lines: while its END
 * line has not arrived the block is held back from the start of its BEGIN
 * line, for up to KW_SCAN_MAX_PEM bytes of body.  A block that never ends
 * gets the verdict the whole input would give it: at end of input (or
 * once KW_SCAN_MAX_PEM bytes of body are in) the scanner judges the body
 * read so far, and masks all of it when it looks like key material.
 * A masked body keeps its line breaks (each further line reads "********"),
 * so the output has as many lines as the input and a log pipeline's line
 * numbers stay right.
 * keyward:allow comments are ignored here on purpose: a log redactor should
 * not be switched off by the data it filters. */
#include "scan/scan_internal.h"

#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

#define REDACT_BUFFER (1u << 20)

typedef struct redact_span {
    size_t report, start, len;
    char mask[KW_MASK_MAX];
} redact_span;

struct kw_redactor {
    const kw_scan_engine *engine;
    kw_scan_scratch *scratch;
    kw_redact_write_fn write;
    void *ctx;
    char *buf;
    size_t len, cap;
    char *out;
    size_t out_cap;
    redact_span *spans;
    size_t nspans, spans_cap;
    uint64_t count;
};

int kw_redact_new(const kw_scan_engine *engine, kw_redact_write_fn write_fn, void *ctx,
                  kw_redactor **out)
{
    kw_redactor *r = calloc(1, sizeof *r);
    if (!r) return KW_ERR_NOMEM;
    r->engine = engine;
    r->write = write_fn;
    r->ctx = ctx;
    r->cap = REDACT_BUFFER;
    r->buf = malloc(r->cap);
    int rc = r->buf ? kw_scan_scratch_new(engine, &r->scratch) : KW_ERR_NOMEM;
    if (rc) {
        kw_redact_free(r);
        return rc;
    }
    *out = r;
    return KW_OK;
}

void kw_redact_free(kw_redactor *r)
{
    if (!r) return;
    kw_scan_scratch_free(r->scratch);
    free(r->buf);
    free(r->out);
    free(r->spans);
    free(r);
}

uint64_t kw_redact_count(const kw_redactor *r) { return r->count; }

static int collect_span(const kw_scan_finding *f, const char *data, void *ctx)
{
    (void)data;
    kw_redactor *r = ctx;
    if (r->nspans == r->spans_cap) {
        size_t cap = r->spans_cap ? r->spans_cap * 2 : 32;
        redact_span *s = realloc(r->spans, cap * sizeof *s);
        if (!s) return KW_ERR_NOMEM;
        r->spans = s;
        r->spans_cap = cap;
    }
    redact_span *s = &r->spans[r->nspans++];
    s->report = f->offset;
    s->start = f->secret_offset;
    s->len = f->secret_len;
    memcpy(s->mask, f->mask, sizeof s->mask);
    return 0;
}

/* Where this round may cut the buffer: after the last newline (all of it
 * at end of input), moved so no secret is cut or judged incomplete. */
static size_t choose_boundary(const kw_redactor *r, int at_eof)
{
    if (at_eof) return r->len;
    const char *nl = memrchr(r->buf, '\n', r->len);
    size_t boundary = nl ? (size_t)(nl - r->buf) + 1
                         : (r->len > KW_SCAN_MAX_SECRET ? r->len - KW_SCAN_MAX_SECRET : 0);
    int full = r->len == r->cap;
    /* A secret that reaches the end of the buffer may go on in the next
     * chunk (or be a private key still waiting for its END line), and a
     * private key whose body starts after the cut would be separated from
     * its BEGIN line, so the next round could not find it: hold either back
     * from the start of the line where it is reported, unless that would
     * stall a full buffer.  The line start, not the report offset itself:
     * another secret may run into a BEGIN marker ("eyJ…sig-----BEGIN"), and
     * a cut inside it would be moved past its end by the loop below, into
     * the header.  No secret but a private key body crosses a newline, so a
     * cut after one splits nothing and leaves each line its whole context.
     * Holding one block back can put the cut before an earlier block's body
     * (its body and the next BEGIN on one line), so repeat until no span
     * moves the cut. */
    for (int moved = 1; moved;) {
        moved = 0;
        for (size_t i = 0; i < r->nspans; i++) {
            const redact_span *s = &r->spans[i];
            if (!(s->start + s->len == r->len || s->start >= boundary) || s->report >= boundary)
                continue;
            const char *line = s->report ? memrchr(r->buf, '\n', s->report) : NULL;
            size_t hold = line ? (size_t)(line - r->buf) + 1 : 0;
            if (hold == 0 && full) hold = s->report; /* a 1 MiB line: keep at least the header */
            if ((hold > 0 || !full) && hold < boundary) {
                boundary = hold;
                moved = 1;
            }
        }
    }
    for (size_t i = 0; i < r->nspans; i++) {
        const redact_span *s = &r->spans[i];
        if (s->start < boundary && s->start + s->len > boundary) boundary = s->start + s->len;
    }
    return boundary;
}

/* Lines of a secret after its first (a private key body) become this, so
 * the output has exactly as many lines as the input. */
#define LINE_MASK "********"

static size_t count_newlines(const char *p, size_t len)
{
    size_t n = 0;
    for (const char *end = p + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++) n++;
    return n;
}

/* The mask, then for each newline inside the secret that newline (with its
 * \r) and LINE_MASK. */
static size_t write_mask(char *out, const redact_span *s, const char *secret)
{
    size_t w = strlen(s->mask);
    memcpy(out, s->mask, w);
    for (size_t i = 0; i < s->len; i++) {
        if (secret[i] != '\n') continue;
        if (i > 0 && secret[i - 1] == '\r') out[w++] = '\r';
        out[w++] = '\n';
        memcpy(out + w, LINE_MASK, sizeof LINE_MASK - 1);
        w += sizeof LINE_MASK - 1;
    }
    return w;
}

static int emit(kw_redactor *r, size_t boundary)
{
    size_t needed = boundary, w = 0, pos = 0, replaced = 0;
    for (size_t i = 0; i < r->nspans; i++) {
        const redact_span *s = &r->spans[i];
        if (s->start + s->len > boundary) continue;
        replaced++;
        needed += KW_MASK_MAX + count_newlines(r->buf + s->start, s->len) * (sizeof LINE_MASK + 1);
    }
    if (replaced == 0) return boundary ? r->write(r->buf, boundary, r->ctx) : 0;
    if (needed > r->out_cap) {
        char *bigger = realloc(r->out, needed);
        if (!bigger) return KW_ERR_NOMEM;
        r->out = bigger;
        r->out_cap = needed;
    }
    for (size_t i = 0; i < r->nspans; i++) {
        const redact_span *s = &r->spans[i];
        if (s->start + s->len > boundary || s->start < pos) continue;
        memcpy(r->out + w, r->buf + pos, s->start - pos);
        w += s->start - pos;
        w += write_mask(r->out + w, s, r->buf + s->start);
        pos = s->start + s->len;
        r->count++;
    }
    memcpy(r->out + w, r->buf + pos, boundary - pos);
    w += boundary - pos;
    return r->write(r->out, w, r->ctx);
}

static int process(kw_redactor *r, int at_eof)
{
    if (r->len == 0) return KW_OK;
    r->nspans = 0;
    int rc = kw_scan_buffer(r->engine, r->scratch, r->buf, r->len,
                            at_eof ? 0 : KW_SCAN_PARTIAL, collect_span, r);
    if (rc) return rc;
    size_t boundary = choose_boundary(r, at_eof);
    if ((rc = emit(r, boundary))) return rc;
    memmove(r->buf, r->buf + boundary, r->len - boundary);
    r->len -= boundary;
    return KW_OK;
}

int kw_redact_feed(kw_redactor *r, const char *data, size_t len)
{
    while (len > 0) {
        size_t n = r->cap - r->len < len ? r->cap - r->len : len;
        memcpy(r->buf + r->len, data, n);
        int has_newline = memchr(data, '\n', n) != NULL;
        r->len += n;
        data += n;
        len -= n;
        if (has_newline || r->len == r->cap) {
            int rc = process(r, 0);
            if (rc) return rc;
        }
    }
    return KW_OK;
}

char *kw_redact_space(kw_redactor *r, size_t *room)
{
    *room = r->cap - r->len; /* never 0: a full buffer is processed at once */
    return r->buf + r->len;
}

int kw_redact_commit(kw_redactor *r, size_t n)
{
    if (n > r->cap - r->len) return KW_ERR_INVALID;
    int has_newline = memchr(r->buf + r->len, '\n', n) != NULL;
    r->len += n;
    if (has_newline || r->len == r->cap) return process(r, 0);
    return KW_OK;
}

int kw_redact_finish(kw_redactor *r) { return process(r, 1); }
