/* test_scan.c — the scanner library: rules, checksum judgement, decoys,
 * allow comments, overlap resolution, user rules and the file pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyward/keyward.h"
#include "keyward/scan.h"
#include "scan_fixture.h"
#include "scan/scan_internal.h"
#include "scan_samples.h"

#ifdef KW_HAVE_HYPERSCAN
#include <hs/hs.h>
#endif

typedef struct collected {
    size_t count;
    kw_scan_finding items[32];
    char secrets[32][256];
} collected;

static int collect(const kw_scan_finding *f, const char *data, void *ctx)
{
    collected *c = ctx;
    if (c->count < 32) {
        c->items[c->count] = *f;
        size_t n = f->secret_len < 255 ? f->secret_len : 255;
        memcpy(c->secrets[c->count], data + f->secret_offset, n);
        c->secrets[c->count][n] = '\0';
    }
    c->count++;
    return 0;
}


static collected scan(fixture *fx, const char *text, unsigned flags)
{
    collected c;
    memset(&c, 0, sizeof c);
    assert_int_equal(kw_scan_buffer(fx->engine, fx->scratch, text, strlen(text), flags, collect, &c),
                     KW_OK);
    return c;
}

static void test_keyward_key_high_confidence(void **state)
{
    fixture *fx = *state;
    char key[KW_KEY_LEN + 1], text[256], mask[KW_MASK_MAX];
    assert_int_equal(kw_key_generate(KW_KEY_PERSONAL, key), KW_OK);
    snprintf(text, sizeof text, "line one\n  KEY = \"%s\"\n", key);
    collected c = scan(fx, text, KW_SCAN_LOCATE);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.items[0].rule_id, "posthog-personal-api-key");
    assert_int_equal(c.items[0].confidence, KW_SCAN_HIGH);
    assert_int_equal(c.items[0].line, 2);
    assert_int_equal(c.items[0].column, 10);
    assert_string_equal(c.secrets[0], key);
    kw_key_mask(key, strlen(key), mask);
    assert_string_equal(c.items[0].mask, mask);
    assert_int_equal(strlen(c.items[0].fingerprint), 64);
}

static void test_bad_checksum_is_not_a_finding(void **state)
{
    fixture *fx = *state;
    char key[KW_KEY_LEN + 1], text[128];
    assert_int_equal(kw_key_generate(KW_KEY_SECRET, key), KW_OK);
    key[KW_KEY_LEN - 1] = key[KW_KEY_LEN - 1] == 'a' ? 'b' : 'a';
    snprintf(text, sizeof text, "k=%s\n", key);
    assert_int_equal(scan(fx, text, 0).count, 0);
}

static void test_legacy_key_medium(void **state)
{
    fixture *fx = *state;
    collected c = scan(fx, "token: phc_q3Xz81LmPa0Rt7YvWc4Ke9Nb2Hd6Uj5Fg1Sx8Qw0\n", 0);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.items[0].rule_id, "posthog-project-token");
    assert_int_equal(c.items[0].confidence, KW_SCAN_MEDIUM);
}

static void test_decoys(void **state)
{
    fixture *fx = *state;
    static const char *const DECOYS[] = {
        "AKIAIOSFODNN7EXAMPLE\n",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        "key = phx_your_personal_api_key_here\n",
        "phc_xxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        "phx_...a1B2\n",
        "password = \"${DB_PASSWORD}\"\n",
        "api_key = \"<your api key>\"\n",
        "token = get_token(request)\n",
        "password: hunter2\n",
        "secret = \"aaaaaaaaaaaaaaaaaaaaaaaa\"\n",
        "token = \"1234567890abcdefghij\"\n",
        "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc\n",
    };
    for (size_t i = 0; i < sizeof DECOYS / sizeof DECOYS[0]; i++) {
        collected c = scan(fx, DECOYS[i], 0);
        if (c.count) fail_msg("decoy reported: %s", DECOYS[i]);
    }
}

static void test_common_secrets(void **state)
{
    fixture *fx = *state;
    static const struct { const char *text, *rule; } CASES[] = {
        {"id = AKIAZ3MHQW7PLX4RTN2V\n", "aws-access-key-id"},
        {"aws_secret_access_key = \"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\"\n",
         "aws-secret-access-key"},
        {"x xoxp-2931847561-9273645183-Gh7Kq2Lm9Pz4Rt6Vw1Xy\n", "slack-token"},
        {"stripe: rk_live_51HbQ2eK9xZr7Lm3Np8Qw4Ts\n", "stripe-live-key"},
        {"client_secret: \"c9F2kQ8mZ1rT7vX4bN6wP3yL\"\n", "generic-secret-assignment"},
        {"jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.Qm9sZ2F0dGVyX3NpZ25hdHVyZV8xMjM0NTY\n", "jwt"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        collected c = scan(fx, CASES[i].text, 0);
        if (c.count != 1) fail_msg("%zu findings in: %s", c.count, CASES[i].text);
        assert_string_equal(c.items[0].rule_id, CASES[i].rule);
    }
    /* GitHub tokens carry a CRC32: only a valid one is a token */
    uint64_t seed = 1;
    char text[128];
    samples_expand("GH=ghp_{A:30}{C}\n", text, sizeof text, &seed);
    collected c = scan(fx, text, 0);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.items[0].rule_id, "github-pat");
    text[strlen(text) - 2] ^= 1; /* a checksum digit off by one */
    assert_int_equal(scan(fx, text, 0).count, 0);
}

