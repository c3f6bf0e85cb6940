/* test_key.c — key format, checksum, classification, mask and hashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "keyward/keyward.h"

static void test_generate_format(void **state)
{
    (void)state;
    const kw_key_kind kinds[] = {KW_KEY_PERSONAL, KW_KEY_SECRET, KW_KEY_PROJECT};
    const char *prefixes[] = {"phx_", "phs_", "phc_"};
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 200; i++) {
            char key[KW_KEY_LEN + 1];
            assert_int_equal(kw_key_generate(kinds[k], key), KW_OK);
            assert_int_equal(strlen(key), 58);
            assert_memory_equal(key, prefixes[k], 4);
            for (int j = 4; j < 58; j++) assert_true(kw_is_base62((unsigned char)key[j]));
            kw_key_info info;
            assert_int_equal(kw_key_classify(key, strlen(key), &info), KW_FORMAT_KEYWARD);
            assert_int_equal(info.kind, kinds[k]);
        }
    }
}

static void test_generate_unique(void **state)
{
    (void)state;
    char a[KW_KEY_LEN + 1], b[KW_KEY_LEN + 1];
    kw_key_generate(KW_KEY_PERSONAL, a);
    kw_key_generate(KW_KEY_PERSONAL, b);
    assert_string_not_equal(a, b);
    assert_int_equal(kw_key_generate(KW_KEY_NONE, a), KW_ERR_INVALID);
}

/* Every single-character change of a valid key breaks its checksum. */
static void test_checksum_detects_typos(void **state)
{
    (void)state;
    char key[KW_KEY_LEN + 1];
    kw_key_generate(KW_KEY_SECRET, key);
    for (int pos = 4; pos < KW_KEY_LEN; pos++) {
        char mutated[KW_KEY_LEN + 1];
        memcpy(mutated, key, sizeof mutated);
        mutated[pos] = mutated[pos] == 'a' ? 'b' : 'a';
        assert_int_equal(kw_key_classify(mutated, KW_KEY_LEN, NULL), KW_FORMAT_INVALID);
    }
    /* The prefix is covered too: a phs_ body under phx_ does not verify. */
    key[2] = 'x';
    assert_int_equal(kw_key_classify(key, KW_KEY_LEN, NULL), KW_FORMAT_INVALID);
}

/* Known vector, computed independently with Python:
 * zlib.crc32(b"phx_" + b"A"*48) written as 6 base62 digits (0-9A-Za-z). */
static void test_checksum_vector(void **state)
{
    (void)state;
    char body[KW_KEY_BODY_LEN + 1];
    memset(body, 'A', 48);
    memcpy(body + 48, "1tUvaf", 6);
    body[54] = '\0';
    assert_true(kw_key_checksum_ok("phx_", body, 54));
    body[53] = body[53] == 'f' ? 'g' : 'f';
    assert_false(kw_key_checksum_ok("phx_", body, 54));
}

