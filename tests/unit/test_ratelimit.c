/* test_ratelimit.c — token buckets with a pinned clock (no sleeping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "keyward/keyward.h"
#include "keyward/ratelimit.h"

#define SEC 1000000LL

static void test_burst_then_refill(void **state)
{
    (void)state;
    kw_ratelimit *rl;
    assert_int_equal(kw_ratelimit_new(1024, &rl), KW_OK);
    int64_t t = 1000 * SEC;
    for (int i = 0; i < 60; i++) assert_int_equal(kw_ratelimit_take(rl, "k1", 60, t), 0);
    int retry = kw_ratelimit_take(rl, "k1", 60, t);
    assert_int_equal(retry, 1);                 /* 60/min refills one a second */
    assert_int_equal(kw_ratelimit_take(rl, "k1", 60, t + SEC / 2), 1);
    assert_int_equal(kw_ratelimit_take(rl, "k1", 60, t + SEC), 0);
    /* Another key is independent. */
    assert_int_equal(kw_ratelimit_take(rl, "k2", 60, t), 0);
    kw_ratelimit_free(rl);
}

static void test_slow_limits_and_changes(void **state)
{
    (void)state;
    kw_ratelimit *rl;
    kw_ratelimit_new(1024, &rl);
    int64_t t = 5000 * SEC;
    assert_int_equal(kw_ratelimit_take(rl, "slow", 1, t), 0);
    assert_int_equal(kw_ratelimit_take(rl, "slow", 1, t), 60);  /* one a minute */
    assert_int_equal(kw_ratelimit_take(rl, "slow", 1, t + 30 * SEC), 30);
    assert_int_equal(kw_ratelimit_take(rl, "slow", 1, t + 60 * SEC), 0);
    /* Raising the limit takes effect at once. */
    assert_int_equal(kw_ratelimit_take(rl, "slow", 100, t + 60 * SEC), 0);
    /* No limit: always allowed. */
    for (int i = 0; i < 1000; i++) assert_int_equal(kw_ratelimit_take(rl, "free", 0, t), 0);
    kw_ratelimit_free(rl);
}

static void test_steady_rate_over_an_hour(void **state)
{
    (void)state;
    kw_ratelimit *rl;
    kw_ratelimit_new(1024, &rl);
    int64_t t = 9000 * SEC;
    int allowed = 0;
    /* 10 requests a second for an hour against 120/min: 120 burst + 2/s. */
    for (int i = 0; i < 36000; i++) allowed += kw_ratelimit_take(rl, "k", 120, t + i * SEC / 10) == 0;
    assert_in_range(allowed, 120 + 7198, 120 + 7200);
    kw_ratelimit_free(rl);
}

/* A burst of refusals is noted once a minute per key: the first refusal
 * of each minute, per key; allowed requests are never noted. */
static void test_first_refusal_of_each_minute(void **state)
{
    (void)state;
    kw_ratelimit *rl;
    assert_int_equal(kw_ratelimit_new(1024, &rl), KW_OK);
    int64_t t = 1700000000LL * SEC;
    t -= t % (60 * SEC);  /* the start of a minute */
    int first = -1;
    assert_int_equal(kw_ratelimit_take_noting(rl, "k", 2, t, &first), 0);
    assert_int_equal(first, 0);
    assert_int_equal(kw_ratelimit_take_noting(rl, "k", 2, t, &first), 0);
    int noted = 0;
    for (int i = 0; i < 100; i++) {
        assert_true(kw_ratelimit_take_noting(rl, "k", 2, t + i * 100000, &first) > 0);
        noted += first;
    }
    assert_int_equal(noted, 1);
    /* another key is noted on its own */
    kw_ratelimit_take_noting(rl, "j", 1, t, &first);
    assert_int_equal(first, 0);
    kw_ratelimit_take_noting(rl, "j", 1, t, &first);
    assert_int_equal(first, 1);
    /* the next minute: noted again, once */
    noted = 0;
    for (int i = 0; i < 50; i++) {
        if (kw_ratelimit_take_noting(rl, "k", 2, t + 60 * SEC + 59 * SEC + i, &first)) noted += first;
    }
    assert_int_equal(noted, 1);
    kw_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_slow_limits_and_changes),
        cmocka_unit_test(test_steady_rate_over_an_hour),
        cmocka_unit_test(test_first_refusal_of_each_minute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