static void test_private_key_block(void **state)
{
    fixture *fx = *state;
    const char *text = "x\n-----BEGIN RSA PRIVATE KEY-----\n"
                       "MIIEowIBAAKCAQEAx3Jm9Q2r8LkP5vT1zN7wB4cY6hD0fG2sK9aE3uR8iO1pW5n\n"
                       "Zt4Yq7Lm2Xc9Vb3Nk8Hj1Gf6Ds0Ap5Qw\n-----END RSA PRIVATE KEY-----\n";
    collected c = scan(fx, text, KW_SCAN_LOCATE);
    assert_int_equal(c.count, 1);
    assert_string_equal(c.items[0].rule_id, "private-key");
    assert_int_equal(c.items[0].line, 2);
    assert_int_equal(c.items[0].column, 1);
    assert_true(strncmp(c.secrets[0], "MIIE", 4) == 0);
    assert_null(strstr(c.secrets[0], "-----"));
}

static void test_allow_comment(void **state)
{
    fixture *fx = *state;
    char key[KW_KEY_LEN + 1], text[256];
    assert_int_equal(kw_key_generate(KW_KEY_PROJECT, key), KW_OK);
    snprintf(text, sizeof text, "a = '%s' # keyward:allow\nb = '%s'\n", key, key);
    assert_int_equal(scan(fx, text, KW_SCAN_HONOR_ALLOW | KW_SCAN_LOCATE).count, 1);
    assert_int_equal(scan(fx, text, 0).count, 2);
}

static void test_overlap_reported_once(void **state)
{
    fixture *fx = *state;
    char key[KW_KEY_LEN + 1], text[256];
    assert_int_equal(kw_key_generate(KW_KEY_PERSONAL, key), KW_OK);
    snprintf(text, sizeof text, "api_key = \"%s\"\ntoken: %s\n", key, key);
    collected c = scan(fx, text, 0);
    assert_int_equal(c.count, 2);
    assert_string_equal(c.items[0].rule_id, "posthog-personal-api-key");
    assert_string_equal(c.items[1].rule_id, "posthog-personal-api-key");
}

static void test_user_rules(void **state)
{
    (void)state;
    kw_scan_rules *rules;
    kw_scan_engine *engine;
    kw_scan_scratch *scratch;
    char err[256];
    assert_int_equal(kw_scan_rules_new(&rules), KW_OK);
    const char *text = "# acme tokens\n[rule]\nid = \"acme-token\"\n"
                       "pattern = 'acme_[0-9a-f]{16,32}'\ndescription = \"ACME API token\"\n"
                       "confidence = \"medium\"\n\n[[rule]]\nid = internal-host\n"
                       "pattern = 'db-[a-z]+\\.corp'  # trailing comment\ncaseless = true\n";
    assert_int_equal(kw_scan_rules_load_string(rules, text, "t.rules", err, sizeof err), KW_OK);
    size_t n = kw_scan_rules_count(rules);
    assert_string_equal(kw_scan_rule_id(rules, n - 2), "acme-token");
    assert_int_equal(kw_scan_engine_new(rules, &engine, err, sizeof err), KW_OK);
    assert_int_equal(kw_scan_scratch_new(engine, &scratch), KW_OK);
    collected c;
    memset(&c, 0, sizeof c);
    const char *data = "x acme_0123456789abcdef0123 y DB-MAIN.CORP\n";
    assert_int_equal(kw_scan_buffer(engine, scratch, data, strlen(data), 0, collect, &c), KW_OK);
    assert_int_equal(c.count, 2);
    assert_string_equal(c.items[0].rule_id, "acme-token");
    assert_string_equal(c.secrets[0], "acme_0123456789abcdef0123");
    assert_int_equal(c.items[0].confidence, KW_SCAN_MEDIUM);
    assert_string_equal(c.secrets[1], "DB-MAIN.CORP");
    kw_scan_scratch_free(scratch);
    kw_scan_engine_free(engine);
    kw_scan_rules_free(rules);
}

