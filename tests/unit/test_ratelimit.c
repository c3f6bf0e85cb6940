/* test_ratelimit.c — token buckets with a pinned clock (no sleeping). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* A key able to change its own limit must not refill by lowering it: the
 * requests already spent stay spent.  Lowering 20 → 19 → … → 1 while
 * spending all but one each time used to give ~N²/2 requests a minute. */
static void test_lowering_a_limit_never_refills(void **state)
{
    (void)state;
    kw_ratelimit *rl;
    assert_int_equal(kw_ratelimit_new(1024, &rl), KW_OK);
    int64_t t = 7000 * SEC;
    int allowed = 0;
    for (int limit = 20; limit >= 1; limit--)
        for (int i = 0; i < limit; i++) allowed += kw_ratelimit_take(rl, "k", limit, t) == 0;
    assert_int_equal(allowed, 20);
    /* and the lower limit's rate applies from then on */
    assert_int_equal(kw_ratelimit_take(rl, "k", 1, t + 30 * SEC), 30);
    assert_int_equal(kw_ratelimit_take(rl, "k", 1, t + 60 * SEC), 0);
    kw_ratelimit_free(rl);
}

/* Two keys never share a bucket: with far more hot keys than the table
 * had slots, each key is still held to its own limit (a collision used to
 * give the incoming key a full bucket, so two colliding keys taking turns
 * were never limited). */
static void test_no_key_gets_a_fresh_bucket_from_another(void **state)
{
    (void)state;
    kw_ratelimit *rl;
    assert_int_equal(kw_ratelimit_new(64, &rl), KW_OK);
    int64_t t = 8000 * SEC;
    enum { KEYS = 3000 };
    char id[48];
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < KEYS; k++) {
            snprintf(id, sizeof id, "0f6c3a1e-key-%06d", k);
            int allowed = 0;
            for (int i = 0; i < 5; i++) allowed += kw_ratelimit_take(rl, id, 3, t) == 0;
            assert_int_equal(allowed, round == 0 ? 3 : 0);
        }
    /* an id longer than a bucket's is still one key, not a new one per take */
    const char *long_id = "2001:db8:1234:5678:9abc:def0:1234:5678-and-more";
    int allowed = 0;
    for (int i = 0; i < 10; i++) allowed += kw_ratelimit_take(rl, long_id, 3, t) == 0;
    assert_int_equal(allowed, 3);
    /* a minute later every key is full again */
    assert_int_equal(kw_ratelimit_take(rl, "0f6c3a1e-key-000007", 3, t + 60 * SEC), 0);
    kw_ratelimit_free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refill),
        cmocka_unit_test(test_slow_limits_and_changes),
        cmocka_unit_test(test_steady_rate_over_an_hour),
        cmocka_unit_test(test_first_refusal_of_each_minute),
        cmocka_unit_test(test_lowering_a_limit_never_refills),
        cmocka_unit_test(test_no_key_gets_a_fresh_bucket_from_another),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
