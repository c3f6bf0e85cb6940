/* test_redact.c — the streaming redactor: same output whatever the chunk
 * sizes (down to 1 byte), nothing but secrets changed, complete lines
 * released at once, private key blocks and over-long lines. */
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
#include "scan_fixture.h"
#include "test_sink.h"


/* Redacts `in` fed in chunks of `chunk` bytes; returns the output. */
static sink redact(fixture *fx, const char *in, size_t len, size_t chunk, uint64_t *count)
{
    sink out = {0};
    kw_redactor *r;
    assert_int_equal(kw_redact_new(fx->engine, to_sink, &out, &r), KW_OK);
    for (size_t i = 0; i < len; i += chunk)
        assert_int_equal(kw_redact_feed(r, in + i, len - i < chunk ? len - i : chunk), KW_OK);
    assert_int_equal(kw_redact_finish(r), KW_OK);
    if (count) *count = kw_redact_count(r);
    kw_redact_free(r);
    if (!out.data) out.data = calloc(1, 1);
    return out;
}

static void test_one_byte_chunks(void **state)
{
    fixture *fx = *state;
    char k1[KW_KEY_LEN + 1], k2[KW_KEY_LEN + 1], in[1024], expected[1024], m1[KW_MASK_MAX],
        m2[KW_MASK_MAX];
    kw_key_generate(KW_KEY_PERSONAL, k1);
    kw_key_generate(KW_KEY_SECRET, k2);
    kw_key_mask(k1, strlen(k1), m1);
    kw_key_mask(k2, strlen(k2), m2);
    snprintf(in, sizeof in, "GET /api?personal_api_key=%s HTTP/1.1\nplain line\n%s\tlast", k1, k2);
    snprintf(expected, sizeof expected, "GET /api?personal_api_key=%s HTTP/1.1\nplain line\n%s\tlast",
             m1, m2);
    for (size_t chunk = 1; chunk <= 97; chunk += (chunk < 8 ? 1 : 13)) {
        uint64_t count;
        sink out = redact(fx, in, strlen(in), chunk, &count);
        assert_string_equal(out.data, expected);
        assert_int_equal(count, 2);
        free(out.data);
    }
}

static void test_every_split_point(void **state)
{
    fixture *fx = *state;
    char key[KW_KEY_LEN + 1], in[256];
    kw_key_generate(KW_KEY_PROJECT, key);
    snprintf(in, sizeof in, "token=%s\n", key);
    size_t len = strlen(in);
    for (size_t split = 1; split < len; split++) {
        sink out = {0};
        kw_redactor *r;
        assert_int_equal(kw_redact_new(fx->engine, to_sink, &out, &r), KW_OK);
        kw_redact_feed(r, in, split);
        kw_redact_feed(r, in + split, len - split);
        kw_redact_finish(r);
        assert_null(strstr(out.data, key));
        assert_non_null(strstr(out.data, "phc_..."));
        kw_redact_free(r);
        free(out.data);
    }
}

static void test_clean_input_unchanged(void **state)
{
    fixture *fx = *state;
    size_t len = 3u << 20; /* several buffers */
    char *in = malloc(len + 1);
    for (size_t i = 0; i < len; i++) in[i] = (i % 61 == 60) ? '\n' : (char)('a' + i % 26);
    in[len] = '\0';
    uint64_t count;
    sink out = redact(fx, in, len, 65536, &count);
    assert_int_equal(out.len, len);
    assert_memory_equal(out.data, in, len);
    assert_int_equal(count, 0);
    free(out.data);
    free(in);
}

static void test_complete_lines_released(void **state)
{
    fixture *fx = *state;
    sink out = {0};
    kw_redactor *r;
    assert_int_equal(kw_redact_new(fx->engine, to_sink, &out, &r), KW_OK);
    kw_redact_feed(r, "first line\nsecond", 17);
    assert_non_null(out.data);
    assert_string_equal(out.data, "first line\n");
    kw_redact_feed(r, " half\n", 6);
    assert_string_equal(out.data, "first line\nsecond half\n");
    kw_redact_finish(r);
    kw_redact_free(r);
    free(out.data);
}

