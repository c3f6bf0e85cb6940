/* test_webhook.c — the webhook signature and retry schedule.
 *
 * The signature must match the Standard Webhooks specification's published
 * test vector (secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, id
 * msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330, body
 * {"test": 2432232314}), so a receiver can verify deliveries with any of
 * that specification's libraries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "keyward/keyward.h"
#include "keyward/webhook.h"

#define SEC 1000000LL

static void test_reference_vector(void **state)
{
    (void)state;
    const char *body = "{\"test\": 2432232314}";
    char sig[KW_WEBHOOK_SIGNATURE_MAX + 1];
    assert_int_equal(kw_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                                     strlen(body), sig),
                     KW_OK);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* Any change of id, time or body changes it. */
    assert_int_equal(kw_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body,
                                     strlen(body), sig),
                     KW_OK);
    assert_string_not_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void test_bad_secrets(void **state)
{
    (void)state;
    char sig[KW_WEBHOOK_SIGNATURE_MAX + 1];
    const char *bad[] = {"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_abc",
                         "whsec_!!!!", "whsec_" "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
                         "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
                         "QUFBQUFBQUFBQUFBQUFBQUFB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(kw_webhook_sign(bad[i], "msg_1", 1, "{}", 2, sig), KW_ERR_INVALID);
}

static void test_new_secret(void **state)
{
    (void)state;
    char a[KW_WEBHOOK_SECRET_MAX + 1], b[KW_WEBHOOK_SECRET_MAX + 1];
    char sig[KW_WEBHOOK_SIGNATURE_MAX + 1];
    assert_int_equal(kw_webhook_new_secret(a), KW_OK);
    assert_int_equal(kw_webhook_new_secret(b), KW_OK);
    assert_int_equal(strncmp(a, "whsec_", 6), 0);
    assert_int_equal(strlen(a), 6 + 32);
    assert_string_not_equal(a, b);
    assert_int_equal(kw_webhook_sign(a, "msg_1", 1, "{}", 2, sig), KW_OK);
    assert_int_equal(strncmp(sig, "v1,", 3), 0);
    assert_int_equal(strlen(sig), 3 + 44);
}

static void test_schedule(void **state)
{
    (void)state;
    kw_time t0 = 1000 * SEC;
    /* 5 s, 10 s, 20 s … after the failed attempt. */
    assert_int_equal(kw_webhook_next_attempt(t0, 1, t0, 5 * SEC), t0 + 5 * SEC);
    assert_int_equal(kw_webhook_next_attempt(t0, 2, t0 + 5 * SEC, 5 * SEC), t0 + 15 * SEC);
    assert_int_equal(kw_webhook_next_attempt(t0, 3, t0, 5 * SEC), t0 + 20 * SEC);
    /* capped at an hour */
    assert_int_equal(kw_webhook_next_attempt(t0, 30, t0, 5 * SEC), t0 + 3600 * SEC);
    assert_int_equal(kw_webhook_next_attempt(t0, 1000000, t0, 5 * SEC), t0 + 3600 * SEC);
    /* none past a day after the event */
    kw_time late = t0 + 24 * 3600 * SEC - 1800 * SEC;
    assert_int_equal(kw_webhook_next_attempt(t0, 30, late, 5 * SEC), 0);
    assert_int_equal(kw_webhook_next_attempt(t0, 1, late, 5 * SEC), late + 5 * SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vector),
        cmocka_unit_test(test_bad_secrets),
        cmocka_unit_test(test_new_secret),
        cmocka_unit_test(test_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
