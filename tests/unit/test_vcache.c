/* test_vcache.c — the verification cache: hits, generation invalidation,
 * store-generation sync, TTL, races between a lookup and a bump. */
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
    assert_false(kw_vcache_get(c, d, &got, &used));
    kw_vcache_put(c, d, &want, 123, kw_vcache_generation(c));
    assert_true(kw_vcache_get(c, d, &got, &used));
    assert_int_equal(got.user_id, 42);
    assert_int_equal(used, 123);
    assert_int_equal(got.n_scoped_teams, 2);
    assert_int_equal(got.scoped_teams[1], 9);
    assert_string_equal(got.key_id, "key-1");
    kw_vcache_touched(c, d, 456);
    assert_true(kw_vcache_get(c, d, &got, &used));
    assert_int_equal(used, 456);
    /* A revocation anywhere drops every entry. */
    kw_vcache_bump(c);
    assert_false(kw_vcache_get(c, d, &got, &used));
    /* Another digest never answers for this one. */
    unsigned char other[32];
    digest_of("phx_b", other);
    kw_vcache_put(c, d, &want, 0, kw_vcache_generation(c));
    assert_false(kw_vcache_get(c, other, &got, &used));
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
    uint64_t before = kw_vcache_generation(c);
    kw_vcache_bump(c);  /* a revocation lands between the read and the put */
    kw_vcache_put(c, d, &p, 0, before);
    assert_false(kw_vcache_get(c, d, &got, &used));
    kw_vcache_free(c);
}

static void test_store_generation_sync(void **state)
{
    (void)state;
    kw_vcache *c;
    kw_vcache_new(64, 0, &c);
    unsigned char d[32];
    digest_of("phx_a", d);
    kw_principal p = sample(1), got;
    int64_t used;
    assert_int_equal(kw_vcache_sync(c, 10), 0);  /* first reading: a baseline */
    kw_vcache_put(c, d, &p, 0, kw_vcache_generation(c));
    assert_int_equal(kw_vcache_sync(c, 10), 0);
    assert_true(kw_vcache_get(c, d, &got, &used));
    assert_int_equal(kw_vcache_sync(c, 11), 1);  /* another process revoked */
    assert_false(kw_vcache_get(c, d, &got, &used));
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
    kw_vcache_put(c, d, &p, 0, kw_vcache_generation(c));
    kw_clock_set(1000000000 + 999999);
    assert_true(kw_vcache_get(c, d, &got, &used));
    kw_clock_set(1000000000 + 1000000);
    assert_false(kw_vcache_get(c, d, &got, &used));
    kw_clock_set(0);
    /* A key narrowed to many projects is not cached (always verified in full). */
    p.n_scoped_teams = 20;
    kw_vcache_put(c, d, &p, 0, kw_vcache_generation(c));
    assert_false(kw_vcache_get(c, d, &got, &used));
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
        if (kw_vcache_get(r->c, r->d, &got, &used)) assert_int_equal(got.user_id, 5);
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
        kw_vcache_put(r.c, r.d, &p, i, kw_vcache_generation(r.c));
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
        cmocka_unit_test(test_store_generation_sync), cmocka_unit_test(test_ttl_and_wide_narrowing),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
