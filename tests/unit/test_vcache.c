/* test_vcache.c — the verification cache: hits, dropping everything,
 * forgetting one key, user or project, TTL, races between a lookup and a
 * drop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/vcache.h"

static void digest_of(const char *s, unsigned char d[32])
{
    char hex[KW_HASH_LEN + 1];
    kw_key_hash(s, strlen(s), hex);
    for (int i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 7 + 2 * i, "%2x", &v);
        d[i] = (unsigned char)v;
    }
}

static kw_principal sample(int64_t user)
{
    kw_principal p;
    memset(&p, 0, sizeof p);
    p.kind = KW_KEY_PERSONAL;
    p.user_id = user;
    strcpy(p.key_id, "key-1");
    kw_scopes_add(&p.scopes, "feature_flag:read");
    p.n_scoped_teams = 2;
    p.scoped_teams[0] = 7;
    p.scoped_teams[1] = 9;
    p.n_scoped_orgs = -1;
    return p;
}

static void test_hit_and_bump(void **state)
{
    (void)state;
    kw_vcache *c;
    assert_int_equal(kw_vcache_new(1024, 0, &c), KW_OK);
    unsigned char d[32];
    digest_of("phx_a", d);
    kw_principal got, want = sample(42);
    int64_t used;
    assert_false(kw_vcache_get(c, d, kw_now(), &got, &used));
    kw_vcache_put(c, d, &want, 123, kw_vcache_ticket(c));
    assert_true(kw_vcache_get(c, d, kw_now(), &got, &used));
    assert_int_equal(got.user_id, 42);
    assert_int_equal(used, 123);
    assert_int_equal(got.n_scoped_teams, 2);
    assert_int_equal(got.scoped_teams[1], 9);
    assert_string_equal(got.key_id, "key-1");
    kw_vcache_touched(c, d, 456);
    assert_true(kw_vcache_get(c, d, kw_now(), &got, &used));
    assert_int_equal(used, 456);
    /* A revocation anywhere drops every entry. */
    kw_vcache_bump(c);
    assert_false(kw_vcache_get(c, d, kw_now(), &got, &used));
    /* Another digest never answers for this one. */
    unsigned char other[32];
    digest_of("phx_b", other);
    kw_vcache_put(c, d, &want, 0, kw_vcache_ticket(c));
    assert_false(kw_vcache_get(c, other, kw_now(), &got, &used));
    kw_vcache_free(c);
}

static void test_stale_put_is_ignored(void **state)
{
    (void)state;
    kw_vcache *c;
    kw_vcache_new(64, 0, &c);
    unsigned char d[32];
    digest_of("phx_a", d);
    kw_principal p = sample(1), got;
    int64_t used;
    uint64_t before = kw_vcache_ticket(c);
    kw_vcache_bump(c);  /* a revocation lands between the read and the put */
    kw_vcache_put(c, d, &p, 0, before);
    assert_false(kw_vcache_get(c, d, kw_now(), &got, &used));
    kw_vcache_free(c);
}

static kw_principal secret_key(const char *id, int64_t project)
{
    kw_principal p;
    memset(&p, 0, sizeof p);
    p.kind = KW_KEY_SECRET;
    p.project_id = project;
    strcpy(p.key_id, id);
    p.n_scoped_teams = p.n_scoped_orgs = -1;
    return p;
}

/* Forgetting is per identity: key A's revocation leaves key B cached (it
 * used to drop every entry); a user's deactivation forgets that user's
 * keys only; a project's token reset forgets its token and secret keys. */