static void test_private_key_across_chunks(void **state)
{
    fixture *fx = *state;
    const char *in = "log: key follows\n-----BEGIN EC PRIVATE KEY-----\n"
                     "MHcCAQEEIBkq3mZ8vQ2nT5rL7xW1cY9pH4gJ6sD0fK3aN8uE2iO5oAoGCCqGSM49\n"
                     "AwEHoUQDQgAEr7Tq9Lm2Xc4Vb8Nk1Hj6Gf3Ds5Ap0Qw7Ze2Rt9Yu4Io1Pa6Sd3Fg==\n"
                     "-----END EC PRIVATE KEY-----\nafter\n";
    for (size_t chunk = 1; chunk < 80; chunk += 7) {
        uint64_t count;
        sink out = redact(fx, in, strlen(in), chunk, &count);
        assert_int_equal(count, 1);
        assert_null(strstr(out.data, "MHcCAQEEIBkq"));
        assert_null(strstr(out.data, "Yu4Io1Pa6Sd3"));
        assert_non_null(strstr(out.data, "MHcC...Fg=="));
        assert_non_null(strstr(out.data, "-----BEGIN EC PRIVATE KEY-----\n"));
        assert_non_null(strstr(out.data, "\n-----END EC PRIVATE KEY-----\nafter\n"));
        free(out.data);
    }
}

/* Found by fuzz_redact: a block whose body and END marker share the last,
 * unterminated line.  The first round cut after the BEGIN line, leaving the
 * body in the buffer without its header, so it was never redacted when the
 * input came in one piece (it was, fed in small chunks). */
static void test_private_key_body_on_last_line(void **state)
{
    fixture *fx = *state;
    const char *in = "-----BEGIN PRIVATE KEY-----\n"
                     "MHcCAQEEIBkq3mZ8vQ2nT5rL7xW1cY9pH4gJ6sD0fK3aN8uE2iO5oAoGCCqGSM49"
                     "-----END PRIVATE KEY-----";
    size_t chunks[] = {strlen(in), 1, 30, 47};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        uint64_t count;
        sink out = redact(fx, in, strlen(in), chunks[i], &count);
        assert_int_equal(count, 1);
        assert_null(strstr(out.data, "MHcCAQEEIBkq"));
        assert_string_equal(out.data, "-----BEGIN PRIVATE KEY-----\nMHcC...SM49-----END PRIVATE KEY-----");
        free(out.data);
    }
}

/* Found by fuzz_redact: a header followed on its line by "-----BEGIN".
 * The block was reported at that second "-----BEGIN" (inside the header's
 * closing dashes), so a round that held the block back cut the header in
 * two and the body was never found again: fed in chunks, it leaked. */
static void test_private_key_header_followed_by_begin(void **state)
{
    fixture *fx = *state;
    const char *in = "-----BEGIN PRIVATE KEY-----BEGIN ----\n"
                     "MHcCAQEEIBkq3mZ8vQ2nT5rL7xW1cY9pH4gJ6sD0fK3aN8uE2iO5oAoGCCqGSM49\n"
                     "-----END PRIVATE KEY-----\n";
    for (size_t chunk = 1; chunk < 100; chunk += 3) {
        uint64_t count;
        sink out = redact(fx, in, strlen(in), chunk, &count);
        assert_int_equal(count, 1);
        assert_null(strstr(out.data, "MHcCAQEEIBkq"));
        assert_non_null(strstr(out.data, "-----BEGIN PRIVATE KEY-----"));
        free(out.data);
    }
}

/* Redacts `in` whole and in chunks of every size from 1 to 80 bytes; every
 * output must equal the whole one.  Returns the whole output. */
