/* test_webhook.c — the webhook signature, retry schedule and address
 * filter.
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

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

/* 1 when the textual address may be connected to without
 * --webhook-allow-private. */
static int public_text(const char *text)
{
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
    memset(&v4, 0, sizeof v4);
    memset(&v6, 0, sizeof v6);
    if (inet_pton(AF_INET, text, &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        return kw_webhook_address_public((const struct sockaddr *)&v4);
    }
    assert_int_equal(inet_pton(AF_INET6, text, &v6.sin6_addr), 1);
    v6.sin6_family = AF_INET6;
    return kw_webhook_address_public((const struct sockaddr *)&v6);
}

/* IANA's special-purpose registries, a block at a time, and IPv6 forms
 * that carry an IPv4 address judged by that address. */
static void test_address_filter(void **state)
{
    (void)state;
    static const struct {
        const char *address;
        int public;
    } CASES[] = {
        /* IPv4 */
        {"93.184.216.34", 1}, {"8.8.8.8", 1}, {"1.1.1.1", 1}, {"192.0.1.1", 1},
        {"198.17.255.255", 1}, {"198.20.0.1", 1}, {"100.63.255.255", 1}, {"100.128.0.1", 1},
        {"172.15.0.1", 1}, {"172.32.0.1", 1}, {"223.255.255.254", 1},
        {"0.0.0.0", 0}, {"0.1.2.3", 0}, {"10.0.0.1", 0}, {"127.0.0.1", 0}, {"127.8.9.10", 0},
        {"169.254.169.254", 0}, {"172.16.0.1", 0}, {"172.31.255.255", 0}, {"192.168.1.1", 0},
        {"100.64.0.1", 0}, {"100.127.255.255", 0}, {"192.0.0.1", 0}, {"192.0.0.170", 0},
        {"192.0.2.1", 0}, {"192.88.99.1", 0}, {"198.18.0.1", 0}, {"198.19.255.255", 0},
        {"198.51.100.1", 0}, {"203.0.113.1", 0}, {"224.0.0.1", 0}, {"239.255.255.250", 0},
        {"240.0.0.1", 0}, {"255.255.255.255", 0},
        /* IPv6 global unicast */
        {"2606:4700:4700::1111", 1}, {"2a00:1450:4001::200e", 1}, {"2001:4860:4860::8888", 1},
        /* IPv6 non-global */
        {"::", 0}, {"::1", 0}, {"fe80::1", 0}, {"febf::1", 0}, {"fec0::1", 0}, {"feff::1", 0},
        {"fc00::1", 0}, {"fd12:3456::1", 0}, {"ff02::1", 0}, {"ff0e::1", 0}, {"100::1", 0},
        {"64:ff9b:1::a9fe:a9fe", 0}, {"64:ff9b:1::808:808", 0}, {"2001::1", 0},
        {"2001:0:4136:e378::1", 0}, {"2001:2::1", 0}, {"2001:db8::1", 0}, {"3fff::1", 0},
        {"5f00::1", 0}, {"4000::1", 0},
        /* IPv4 inside IPv6: mapped, translated, compatible, NAT64, 6to4 */
        {"::ffff:8.8.8.8", 1}, {"::ffff:127.0.0.1", 0}, {"::ffff:169.254.169.254", 0},
        {"::ffff:0:8.8.8.8", 1}, {"::ffff:0:10.0.0.1", 0},
        {"::8.8.8.8", 1}, {"::a9fe:a9fe", 0}, {"::127.0.0.1", 0}, {"::10.1.2.3", 0},
        {"64:ff9b::808:808", 1}, {"64:ff9b::a9fe:a9fe", 0}, {"64:ff9b::7f00:1", 0},
        {"64:ff9b::c000:201", 0},
        {"2002:808:808::1", 1}, {"2002:a9fe:a9fe::1", 0}, {"2002:7f00:1::", 0},
        {"2002:c0a8:101::1", 0}, {"2002:c612:1::1", 0},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        int got = public_text(CASES[i].address);
        if (got != CASES[i].public)
            fail_msg("%s: %s, expected %s", CASES[i].address, got ? "public" : "refused",
                     CASES[i].public ? "public" : "refused");
    }
    struct sockaddr other;
    memset(&other, 0, sizeof other);
    other.sa_family = AF_UNIX;
    assert_int_equal(kw_webhook_address_public(&other), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vector),
        cmocka_unit_test(test_bad_secrets),
        cmocka_unit_test(test_new_secret),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_address_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
