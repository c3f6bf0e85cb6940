/* test_workq.c — the work queue's contract: jobs run in order on its
 * thread, `take` groups them, a full queue refuses, and stop runs every
 * queued job before it returns and refuses new ones after.  Jobs that can
 * wait gather until a job that cannot, a half-full queue or stop (the
 * linger here is a minute: a test that sees it run did not wait for it). */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "keyward/workq.h"

struct job {
    kw_workq_link link;
    int id;
};

struct record {
    pthread_mutex_t lock;
    pthread_mutex_t gate;  /* held by the test to keep the worker in run() */
    int ran[64];
    int chains[64];        /* the size of each chain run() received */
    int n_ran, n_chains;
    atomic_int entered;    /* run() was called */
    size_t take_size;      /* 0: one at a time (no take) */
};

static void run(void *ctx, kw_workq_link *chain)
{
    struct record *r = ctx;
    atomic_store(&r->entered, 1);
    pthread_mutex_lock(&r->gate);
    pthread_mutex_unlock(&r->gate);
    pthread_mutex_lock(&r->lock);
    int size = 0;
    for (kw_workq_link *l = chain; l; l = l->next, size++) r->ran[r->n_ran++] = ((struct job *)l)->id;
    r->chains[r->n_chains++] = size;
    pthread_mutex_unlock(&r->lock);
}

static size_t take(void *ctx, const kw_workq_link *head)
{
    (void)head;
    return ((struct record *)ctx)->take_size;
}

static void record_init(struct record *r, size_t take_size)
{
    memset(r, 0, sizeof *r);
    atomic_init(&r->entered, 0);
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->gate, NULL);
    r->take_size = take_size;
}

static void test_in_order_one_at_a_time(void **state)
{
    (void)state;
    struct record r;
    record_init(&r, 0);
    kw_workq_ops ops = {.run = run, .ctx = &r};
    kw_workq *q;
    assert_int_equal(kw_workq_start(&ops, &q), 0);
    struct job jobs[10];
    for (int i = 0; i < 10; i++) {
        jobs[i].id = i;
        assert_int_equal(kw_workq_submit(q, &jobs[i].link), 0);
    }
    kw_workq_stop(q);  /* runs all ten before it returns */
    assert_int_equal(r.n_ran, 10);
    for (int i = 0; i < 10; i++) assert_int_equal(r.ran[i], i);
    for (int i = 0; i < r.n_chains; i++) assert_int_equal(r.chains[i], 1);
    struct job late = {.id = 99};
    assert_int_equal(kw_workq_submit(q, &late.link), -1);  /* stopping: refused */
    kw_workq_stop(q);                                      /* idempotent */
    kw_workq_free(q);
    assert_int_equal(r.n_ran, 10);
}

static void test_take_groups_and_bound(void **state)
{
    (void)state;
    struct record r;
    record_init(&r, 3);
    kw_workq_ops ops = {.run = run, .take = take, .ctx = &r, .max_queued = 7};
    kw_workq *q;
    assert_int_equal(kw_workq_start(&ops, &q), 0);
    /* Hold the worker in its first run, so the rest wait in the queue. */
    pthread_mutex_lock(&r.gate);
    struct job jobs[9];
    for (int i = 0; i < 9; i++) jobs[i].id = i;
    assert_int_equal(kw_workq_submit(q, &jobs[0].link), 0);
    for (int spin = 0; spin < 5000 && !atomic_load(&r.entered); spin++) usleep(1000);
    assert_true(atomic_load(&r.entered));
    for (int i = 1; i <= 7; i++) assert_int_equal(kw_workq_submit(q, &jobs[i].link), 0);
    assert_int_equal(kw_workq_submit(q, &jobs[8].link), 1);  /* 7 waiting: full */
    pthread_mutex_unlock(&r.gate);
    kw_workq_stop(q);
    kw_workq_free(q);
    kw_workq_free(NULL);  /* a no-op */
    assert_int_equal(r.n_ran, 8);
    for (int i = 0; i < 8; i++) assert_int_equal(r.ran[i], i);
    /* the held one alone, then the seven waiting in chains of take's 3 */
    assert_int_equal(r.n_chains, 4);
    assert_int_equal(r.chains[0], 1);
    assert_int_equal(r.chains[1], 3);
    assert_int_equal(r.chains[2], 3);
    assert_int_equal(r.chains[3], 1);
}