static void test_user_rules_errors(void **state)
{
    (void)state;
    kw_scan_rules *rules;
    kw_scan_engine *engine = NULL;
    char err[256];
    assert_int_equal(kw_scan_rules_new(&rules), KW_OK);
    size_t before = kw_scan_rules_count(rules);
    assert_int_equal(kw_scan_rules_load_string(rules, "[rule]\nid = \"x\"\n", "r", err, sizeof err),
                     KW_ERR_INVALID);
    assert_string_equal(err, "r:1: rule 'x' without pattern");
    assert_int_equal(kw_scan_rules_load_string(rules, "id = \"x\"\n", "r", err, sizeof err),
                     KW_ERR_INVALID);
    assert_int_equal(kw_scan_rules_load_string(rules, "[rule]\nid = jwt\npattern = 'a+'\n", "r",
                                               err, sizeof err),
                     KW_ERR_INVALID);
    assert_non_null(strstr(err, "duplicate"));
    assert_int_equal(kw_scan_rules_load_string(rules, "[rule]\nid=a\npattern='x\n", "r", err,
                                               sizeof err),
                     KW_ERR_INVALID);
    assert_int_equal(kw_scan_rules_count(rules), before);
    /* a pattern the engine rejects names its rule */
    assert_int_equal(kw_scan_rules_load_string(rules, "[rule]\nid = broken\npattern = 'a(b'\n",
                                               "r", err, sizeof err),
                     KW_OK);
    assert_int_equal(kw_scan_engine_new(rules, &engine, err, sizeof err), KW_ERR_INVALID);
    assert_non_null(strstr(err, "broken"));
    kw_scan_rules_free(rules);
}

typedef struct file_hits {
    size_t per_file[8];
    kw_scan_file_status status[8];
} file_hits;

static int count_file_finding(size_t i, const kw_scan_finding *f, const char *data, void *ctx)
{
    (void)f;
    (void)data;
    ((file_hits *)ctx)->per_file[i]++;
    return 0;
}

static void note_status(size_t i, kw_scan_file_status st, void *ctx)
{
    ((file_hits *)ctx)->status[i] = st;
}

static void test_scan_files_pool(void **state)
{
    fixture *fx = *state;
    char dir[] = "/tmp/kw_scan_test_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char paths[5][128], key[KW_KEY_LEN + 1];
    assert_int_equal(kw_key_generate(KW_KEY_PERSONAL, key), KW_OK);
    const char *names[5] = {"a.txt", "b.txt", "c.bin", "big.txt", "link"};
    for (int i = 0; i < 5; i++) snprintf(paths[i], sizeof paths[i], "%s/%s", dir, names[i]);
    FILE *f = fopen(paths[0], "w");
    fprintf(f, "%s\n%s\n", key, key);
    fclose(f);
    f = fopen(paths[1], "w");
    fprintf(f, "nothing here\n");
    fclose(f);
    f = fopen(paths[2], "wb");
    fwrite("\0\1\2", 1, 3, f);
    fprintf(f, "%s\n", key);
    fclose(f);
    f = fopen(paths[3], "w");
    for (int i = 0; i < 200; i++) fprintf(f, "%s filler filler filler filler\n", key);
    fclose(f);
    assert_int_equal(symlink(paths[0], paths[4]), 0);
    const char *list[5] = {paths[0], paths[1], paths[2], paths[3], paths[4]};
    file_hits hits;
    memset(&hits, 0, sizeof hits);
    kw_scan_files_opts opts = {.threads = 3, .max_size = 4096, .flags = KW_SCAN_LOCATE,
                               .on_finding = count_file_finding, .on_file = note_status,
                               .ctx = &hits};
    assert_int_equal(kw_scan_files(fx->engine, list, 5, &opts), KW_OK);
    assert_int_equal(hits.per_file[0], 2);
    assert_int_equal(hits.per_file[1], 0);
    assert_int_equal(hits.status[2], KW_SCAN_FILE_BINARY);
    assert_int_equal(hits.per_file[2], 0);
    assert_int_equal(hits.status[3], KW_SCAN_FILE_TOO_LARGE);
    assert_int_equal(hits.status[4], KW_SCAN_FILE_SKIPPED);
    for (int i = 0; i < 5; i++) unlink(paths[i]);
    rmdir(dir);
}

