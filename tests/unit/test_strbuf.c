/* test_strbuf.c — the bounded text builder: an append that does not fit
 * leaves the text as it was and marks the builder, for fixed and heap
 * storage, at every boundary; nothing is written past the storage (a
 * guard byte after the array, and ASan in the sanitizer build). */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <string.h>

#include "keyward/strbuf.h"

static void fixed_exact_fit(void **state)
{
    (void)state;
    struct {
        char buf[8];
        char guard;
    } s;
    s.guard = 'G';
    kw_strbuf sb;
    kw_sb_init(&sb, s.buf, sizeof s.buf);
    kw_sb_append(&sb, "abc");
    kw_sb_appendf(&sb, "%d", 1234);  /* 7 chars + NUL = 8: fits */
    assert_true(kw_sb_ok(&sb));
    assert_string_equal(kw_sb_str(&sb), "abc1234");
    kw_sb_append(&sb, "x");           /* one too many */
    assert_false(kw_sb_ok(&sb));
    assert_string_equal(kw_sb_str(&sb), "abc1234");
    assert_int_equal(s.guard, 'G');
}

static void fixed_refused_append_leaves_no_half(void **state)
{
    (void)state;
    char buf[10];
    kw_strbuf sb;
    kw_sb_init(&sb, buf, sizeof buf);
    kw_sb_append(&sb, "page=1");
    kw_sb_appendf(&sb, "&scope=%s", "AAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_false(kw_sb_ok(&sb));
    assert_string_equal(buf, "page=1");
    /* later appends are refused too, even those that would fit */
    kw_sb_append(&sb, "&");
    assert_string_equal(buf, "page=1");
    assert_int_equal(kw_sb_len(&sb), 6);
}

static void fixed_every_length(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (size_t size = 1; size < 64; size++) {
        for (size_t n = 0; n < 80; n++) {
            char buf[64 + 1];
            buf[size] = 'G';
            kw_strbuf sb;
            kw_sb_init(&sb, buf, size);
            kw_sb_appendf(&sb, "%.*s", (int)n, big);
            assert_int_equal(kw_sb_ok(&sb), n < size);
            assert_int_equal(kw_sb_len(&sb), n < size ? n : 0);
            assert_int_equal(buf[size], 'G');
            assert_int_equal(strlen(buf), kw_sb_len(&sb));
        }
    }
}

static void heap_grows_to_limit(void **state)
{
    (void)state;
    kw_strbuf sb;
    kw_sb_init_heap(&sb, 1000);
    for (int i = 0; i < 99; i++) kw_sb_appendf(&sb, "%s", "0123456789");
    assert_true(kw_sb_ok(&sb));
    assert_int_equal(kw_sb_len(&sb), 990);
    kw_sb_append(&sb, "123456789");  /* 999 + NUL = 1000 */
    assert_true(kw_sb_ok(&sb));
    kw_sb_append(&sb, "x");
    assert_false(kw_sb_ok(&sb));
    assert_int_equal(kw_sb_len(&sb), 999);
    assert_int_equal(strlen(kw_sb_str(&sb)), 999);
    kw_sb_free(&sb);
}

static void heap_big_format_at_once(void **state)
{
    (void)state;
    kw_strbuf sb;
    kw_sb_init_heap(&sb, 1 << 20);
    char big[5000];
    memset(big, 'b', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    kw_sb_appendf(&sb, "<%s>", big);
    assert_true(kw_sb_ok(&sb));
    assert_int_equal(kw_sb_len(&sb), 5001);
    kw_sb_free(&sb);
}

static void hex_and_urlencode(void **state)
{
    (void)state;
    char buf[64];
    kw_strbuf sb;
    kw_sb_init(&sb, buf, sizeof buf);
    const unsigned char raw[] = {0x00, 0xab, 0xff};
    kw_sb_hex(&sb, raw, sizeof raw);
    kw_sb_append(&sb, " ");
    kw_sb_urlencode(&sb, "a b&c=%/~");
    assert_true(kw_sb_ok(&sb));
    assert_string_equal(buf, "00abff a%20b%26c%3D%25%2F~");
    char small[5];
    kw_sb_init(&sb, small, sizeof small);
    kw_sb_hex(&sb, raw, sizeof raw);  /* 6 chars: does not fit */
    assert_false(kw_sb_ok(&sb));
    assert_string_equal(small, "");
}

/* kw_sb_int prints what printf's %lld prints, extremes included, and
 * refuses whole when it does not fit. */
static void integers_as_printf_prints_them(void **state)
{
    (void)state;
    const long long values[] = {0, 7, -7, 10, 99, 100, -100, 1234567890123LL, LLONG_MAX, LLONG_MIN};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char buf[32], want[32];
        kw_strbuf sb;
        kw_sb_init(&sb, buf, sizeof buf);
        KW_SB_LIT(&sb, "n=");
        kw_sb_int(&sb, values[i]);
        snprintf(want, sizeof want, "n=%lld", values[i]);
        assert_true(kw_sb_ok(&sb));
        assert_string_equal(kw_sb_str(&sb), want);
    }
    char small[4];
    kw_strbuf sb;
    kw_sb_init(&sb, small, sizeof small);
    kw_sb_int(&sb, 12345);
    assert_false(kw_sb_ok(&sb));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixed_exact_fit),
        cmocka_unit_test(fixed_refused_append_leaves_no_half),
        cmocka_unit_test(fixed_every_length),
        cmocka_unit_test(heap_grows_to_limit),
        cmocka_unit_test(heap_big_format_at_once),
        cmocka_unit_test(hex_and_urlencode),
        cmocka_unit_test(integers_as_printf_prints_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
