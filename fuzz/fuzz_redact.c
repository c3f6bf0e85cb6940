/* fuzz_redact.c — the streaming redactor fed in fuzzer-chosen chunks.
 *
 * Input: byte 0 = number k (0-7) of chunk-size bytes that follow byte 2;
 * byte 1 bits 0-1 = which valid keyward key to plant (0 none, 1 phx_,
 * 2 phs_, 3 phc_), bit 2 = also plant a private key block, bit 3 = that
 * block has an END line; byte 2 = where to plant them (scaled to the text
 * length); then k chunk sizes (used in turn, 0 meaning 1); the rest is the
 * text.  The planted key is derived from the text (deterministic) with a
 * correct CRC32 checksum and is inserted with a space on each side.  The
 * planted block (BEGIN line, two lines of base62 derived from the text,
 * END line) goes where the key goes (just before it) when it has an END
 * line; without one it is appended at the end of the input (what
 * follows a block with no END is part of its body, and text that would
 * make that body not look like key material is out of scope).
 * Invariants:
 *   - the output of the chunked feed equals the output of feeding the
 *     whole input at once, and so does the count of replaced secrets;
 *   - the planted key and the planted block's body lines never appear in
 *     either output;
 *   - with nothing found, the output is the input unchanged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fuzz_common.h"
#include "keyward/keyward.h"
#include "keyward/scan.h"

static kw_scan_rules *rules;
static kw_scan_engine *engine;

static const char BASE62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    FZ_CHECK(kw_scan_rules_new(&rules) == KW_OK, "rules");
    FZ_CHECK(kw_scan_engine_new(rules, &engine, err, sizeof err) == KW_OK, "engine: %s", err);
    return 0;
}

static int to_buf(const char *data, size_t len, void *ctx)
{
    kw_fz_buf_append(ctx, data, len);
    return 0;
}

/* A valid keyward key of `kind` whose random part depends on `seed`. */
static void make_key(kw_key_kind kind, const uint8_t *seed, size_t n, char out[KW_KEY_LEN + 1])
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ seed[i]) * 16777619u;
    memcpy(out, kw_key_prefix(kind), KW_KEY_PREFIX_LEN);
    for (int i = 0; i < KW_KEY_RANDOM_LEN; i++) {
        h = h * 1103515245u + 12345u;
        out[KW_KEY_PREFIX_LEN + i] = BASE62[(h >> 16) % 62];
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)out, KW_KEY_PREFIX_LEN + KW_KEY_RANDOM_LEN);
    uint64_t v = (uint32_t)crc;
    for (int i = KW_KEY_CHECKSUM_LEN - 1; i >= 0; i--) {
        out[KW_KEY_PREFIX_LEN + KW_KEY_RANDOM_LEN + i] = BASE62[v % 62];
        v /= 62;
    }
    out[KW_KEY_LEN] = '\0';
    FZ_CHECK(kw_key_classify(out, KW_KEY_LEN, NULL) == KW_FORMAT_KEYWARD, "planted key %s", out);
}

/* Two lines of base62 (64 + 40 chars) seeded by the text: a key body. */
static void make_pem_body(const uint8_t *seed, size_t n, char line1[65], char line2[41])
{
    uint32_t h = 2166136261u ^ 0x5eedu;
    for (size_t i = 0; i < n; i++) h = (h ^ seed[i]) * 16777619u;
    for (int i = 0; i < 104; i++) {
        h = h * 1103515245u + 12345u;
        char c = BASE62[(h >> 16) % 62];
        if (i < 64) line1[i] = c;
        else line2[i - 64] = c;
    }
    line1[64] = line2[40] = '\0';
}

static uint64_t redact(const char *in, size_t len, const uint8_t *chunks, size_t nchunks,
                       kw_fz_buf *out)
{
    kw_redactor *r;
    FZ_CHECK(kw_redact_new(engine, to_buf, out, &r) == KW_OK, "redact_new");
    size_t pos = 0, c = 0;
    while (pos < len) {
        size_t n = nchunks ? chunks[c++ % nchunks] : len;
        if (n == 0) n = 1;
        if (n > len - pos) n = len - pos;
        FZ_CHECK(kw_redact_feed(r, in + pos, n) == KW_OK, "feed");
        pos += n;
    }
    FZ_CHECK(kw_redact_finish(r) == KW_OK, "finish");
    uint64_t count = kw_redact_count(r);
    kw_redact_free(r);
    return count;
}

