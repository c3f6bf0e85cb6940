/* test_budget.c — the bounds on unauthenticated work, with explicit times:
 * the legacy-check budget (one at a time, per address and global token
 * buckets, Retry-After) and the leak-report guard (per-address and total limits,
 * memory of recent answers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include <string.h>

#include "auth/budget.h"
#include "keyward/keyward.h"
#include "keyward/leak.h"

#define T0 ((int64_t)1767225600 * 1000000)
#define SEC ((int64_t)1000000)

static void take_ok(kw_budget *b, const char *client, int64_t now)
{
    assert_int_equal(kw_budget_take(b, client, now), 0);
    kw_budget_done(b);
}

static void test_per_client_then_global(void **state)
{
    (void)state;
    kw_budget *b;
    kw_clock_set(T0);  /* the global bucket starts full at kw_now() */
    assert_int_equal(kw_budget_new(&b), KW_OK);
    for (int i = 0; i < KW_BUDGET_CLIENT_BURST; i++) take_ok(b, "10.0.0.1", T0);
    /* the address's burst is spent: refill is 6 a minute, so 10 s */
    assert_int_equal(kw_budget_take(b, "10.0.0.1", T0), 10);
    /* another address still gets the global remainder (burst 4: one left) */
    take_ok(b, "10.0.0.2", T0);
    int wait = kw_budget_take(b, "10.0.0.3", T0);
    assert_int_equal(wait, 2);  /* global: 30 a minute */
    take_ok(b, "10.0.0.3", T0 + 2 * SEC);
    /* the first address is back after its 10 s */
    take_ok(b, "10.0.0.1", T0 + 12 * SEC);
    kw_clock_set(0);
    kw_budget_free(b);
}

static void test_one_at_a_time(void **state)
{
    (void)state;
    kw_budget *b;
    assert_int_equal(kw_budget_new(&b), KW_OK);
    assert_int_equal(kw_budget_take(b, "10.0.0.1", T0), 0);
    /* while one runs, nobody else starts one, whatever the buckets say */
    assert_int_equal(kw_budget_take(b, "10.0.0.2", T0), 1);
    assert_int_equal(kw_budget_take(b, NULL, T0), 1);
    kw_budget_done(b);
    assert_int_equal(kw_budget_take(b, "10.0.0.2", T0), 0);
    kw_budget_done(b);
    kw_budget_free(b);
}

static void test_leak_guard(void **state)
{
    (void)state;
    kw_leak_guard *g;
    kw_clock_set(T0);  /* the total's bucket starts full at kw_now() */
    assert_int_equal(kw_leak_guard_new(&g), KW_OK);
    kw_clock_set(0);
    for (int i = 0; i < KW_LEAK_REPORTS_PER_MINUTE; i++)
        assert_int_equal(kw_leak_guard_admit(g, "10.0.0.1", T0), 0);
    assert_int_equal(kw_leak_guard_admit(g, "10.0.0.1", T0), 2);
    assert_int_equal(kw_leak_guard_admit(g, "10.0.0.2", T0), 0);
    assert_int_equal(kw_leak_guard_admit(NULL, "10.0.0.1", T0), 0);

    kw_leak_memo m = {.first = {.outcome = KW_LEAK_REVOKED, .owner_user_id = 7}}, got;
    memset(m.first.token_hash, 'a', 64);
    m.first.token_hash[64] = '\0';
    m.has_forms = 1;
    assert_int_equal(kw_key_legacy_forms("phx_legacy", 10, &m.forms), KW_OK);
    const char *hash = m.first.token_hash;
    assert_int_equal(kw_leak_guard_recall(g, hash, T0, &got), 0);
    kw_leak_guard_remember(g, &m, T0);
    assert_int_equal(kw_leak_guard_recall(g, hash, T0 + 60 * SEC, &got), 1);
    assert_int_equal(got.first.outcome, KW_LEAK_REVOKED);
    assert_int_equal(got.first.owner_user_id, 7);
    assert_int_equal(got.has_forms, 1);
    assert_string_equal(got.forms.form[0], m.forms.form[0]);
    assert_string_equal(got.forms.form[1], m.forms.form[1]);
    /* forgotten after the hour */
    assert_int_equal(kw_leak_guard_recall(g, hash, T0 + 3601 * SEC, &got), 0);
    /* another hash in the same slot is not confused with it */
    char other[65];
    memcpy(other, hash, 65);
    other[63] = 'b';
    assert_int_equal(kw_leak_guard_recall(g, other, T0, &got), 0);
    kw_leak_guard_free(g);
}

/* Reports are bounded per client — an IPv6 client by its /64, whatever
 * the length of its address's text — and in total over all clients. */
static void test_leak_guard_bounds(void **state)
{
    (void)state;
    kw_leak_guard *g;
    kw_clock_set(T0);
    assert_int_equal(kw_leak_guard_new(&g), KW_OK);
    kw_clock_set(0);
    const char *full = "2001:db8:1234:5678:9abc:def0:1234:5678";  /* no "::" to shorten it */
    for (int i = 0; i < KW_LEAK_REPORTS_PER_MINUTE; i++)
        assert_int_equal(kw_leak_guard_admit(g, full, T0), 0);
    assert_true(kw_leak_guard_admit(g, full, T0) > 0);
    /* the rest of its /64 shares the limit; the next /64 does not */
    assert_true(kw_leak_guard_admit(g, "2001:db8:1234:5678::1", T0) > 0);
    assert_int_equal(kw_leak_guard_admit(g, "2001:db8:1234:5679::1", T0), 0);
    /* one report each from ever more /64s: the total runs out */
    int admitted = KW_LEAK_REPORTS_PER_MINUTE + 1, refused = 0;
    char addr[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(addr, sizeof addr, "2001:db8:%x:%x::1", i / 65536, i % 65536 + 1);
        if (kw_leak_guard_admit(g, addr, T0)) refused++;
        else admitted++;
    }
    assert_int_equal(admitted, KW_LEAK_REPORTS_PER_MINUTE_ALL / 4);
    assert_int_equal(refused, 1000 - (KW_LEAK_REPORTS_PER_MINUTE_ALL / 4 - KW_LEAK_REPORTS_PER_MINUTE - 1));
    /* and refills at its rate: ten a second */
    assert_int_equal(kw_leak_guard_admit(g, "192.0.2.7", T0 + SEC / 10), 0);
    kw_leak_guard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_per_client_then_global),
        cmocka_unit_test(test_one_at_a_time),
        cmocka_unit_test(test_leak_guard),
        cmocka_unit_test(test_leak_guard_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