static sink redact_all_chunkings(fixture *fx, const char *in, uint64_t *count)
{
    size_t len = strlen(in);
    sink whole = redact(fx, in, len, len, count);
    for (size_t chunk = 1; chunk <= 80; chunk++) {
        uint64_t n;
        sink out = redact(fx, in, len, chunk, &n);
        if (out.len != whole.len || memcmp(out.data, whole.data, whole.len) != 0)
            fail_msg("chunk %zu:\n%s\nwhole:\n%s", chunk, out.data, whole.data);
        assert_int_equal(n, *count);
        free(out.data);
    }
    return whole;
}

/* Found by fuzz_redact (fuzz/corpus/redact/regress_pem_without_end_chunked):
 * a block that never ends, whose body starts with something that is a
 * legacy phx_ key only while the buffer is cut right after it.  In such a
 * round that "key" started where the block's body starts, won the overlap
 * by rule priority, and the block was dropped; the round then released the
 * BEGIN line and the body, separated from it, went out in clear.  Fed
 * whole, the body was masked.  Now a block wins over anything starting at
 * its body, and a block that never ends is masked to the end of input. */
static void test_private_key_without_end_chunked(void **state)
{
    fixture *fx = *state;
    const char *in = "intro\n-----BEGIN PRIVATE KEY-----\n"
                     "phx_zqvpNn9jEWCakwoTWa0JohGYh2SSfph_hR5MDgxjzJADFqDDxsuBJOXvUziME63\n"
                     "MHcCAQEEIBkq3mZ8vQ2nT5rL7xW1cY9pH4gJ6sD0fK3aN8uE2iO5oAoGCCqGSM49\n"
                     "AwEHoUQDQgAEr7Tq9Lm2Xc4Vb8Nk1Hj6Gf3Ds5Ap0Qw7Ze2Rt9Yu4Io1Pa6Sd3Fg";
    uint64_t count;
    sink out = redact_all_chunkings(fx, in, &count);
    assert_int_equal(count, 1);
    assert_string_equal(out.data,
                        "intro\n-----BEGIN PRIVATE KEY-----\nphx_...d3Fg\n********\n********");
    free(out.data);
}

/* A valid keyward key as the first line of a block's body: the key was
 * reported (its rule outranked the private key rule) and the rest of the
 * body went out in clear, fed whole or not. */
static void test_private_key_body_starting_with_key(void **state)
{
    fixture *fx = *state;
    char key[KW_KEY_LEN + 1], in[512];
    kw_key_generate(KW_KEY_PERSONAL, key);
    snprintf(in, sizeof in,
             "-----BEGIN PRIVATE KEY-----\n%s\n"
             "MHcCAQEEIBkq3mZ8vQ2nT5rL7xW1cY9pH4gJ6sD0fK3aN8uE2iO5oAoGCCqGSM49\n"
             "-----END PRIVATE KEY-----\nafter\n", key);
    uint64_t count;
    sink out = redact_all_chunkings(fx, in, &count);
    assert_int_equal(count, 1);
    assert_null(strstr(out.data, key));
    assert_null(strstr(out.data, "MHcCAQEEIBkq"));
    assert_non_null(strstr(out.data, "\n-----END PRIVATE KEY-----\nafter\n"));
    free(out.data);
}

/* A secret that runs into the BEGIN marker (a JWT's signature may hold
 * dashes: "eyJ....eyJ....sig-----BEGIN"):
 * a round holding the block back from its header cut inside that secret,
 * moved the cut past the secret's end, i.e. into the header, and the body
 * lost its BEGIN line.  A block is now held back from the start of the
 * header's line. */
static void test_private_key_header_inside_secret(void **state)
{
    fixture *fx = *state;
    const char *in = "x\nauth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI5ODc2In0.Xk3v9Qm2Lp7ZrT5wQ"
                     "-----BEGIN RSA PRIVATE KEY-----\n"
                     "MHcCAQEEIBkq3mZ8vQ2nT5rL7xW1cY9pH4gJ6sD0fK3aN8uE2iO5oAoGCCqGSM49\n"
                     "-----END RSA PRIVATE KEY-----\n";
    uint64_t count;
    sink out = redact_all_chunkings(fx, in, &count);
    assert_int_equal(count, 2);
    assert_null(strstr(out.data, "MHcCAQEEIBkq"));
    assert_null(strstr(out.data, "Xk3v9Qm2Lp7ZrT5w"));
    assert_non_null(strstr(out.data, "\nauth eyJh...EGIN RSA PRIVATE KEY-----\nMHcC...SM49\n"));
    free(out.data);
}