static void test_forget_is_per_key(void **state)
{
    (void)state;
    kw_vcache *c;
    kw_vcache_new(4096, 0, &c);
    unsigned char da[32], db[32], dc[32], ds[32], dt[32], du[32];
    digest_of("phx_a", da);
    digest_of("phx_b", db);
    digest_of("phx_c", dc);
    digest_of("phs_s", ds);
    digest_of("phc_t", dt);
    digest_of("phs_u", du);
    kw_principal a = sample(1), b = sample(1), other_user = sample(2), got;
    strcpy(a.key_id, "key-a");
    strcpy(b.key_id, "key-b");
    strcpy(other_user.key_id, "key-c");
    kw_principal s = secret_key("key-s", 7), u = secret_key("key-u", 8), t;
    memset(&t, 0, sizeof t);
    t.kind = KW_KEY_PROJECT;
    t.project_id = 7;
    t.n_scoped_teams = t.n_scoped_orgs = -1;
    int64_t used;
    uint64_t ticket = kw_vcache_ticket(c);
    kw_vcache_put(c, da, &a, 0, ticket);
    kw_vcache_put(c, db, &b, 0, ticket);
    kw_vcache_put(c, dc, &other_user, 0, ticket);
    kw_vcache_put(c, ds, &s, 0, ticket);
    kw_vcache_put(c, dt, &t, 0, ticket);
    kw_vcache_put(c, du, &u, 0, ticket);

    kw_vcache_forget_key(c, "key-a");
    assert_false(kw_vcache_get(c, da, kw_now(), &got, &used));
    assert_true(kw_vcache_get(c, db, kw_now(), &got, &used));
    assert_string_equal(got.key_id, "key-b");
    assert_true(kw_vcache_get(c, dc, kw_now(), &got, &used));
    assert_true(kw_vcache_get(c, ds, kw_now(), &got, &used));
    assert_true(kw_vcache_get(c, dt, kw_now(), &got, &used));

    /* A new entry for A, read after the revocation, is cached again. */
    kw_vcache_put(c, da, &a, 0, kw_vcache_ticket(c));
    assert_true(kw_vcache_get(c, da, kw_now(), &got, &used));

    kw_vcache_forget_user(c, 1);
    assert_false(kw_vcache_get(c, da, kw_now(), &got, &used));
    assert_false(kw_vcache_get(c, db, kw_now(), &got, &used));
    assert_true(kw_vcache_get(c, dc, kw_now(), &got, &used));
    assert_true(kw_vcache_get(c, ds, kw_now(), &got, &used));

    kw_vcache_forget_project(c, 7);
    assert_false(kw_vcache_get(c, dt, kw_now(), &got, &used));
    assert_false(kw_vcache_get(c, ds, kw_now(), &got, &used));
    assert_true(kw_vcache_get(c, du, kw_now(), &got, &used));  /* another project */
    assert_true(kw_vcache_get(c, dc, kw_now(), &got, &used));

    /* A stale read of B (ticket before B's revocation) is not cached. */
    uint64_t before = kw_vcache_ticket(c);
    kw_vcache_forget_key(c, "key-b");
    kw_vcache_put(c, db, &b, 0, before);
    assert_false(kw_vcache_get(c, db, kw_now(), &got, &used));
    /* …and leaves every other entry alone. */
    assert_true(kw_vcache_get(c, dc, kw_now(), &got, &used));

    /* Dropping everything remains, as the fallback. */
    kw_vcache_bump(c);
    assert_false(kw_vcache_get(c, dc, kw_now(), &got, &used));
    assert_false(kw_vcache_get(c, du, kw_now(), &got, &used));
    kw_vcache_free(c);
}

static void test_ttl_and_wide_narrowing(void **state)
{
    (void)state;
    kw_vcache *c;
    kw_vcache_new(64, 1000000, &c);
    unsigned char d[32];
    digest_of("phx_a", d);
    kw_principal p = sample(1), got;
    int64_t used;
    kw_clock_set(1000000000);
    kw_vcache_put(c, d, &p, 0, kw_vcache_ticket(c));
    kw_clock_set(1000000000 + 999999);
    assert_true(kw_vcache_get(c, d, kw_now(), &got, &used));
    kw_clock_set(1000000000 + 1000000);
    assert_false(kw_vcache_get(c, d, kw_now(), &got, &used));
    kw_clock_set(0);
    /* A key narrowed to many projects is not cached (always verified in full). */
    p.n_scoped_teams = 20;
    kw_vcache_put(c, d, &p, 0, kw_vcache_ticket(c));
    assert_false(kw_vcache_get(c, d, kw_now(), &got, &used));
    kw_vcache_free(c);
}

struct race {
    kw_vcache *c;
    unsigned char d[32];
    int stop;
};

static void *reader(void *arg)
{
    struct race *r = arg;
    kw_principal got;
    int64_t used;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
        if (kw_vcache_get(r->c, r->d, kw_now(), &got, &used)) assert_int_equal(got.user_id, 5);
    return NULL;
}

static void test_concurrent_readers(void **state)
{
    (void)state;
    struct race r;
    kw_vcache_new(4096, 0, &r.c);
    digest_of("phx_race", r.d);
    r.stop = 0;
    kw_principal p = sample(5);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, reader, &r);
    for (int i = 0; i < 20000; i++) {
        kw_vcache_put(r.c, r.d, &p, i, kw_vcache_ticket(r.c));
        if (i % 7 == 0) kw_vcache_bump(r.c);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    kw_vcache_free(r.c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_bump),          cmocka_unit_test(test_stale_put_is_ignored),
        cmocka_unit_test(test_forget_is_per_key), cmocka_unit_test(test_ttl_and_wide_narrowing),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
