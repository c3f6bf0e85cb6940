/* test_metrics.c — the lock-free counters: what many threads add is all
 * there at the next read (shards summed), a status lands in its class and
 * an out-of-range route in the "none" slot, a latency in the first bucket
 * whose bound holds it, and out-of-range enumerations are ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>

#include "keyward/metrics.h"

#define THREADS 24  /* more than the shards: some share one */
#define PER_THREAD 20000

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        kw_metrics_verification(KW_M_SECRET, KW_M_OK, 3000);
        kw_metrics_cache(KW_M_SECRET, i & 1);
        kw_metrics_http(7, 200, 1000);
    }
    return NULL;
}

static void threads_sum_exactly(void **state)
{
    (void)state;
    kw_metrics_snapshot *before = malloc(sizeof *before), *after = malloc(sizeof *after);
    assert_non_null(before);
    assert_non_null(after);
    kw_metrics_read(before);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    kw_metrics_read(after);
    uint64_t n = (uint64_t)THREADS * PER_THREAD;
    assert_int_equal(after->verifications[KW_M_SECRET][KW_M_OK] -
                         before->verifications[KW_M_SECRET][KW_M_OK], n);
    assert_int_equal(after->verify_latency[KW_M_SECRET].count -
                         before->verify_latency[KW_M_SECRET].count, n);
    assert_int_equal(after->verify_latency[KW_M_SECRET].sum_ns -
                         before->verify_latency[KW_M_SECRET].sum_ns, n * 3000);
    /* 3 µs: the first bucket (≤ 5 µs). */
    assert_int_equal(after->verify_latency[KW_M_SECRET].bucket[0] -
                         before->verify_latency[KW_M_SECRET].bucket[0], n);
    assert_int_equal(after->cache_hits[KW_M_SECRET] - before->cache_hits[KW_M_SECRET], n / 2);
    assert_int_equal(after->cache_misses[KW_M_SECRET] - before->cache_misses[KW_M_SECRET], n / 2);
    assert_int_equal(after->http[7][1] - before->http[7][1], n);
    free(before);
    free(after);
}

static void classes_routes_buckets(void **state)
{
    (void)state;
    kw_metrics_snapshot *s = malloc(sizeof *s);
    assert_non_null(s);
    kw_metrics_http(3, 101, 0);
    kw_metrics_http(3, 204, 0);
    kw_metrics_http(3, 304, 0);
    kw_metrics_http(3, 429, 0);
    kw_metrics_http(3, 503, 0);
    kw_metrics_http(3, 0, 0);      /* nonsense status: 5xx */
    kw_metrics_http(3, 700, 0);
    kw_metrics_http(-1, 404, 0);   /* out of range: "none" */
    kw_metrics_http(KW_M_ROUTES + 5, 404, 0);
    kw_metrics_http(KW_M_ROUTE_NONE, 404, 0);
    kw_metrics_verification(KW_M_PERSONAL, KW_M_INVALID, 5000);        /* on a bound: that bucket */
    kw_metrics_verification(KW_M_PERSONAL, KW_M_INVALID, 5001);        /* just over: the next */
    kw_metrics_verification(KW_M_PERSONAL, KW_M_INVALID, 5000000000u); /* 5 s: +Inf */
    kw_metrics_verification(KW_M_NKIND, KW_M_OK, 1);                   /* ignored */
    kw_metrics_verification(KW_M_PERSONAL, KW_M_NRESULT, 1);           /* ignored */
    kw_metrics_rate_limited(KW_M_NLIMIT);                              /* ignored */
    kw_metrics_rate_limited(KW_M_LIMIT_LOGIN);
    kw_metrics_leak_token(KW_M_LEAK_PUBLIC);
    kw_metrics_db_error(KW_M_DB_UNAVAILABLE);
    kw_metrics_read(s);
    for (int c = 0; c < 4; c++) assert_int_equal(s->http[3][c], 1);
    assert_int_equal(s->http[3][4], 3);
    assert_int_equal(s->http[KW_M_ROUTE_NONE][3], 3);
    const kw_m_histogram *h = &s->verify_latency[KW_M_PERSONAL];
    assert_int_equal(h->count, 3);
    assert_int_equal(h->bucket[0], 1);
    assert_int_equal(h->bucket[1], 1);
    assert_int_equal(h->bucket[KW_M_NBUCKET], 1);
    assert_int_equal(s->verifications[KW_M_PERSONAL][KW_M_INVALID], 3);
    assert_int_equal(s->verifications[KW_M_PERSONAL][KW_M_OK], 0);
    assert_int_equal(s->rate_limited[KW_M_LIMIT_LOGIN], 1);
    assert_int_equal(s->leak_tokens[KW_M_LEAK_PUBLIC], 1);
    assert_int_equal(s->db_errors[KW_M_DB_UNAVAILABLE], 1);
    /* Bounds grow strictly: a histogram needs it. */
    for (int b = 1; b < KW_M_NBUCKET; b++)
        assert_true(kw_metrics_buckets[b] > kw_metrics_buckets[b - 1]);
    free(s);
}

int main(void)
{
    /* classes_routes_buckets reads absolute values: it runs first. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classes_routes_buckets),
        cmocka_unit_test(threads_sum_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