#ifdef KW_HAVE_HYPERSCAN
typedef struct ends {
    size_t n;
    size_t at[4096];
} ends;

static int on_hs_end(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                     void *ctx)
{
    (void)id;
    (void)from;
    (void)flags;
    ends *e = ctx;
    if (e->n < 4096) e->at[e->n++] = (size_t)to;
    return 0;
}

static int on_native_end(size_t to, void *ctx)
{
    ends *e = ctx;
    if (e->n < 4096) e->at[e->n++] = to;
    return 0;
}

static int by_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* The native generic-assignment finder reports exactly the end offsets the
 * regex it replaces reports, on random text built from the pieces that
 * matter (names in all cases, separators, quotes, blanks, values). */
static void test_generic_finder_matches_regex(void **state)
{
    (void)state;
    static const char *const PIECES[] = {
        "token", "TOKEN", "Token", "secret", "SeCrEt", "client_secret", "client-Secret",
        "password", "PASSWD", "pass", "word", "wd", "pwd", "pw", "d", "api", "API", "key", "Key",
        "access", "auth", "private", "_", "-", ".", "=", ":", "=>", ":=", "==", " ", "  ", "\t",
        "\"", "'", "`", "x", "Zq8/vR3mXk2Lp9", "c9F2kQ8mZ1rT7vX4", "abc", "12345", "(", ")",
        "\n", ",", "a1_B2-c3.d4~e5!f6@g7#h8%i9^j0&k*", "kr", "cr", "sw", "ke", "é", "\\",
        "\\\"",
    };
    const size_t npieces = sizeof PIECES / sizeof PIECES[0];
    hs_database_t *db = NULL;
    hs_scratch_t *scratch = NULL;
    hs_compile_error_t *cerr = NULL;
    assert_int_equal(hs_compile(KW_SCAN_GENERIC_ANCHOR, 0, HS_MODE_BLOCK, NULL, &db, &cerr),
                     HS_SUCCESS);
    assert_int_equal(hs_alloc_scratch(db, &scratch), HS_SUCCESS);
    static char text[8192];
    static ends want, got;
    int max_level = 0;
#ifdef __x86_64__
    __builtin_cpu_init();
    max_level = __builtin_cpu_supports("avx2") ? 2 : 1;
#endif
    uint64_t seed = 12345;
    size_t total = 0;
    for (int round = 0; round < 20000; round++) {
        size_t len = 0;
        int pieces = 1 + (int)((seed >> 33) % 120);
        for (int i = 0; i < pieces; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            const char *p = PIECES[(seed >> 33) % npieces];
            size_t n = strlen(p);
            if (len + n >= sizeof text) break;
            memcpy(text + len, p, n);
            len += n;
        }
        want.n = got.n = 0;
        assert_int_equal(hs_scan(db, text, (unsigned)len, 0, scratch, on_hs_end, &want),
                         HS_SUCCESS);
        qsort(want.at, want.n, sizeof want.at[0], by_size);
        for (int level = 0; level <= max_level; level++) {
            got.n = 0;
            assert_int_equal(kw_scan_generic_find_with(level, text, len, on_native_end, &got), 0);
            qsort(got.at, got.n, sizeof got.at[0], by_size);
            if (want.n != got.n || memcmp(want.at, got.at, want.n * sizeof want.at[0]) != 0)
                fail_msg("level %d: regex %zu ends, finder %zu ends, in: %.*s", level, want.n,
                         got.n, (int)len, text);
        }
        total += want.n;
    }
    assert_true(total > 1000); /* the pieces do make anchors */
    hs_free_scratch(scratch);
    hs_free_database(db);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keyward_key_high_confidence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_checksum_is_not_a_finding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_key_medium, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decoys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_common_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_key_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allow_comment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_reported_once, setup, teardown),
        cmocka_unit_test(test_user_rules),
        cmocka_unit_test(test_user_rules_errors),
        cmocka_unit_test_setup_teardown(test_scan_files_pool, setup, teardown),
#ifdef KW_HAVE_HYPERSCAN
        cmocka_unit_test(test_generic_finder_matches_regex),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
