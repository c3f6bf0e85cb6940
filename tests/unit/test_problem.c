/* test_problem.c — problem details are always valid UTF-8, so the error
 * body ({type, code, detail, attr}) can always be encoded as JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/problem.h"

static void assert_encodes(const kw_problem *p)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:s?}", "type", p->type, "code", p->code, "detail",
                             p->detail, "attr", p->attr);
    assert_non_null(body);
    json_decref(body);
}

/* Found by fuzz_http: "POST\xff\xff\xff" as the method gave a 405 with no
 * body, because the detail echoed the bytes and json_pack refused them. */
static void test_invalid_bytes_replaced(void **state)
{
    (void)state;
    kw_problem p;
    kw_problem_set(&p, KW_P_METHOD, NULL, NULL, "Method \"%s\" not allowed.", "POST\xff\xff\xff");
    assert_string_equal(p.detail, "Method \"POST???\" not allowed.");
    assert_encodes(&p);
    /* overlong, surrogate, beyond U+10FFFF, stray continuation */
    kw_problem_set(&p, KW_P_VALIDATION, NULL, "scopes", "Invalid scope: %s",
                   "\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\x80");
    assert_string_equal(p.detail, "Invalid scope: ??|???|????|?");
    assert_encodes(&p);
}

static void test_valid_utf8_kept(void **state)
{
    (void)state;
    kw_problem p;
    kw_problem_set(&p, KW_P_VALIDATION, NULL, "label", "label: %s", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91");
    assert_string_equal(p.detail, "label: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91");
    assert_encodes(&p);
}

/* A detail cut by the buffer inside a multi-byte character. */
static void test_truncated_character(void **state)
{
    (void)state;
    char long_text[1200];
    size_t n = 0;
    while (n + 2 < sizeof long_text) {
        long_text[n++] = '\xc3';
        long_text[n++] = '\xa9';
    }
    long_text[n] = '\0';
    kw_problem p;
    /* 511 bytes fit: 255 characters and the first byte of the next */
    kw_problem_set(&p, KW_P_VALIDATION, NULL, NULL, "%s", long_text);
    assert_int_equal(strlen(p.detail), sizeof p.detail - 1);
    assert_int_equal((unsigned char)p.detail[sizeof p.detail - 2], '?');
    assert_encodes(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_bytes_replaced),
        cmocka_unit_test(test_valid_utf8_kept),
        cmocka_unit_test(test_truncated_character),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