static void dump(const char *what, const char *s, size_t n)
{
    fprintf(stderr, "%s (%zu bytes): \"", what, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
    fputs("\"\n", stderr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    size_t k = data[0] & 7;
    unsigned plant = data[1] & 3, plant_pem = data[1] & 4, pem_end = data[1] & 8;
    unsigned where = data[2];
    if (size < 3 + k) return 0;
    const uint8_t *chunks = data + 3;
    const char *text = (const char *)data + 3 + k;
    size_t tlen = size - 3 - k;

    char key[KW_KEY_LEN + 1] = "", pem1[65], pem2[41], pem[256] = "";
    if (plant_pem) {
        make_pem_body((const uint8_t *)text, tlen, pem1, pem2);
        snprintf(pem, sizeof pem, "-----BEGIN RSA PRIVATE KEY-----\n%s\n%s\n%s", pem1, pem2,
                 pem_end ? "-----END RSA PRIVATE KEY-----\n" : "");
    }
    size_t pem_len = strlen(pem);
    /* text[..at] + block with END + " key " + text[at..] + block without END */
    size_t at = tlen * where / 255, len = 0;
    char *in = malloc(tlen + KW_KEY_LEN + 2 + pem_len + 1);
    FZ_CHECK(in != NULL, "oom");
    memcpy(in, text, at);
    len = at;
    if (plant_pem && pem_end) {
        memcpy(in + len, pem, pem_len);
        len += pem_len;
    }
    if (plant) {
        make_key((kw_key_kind)plant, (const uint8_t *)text, tlen, key);
        in[len] = ' ';
        memcpy(in + len + 1, key, KW_KEY_LEN);
        in[len + 1 + KW_KEY_LEN] = ' ';
        len += KW_KEY_LEN + 2;
    }
    memcpy(in + len, text + at, tlen - at);
    len += tlen - at;
    if (plant_pem && !pem_end) {
        memcpy(in + len, pem, pem_len);
        len += pem_len;
    }

    kw_fz_buf whole = {0}, chunked = {0};
    uint64_t n_whole = redact(in, len, NULL, 0, &whole);
    uint64_t n_chunked = redact(in, len, chunks, k, &chunked);
    kw_fz_buf_append(&whole, "", 0);
    kw_fz_buf_append(&chunked, "", 0);

    if (n_whole != n_chunked || whole.len != chunked.len ||
        memcmp(whole.data, chunked.data, whole.len) != 0) {
        dump("input", in, len);
        dump("whole", whole.data, whole.len);
        dump("chunked", chunked.data, chunked.len);
    }
    if (n_whole == 0)
        FZ_CHECK(whole.len == len && memcmp(whole.data, in, len) == 0, "nothing found, output differs");
    if (plant) {
        FZ_CHECK(memmem(whole.data, whole.len, key, KW_KEY_LEN) == NULL,
                 "planted key %s survived (whole input)", key);
        FZ_CHECK(memmem(chunked.data, chunked.len, key, KW_KEY_LEN) == NULL,
                 "planted key %s survived (chunked)", key);
    }
    if (plant_pem) {
        FZ_CHECK(!memmem(whole.data, whole.len, pem1, 64) && !memmem(whole.data, whole.len, pem2, 40),
                 "planted private key body survived (whole input)");
        FZ_CHECK(!memmem(chunked.data, chunked.len, pem1, 64) &&
                     !memmem(chunked.data, chunked.len, pem2, 40),
                 "planted private key body survived (chunked)");
    }
    FZ_CHECK(n_whole == n_chunked, "count %llu whole vs %llu chunked", (unsigned long long)n_whole,
             (unsigned long long)n_chunked);
    FZ_CHECK(whole.len == chunked.len && memcmp(whole.data, chunked.data, whole.len) == 0,
             "chunked output differs from whole output (%zu vs %zu bytes)", chunked.len, whole.len);
    kw_fz_buf_free(&whole);
    kw_fz_buf_free(&chunked);
    free(in);
    return 0;
}