/* What a block that never ends gets, the same however it is fed: its body
 * is masked from the line after BEGIN to the end of input, one output line
 * per input line (at most
 * 64 KiB of it, KW_SCAN_MAX_PEM), when it looks like key material (32+
 * bytes, entropy); a short or flat remainder is not a key and is kept. */
static void test_private_key_never_ends(void **state)
{
    fixture *fx = *state;
    uint64_t count;
    sink out = redact_all_chunkings(fx,
                                    "a\n-----BEGIN OPENSSH PRIVATE KEY-----\n"
                                    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
                                    "QyNTUxOQAAACDx2VHvSXb7bQ9y\nlog line after\n",
                                    &count);
    assert_int_equal(count, 1);
    assert_string_equal(out.data,
                        "a\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl...fter\n********\n********\n");
    free(out.data);
    out = redact_all_chunkings(fx, "a\n-----BEGIN PRIVATE KEY-----\nshort\n", &count);
    assert_int_equal(count, 0);
    assert_string_equal(out.data, "a\n-----BEGIN PRIVATE KEY-----\nshort\n");
    free(out.data);
}

/* A secret with NUL bytes among the ones its mask shows: the mask used to
 * stop at the first NUL ("MHcC...49"); it keeps its length, NULs as '.'. */
static void test_mask_with_nul(void **state)
{
    fixture *fx = *state;
    const char in[] = "-----BEGIN PRIVATE KEY-----\n"
                      "MHcCAQEEIBkq3mZ8vQ2nT5rL7xW1cY9pH4gJ6sD0fK3aN8uE2iO5oAoGCCqGSM49\0\0";
    const char want[] = "-----BEGIN PRIVATE KEY-----\nMHcC...49..";
    uint64_t count;
    sink out = redact(fx, in, sizeof in - 1, sizeof in, &count);
    assert_int_equal(count, 1);
    assert_int_equal(out.len, sizeof want - 1);
    assert_memory_equal(out.data, want, sizeof want - 1);
    free(out.data);
}

/* Found by fuzz_redact: a block's body, its END marker and the next
 * block's BEGIN share a line.  Holding the second block back (no body
 * yet) moved the cut to the start of that line, i.e. after the first
 * block's BEGIN line: the first block, already looked at, was not held
 * back with it, and its body went out in clear. */
static void test_private_key_body_and_next_begin_on_one_line(void **state)
{
    fixture *fx = *state;
    const char *in = "-----BEGIN PRIVATE KEY-----\n"
                     "MHcCAQEEIBkq3mZ8vQ2nT5rL7xW1cY9pH4gJ6sD0fK3aN8uE2iO5oAoGCCqGSM49"
                     "-----END PRIVATE KEY----- -----BEGIN PRIVATE KEY-----\n"
                     "AwEHoUQDQgAEr7Tq9Lm2Xc4Vb8Nk1Hj6Gf3Ds5Ap0Qw7Ze2Rt9Yu4Io1Pa6Sd3Fg\n"
                     "-----END PRIVATE KEY-----\n";
    uint64_t count;
    sink out = redact_all_chunkings(fx, in, &count);
    assert_int_equal(count, 2);
    assert_null(strstr(out.data, "MHcCAQEEIBkq"));
    assert_null(strstr(out.data, "AwEHoUQDQgAE"));
    free(out.data);
}