static void test_classify_lengths(void **state)
{
    (void)state;
    char key[80] = "phx_";
    kw_key_info info;
    for (int body = 0; body <= 60; body++) {
        memset(key + 4, 'Z', (size_t)body);
        key[4 + body] = '\0';
        kw_key_format f = kw_key_classify(key, strlen(key), &info);
        if (body >= 20 && body <= 53)
            assert_int_equal(f, KW_FORMAT_LEGACY);
        else
            assert_int_equal(f, KW_FORMAT_INVALID);  /* 54 Zs: bad checksum */
    }
    assert_int_equal(kw_key_classify("phq_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 45, NULL), KW_FORMAT_INVALID);
    assert_int_equal(kw_key_classify("phx_AAAAAAAAAAAAAAAAAAAA-AAAAAAAAAAAAAAAAAAAA", 45, NULL), KW_FORMAT_INVALID);
    assert_int_equal(kw_key_classify("", 0, NULL), KW_FORMAT_INVALID);
    assert_int_equal(kw_key_classify("ph", 2, NULL), KW_FORMAT_INVALID);
}

static void test_mask(void **state)
{
    (void)state;
    char out[KW_MASK_MAX];
    kw_key_mask("phx_abcdefghijklmnopqrstuvwxyz1234", 34, out);
    assert_string_equal(out, "phx_...1234");
    kw_key_mask("short_value_15c", 15, out);
    assert_string_equal(out, "********");
    kw_key_mask("exactly16chars!!", 16, out);
    assert_string_equal(out, "exac...rs!!");
}

/* sha256("phx_test") computed with: python3 -c 'import hashlib;print(hashlib.sha256(b"phx_test").hexdigest())' */
static void test_hash_sha256(void **state)
{
    (void)state;
    char h[KW_HASH_LEN + 1];
    assert_int_equal(kw_key_hash("phx_test", 8, h), KW_OK);
    assert_string_equal(h, "sha256$8ee44936f3b1c80173d2860f716f56dc44bd078df2ff5c4cb9fb4aed6f26860d");
    assert_int_equal(kw_key_hash_verify("phx_test", 8, h), KW_HASH_MATCH);
    assert_int_equal(kw_key_hash_verify("phx_tesu", 8, h), KW_HASH_NOMATCH);
}

/* Django pbkdf2 forms, computed with Python's hashlib:
 * base64(hashlib.pbkdf2_hmac('sha256', b'phx_legacy', b'posthog_personal_api_key', N)) */
static void test_hash_pbkdf2_legacy(void **state)
{
    (void)state;
    const char *k260 = "pbkdf2_sha256$260000$posthog_personal_api_key$LY55v9fAybTkrk1ntHtaVUNm4VTIeePgjn7PLZtr9k0=";
    const char *k390 = "pbkdf2_sha256$390000$posthog_personal_api_key$d2IulVeRNnQC5tuz5SU9C3AEtIpQQ1e5cv2BBXiPK3k=";
    assert_int_equal(kw_key_hash_verify("phx_legacy", 10, k260), KW_HASH_MATCH_UPGRADE);
    assert_int_equal(kw_key_hash_verify("phx_legacy", 10, k390), KW_HASH_MATCH_UPGRADE);
    assert_int_equal(kw_key_hash_verify("phx_legacx", 10, k260), KW_HASH_NOMATCH);
    /* Only the two iteration counts PostHog used are accepted. */
    char other[160];
    kw_key_hash_pbkdf2("phx_legacy", 10, 1000, "posthog_personal_api_key", other, sizeof other);
    assert_int_equal(kw_key_hash_verify("phx_legacy", 10, other), KW_HASH_NOMATCH);
    assert_int_equal(kw_key_hash_verify("phx_legacy", 10, "md5$abc"), KW_HASH_NOMATCH);
    assert_int_equal(kw_key_hash_verify("phx_legacy", 10, "pbkdf2_sha256$260000$"), KW_HASH_NOMATCH);
    /* The forms a legacy key is looked up by are exactly those strings. */
    kw_legacy_forms forms;
    assert_int_equal(kw_key_legacy_forms("phx_legacy", 10, &forms), KW_OK);
    assert_string_equal(forms.form[0], k260);
    assert_string_equal(forms.form[1], k390);
    assert_int_equal(kw_key_legacy_form("phx_legacy", 10, KW_LEGACY_FORMS, other, sizeof other),
                     KW_ERR_INVALID);
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(kw_ct_equal("abcd", "abcd", 4));
    assert_false(kw_ct_equal("abcd", "abce", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_format),  cmocka_unit_test(test_generate_unique),
        cmocka_unit_test(test_checksum_detects_typos), cmocka_unit_test(test_checksum_vector),
        cmocka_unit_test(test_classify_lengths), cmocka_unit_test(test_mask),
        cmocka_unit_test(test_hash_sha256),      cmocka_unit_test(test_hash_pbkdf2_legacy),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