static int ran_count(struct record *r)
{
    pthread_mutex_lock(&r->lock);
    int n = r->n_ran;
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Waits (at most 5 s) until n jobs ran. */
static void await_ran(struct record *r, int n)
{
    for (int spin = 0; spin < 5000 && ran_count(r) < n; spin++) usleep(1000);
    assert_int_equal(ran_count(r), n);
}

#define LONG_LINGER_US 60000000u

/* A queue whose jobs that can wait gather for a minute, taken together. */
static kw_workq *start_gathering(struct record *r, size_t max_queued)
{
    record_init(r, 64);
    kw_workq_ops ops = {.run = run, .take = take, .ctx = r, .max_queued = max_queued,
                        .linger_us = LONG_LINGER_US};
    kw_workq *q;
    assert_int_equal(kw_workq_start(&ops, &q), 0);
    return q;
}

static void test_can_wait_gathers_until_a_job_cannot(void **state)
{
    (void)state;
    struct record r;
    kw_workq *q = start_gathering(&r, 0);
    struct job jobs[8];
    for (int i = 0; i < 8; i++) jobs[i].id = i;
    for (int i = 0; i < 3; i++) assert_int_equal(kw_workq_submit_can_wait(q, &jobs[i].link), 0);
    usleep(50000);
    assert_int_equal(ran_count(&r), 0);  /* gathering */
    assert_int_equal(kw_workq_submit(q, &jobs[3].link), 0);
    await_ran(&r, 4);
    assert_int_equal(r.n_chains, 1);
    assert_int_equal(r.chains[0], 4);
    /* The hurry ended with that run: the next jobs that can wait gather
     * again. */
    for (int i = 4; i < 6; i++) assert_int_equal(kw_workq_submit_can_wait(q, &jobs[i].link), 0);
    usleep(50000);
    assert_int_equal(ran_count(&r), 4);
    assert_int_equal(kw_workq_submit(q, &jobs[6].link), 0);
    await_ran(&r, 7);
    assert_int_equal(r.n_chains, 2);
    assert_int_equal(r.chains[1], 3);
    for (int i = 0; i < 7; i++) assert_int_equal(r.ran[i], i);
    kw_workq_free(q);
}

static void test_gathering_ends_half_full(void **state)
{
    (void)state;
    struct record r;
    kw_workq *q = start_gathering(&r, 8);
    struct job jobs[4];
    for (int i = 0; i < 4; i++) jobs[i].id = i;
    for (int i = 0; i < 3; i++) assert_int_equal(kw_workq_submit_can_wait(q, &jobs[i].link), 0);
    usleep(50000);
    assert_int_equal(ran_count(&r), 0);
    assert_int_equal(kw_workq_submit_can_wait(q, &jobs[3].link), 0);  /* 4 of 8 */
    await_ran(&r, 4);
    assert_int_equal(r.n_chains, 1);
    kw_workq_free(q);
}

static void test_stop_ends_gathering(void **state)
{
    (void)state;
    struct record r;
    kw_workq *q = start_gathering(&r, 0);
    struct job jobs[2] = {{.id = 0}, {.id = 1}};
    for (int i = 0; i < 2; i++) assert_int_equal(kw_workq_submit_can_wait(q, &jobs[i].link), 0);
    usleep(20000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kw_workq_stop(q);  /* runs both now, not a minute from now */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(ran_count(&r), 2);
    assert_true(t1.tv_sec - t0.tv_sec < 10);
    kw_workq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_one_at_a_time),
        cmocka_unit_test(test_take_groups_and_bound),
        cmocka_unit_test(test_can_wait_gathers_until_a_job_cannot),
        cmocka_unit_test(test_gathering_ends_half_full),
        cmocka_unit_test(test_stop_ends_gathering),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