static void test_line_longer_than_buffer(void **state)
{
    fixture *fx = *state;
    char key[KW_KEY_LEN + 1];
    kw_key_generate(KW_KEY_PERSONAL, key);
    size_t len = (1u << 20) * 2 + 12345;
    char *in = malloc(len + 1);
    memset(in, 'x', len);
    for (size_t i = 0; i < len; i += 997) in[i] = ' ';
    /* keys around the first cut (buffer size minus the kept tail) and the
     * buffer edges */
    size_t at[] = {(1u << 20) - 4096 - 20, (1u << 20) - 30, (1u << 20) + 5, len - 70};
    for (size_t i = 0; i < 4; i++) {
        in[at[i] - 1] = ' ';
        memcpy(in + at[i], key, KW_KEY_LEN);
        in[at[i] + KW_KEY_LEN] = ' ';
    }
    in[len] = '\0';
    uint64_t count;
    sink out = redact(fx, in, len, 1u << 16, &count);
    assert_int_equal(count, 4);
    assert_null(memmem(out.data, out.len, key, KW_KEY_LEN));
    free(out.data);
    free(in);
}

/* kw_redact_space/commit (reading straight into the buffer) gives what
 * kw_redact_feed gives, whatever the read sizes. */
static void test_space_commit_same_as_feed(void **state)
{
    fixture *fx = *state;
    char key[KW_KEY_LEN + 1];
    kw_key_generate(KW_KEY_SECRET, key);
    size_t len = (3u << 20) + 777;
    char *in = malloc(len + 1);
    for (size_t i = 0; i < len; i++) in[i] = (i % 71 == 70) ? '\n' : (char)('a' + i % 23);
    size_t at[] = {100, (1u << 20) - 40, (1u << 20) + 3, (2u << 20) - 10, len - 80};
    for (size_t i = 0; i < 5; i++) {
        in[at[i] - 1] = ' ';
        memcpy(in + at[i], key, KW_KEY_LEN);
        in[at[i] + KW_KEY_LEN] = ' ';
    }
    snprintf(in + 300, 80, " password = \"c9F2kQ8mZ1rT7vX4bN6wP3yL\" ");
    in[strlen(in + 300) + 300] = ' ';
    in[len] = '\0';
    uint64_t want_count;
    sink want = redact(fx, in, len, 1u << 20, &want_count);
    assert_int_equal(want_count, 6);
    static const size_t READS[] = {1, 7, 4093, 65536, 1u << 20, 3u << 20};
    for (size_t k = 0; k < sizeof READS / sizeof READS[0]; k++) {
        sink out = {0};
        kw_redactor *r;
        assert_int_equal(kw_redact_new(fx->engine, to_sink, &out, &r), KW_OK);
        for (size_t i = 0; i < len;) {
            size_t room;
            char *space = kw_redact_space(r, &room);
            assert_true(room > 0);
            size_t n = READS[k] < room ? READS[k] : room;
            if (n > len - i) n = len - i;
            memcpy(space, in + i, n);
            assert_int_equal(kw_redact_commit(r, n), KW_OK);
            i += n;
        }
        assert_int_equal(kw_redact_finish(r), KW_OK);
        assert_int_equal(kw_redact_count(r), want_count);
        kw_redact_free(r);
        assert_int_equal(out.len, want.len);
        assert_memory_equal(out.data, want.data, want.len);
        free(out.data);
    }
    free(want.data);
    free(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_byte_chunks),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_clean_input_unchanged),
        cmocka_unit_test(test_complete_lines_released),
        cmocka_unit_test(test_private_key_across_chunks),
        cmocka_unit_test(test_line_longer_than_buffer),
        cmocka_unit_test(test_space_commit_same_as_feed),
        cmocka_unit_test(test_private_key_body_on_last_line),
        cmocka_unit_test(test_private_key_header_followed_by_begin),
        cmocka_unit_test(test_private_key_without_end_chunked),
        cmocka_unit_test(test_private_key_body_starting_with_key),
        cmocka_unit_test(test_private_key_header_inside_secret),
        cmocka_unit_test(test_private_key_never_ends),
        cmocka_unit_test(test_mask_with_nul),
        cmocka_unit_test(test_private_key_body_and_next_begin_on_one_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
