/* test_capture_group.c — group commit of captured events, on every
 * backend (store_fixture.h): batches queued while the committer is busy
 * are stored together and each is answered once stored; a batch that
 * cannot be stored fails only itself (the group is retried batch by
 * batch); a full queue refuses at once (the server sheds that request);
 * stop stores what is queued before it returns, and refuses what comes
 * after it until the group is freed. */
#include "store_fixture.h"

#include "keyward/service.h"

/* A done callback that can hold the committer inside it, so that the
 * test controls what is queued behind it. */
struct probe {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int calls;
    int rc[16];
    int hold;  /* while set, the first call waits inside the callback */
};

static void probe_done(kw_capture_batch *b, int rc, void *ctx)
{
    struct probe *p = ctx;
    kw_capture_batch_free(b);
    pthread_mutex_lock(&p->lock);
    p->rc[p->calls++] = rc;
    pthread_cond_broadcast(&p->changed);
    while (p->hold) pthread_cond_wait(&p->changed, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

static void wait_calls(struct probe *p, int n)
{
    pthread_mutex_lock(&p->lock);
    while (p->calls < n) pthread_cond_wait(&p->changed, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

static void release(struct probe *p)
{
    pthread_mutex_lock(&p->lock);
    p->hold = 0;
    pthread_cond_broadcast(&p->changed);
    pthread_mutex_unlock(&p->lock);
}

static kw_capture_batch *stage(const kw_call *c, int64_t project_id, const char *uuid, int n)
{
    json_t *batch = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(batch, json_pack("{s:s, s:s, s:s++}", "event", "grouped",
                                               "distinct_id", "u1", "uuid", uuid, "-",
                                               i ? "more" : "first"));
    kw_capture_batch *b = NULL;
    kw_problem p;
    assert_int_equal(kw_capture_stage(c, project_id, json_pack("{s:o}", "batch", batch), &b, &p),
                     0);
    assert_int_equal(kw_capture_batch_size(b), (size_t)n);
    return b;
}

static int count_cb(void *ctx, const kw_event_row *r)
{
    (void)r;
    ++*(int64_t *)ctx;
    return 0;
}

static int64_t stored(kw_store *s, int64_t project_id)
{
    kw_event_query q;
    memset(&q, 0, sizeof q);
    q.kind = KW_EQ_RECENT_EVENTS;
    q.project_id = project_id;
    q.limit = 1000;
    int64_t n = 0;
    assert_int_equal(kw_store_events_query(s, &q, count_cb, &n), KW_OK);
    return n;
}

static void test_group_commit(void **state)
{
    struct fixture *f = *state;
    int64_t project = make_project(f->store, make_user(f->store, "g@x.io"), "phc_group");
    kw_call c = {.store = f->store};
    kw_capture_group *g;
    assert_int_equal(kw_capture_group_start(&c, 2, &g), KW_OK);
    struct probe p = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER,
                      .hold = 1};

    /* The first batch is stored alone; its callback holds the committer. */
    assert_int_equal(kw_capture_group_submit(g, stage(&c, project, "a", 3), probe_done, &p),
                     KW_OK);
    wait_calls(&p, 1);
    assert_int_equal(p.rc[0], KW_OK);

    /* Behind it: a good batch and one whose project does not exist (a
     * foreign-key failure).  The queue holds two, so a third is refused
     * at once and stays the caller's. */
    assert_int_equal(kw_capture_group_submit(g, stage(&c, project, "b", 2), probe_done, &p),
                     KW_OK);
    assert_int_equal(kw_capture_group_submit(g, stage(&c, 999999, "x", 1), probe_done, &p),
                     KW_OK);
    kw_capture_batch *extra = stage(&c, project, "c", 1);
    assert_int_equal(kw_capture_group_submit(g, extra, probe_done, &p), KW_ERR_LIMIT);
    kw_capture_batch_free(extra);

    /* Released: the two are tried together, that fails, and each is then
     * stored alone: the good one is, the bad one fails by itself. */
    release(&p);
    wait_calls(&p, 3);
    assert_int_equal(p.rc[1], KW_OK);
    assert_int_not_equal(p.rc[2], KW_OK);
    assert_int_equal(stored(f->store, project), 5);

    /* Stop stores what is still queued and answers it first. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(kw_capture_group_submit(g, stage(&c, project, "d", 4), probe_done, &p),
                         KW_OK);
    kw_capture_group_stop(g);
    assert_int_equal(p.calls, 5);
    assert_int_equal(p.rc[3], KW_OK);
    assert_int_equal(p.rc[4], KW_OK);
    assert_int_equal(stored(f->store, project), 13);
    /* Stopped but not freed (the server's threads may still submit until
     * they end): refused, and the batch stays the caller's. */
    kw_capture_batch *late = stage(&c, project, "e", 1);
    assert_int_equal(kw_capture_group_submit(g, late, probe_done, &p), KW_ERR_UNAVAILABLE);
    kw_capture_batch_free(late);
    kw_capture_group_free(g);
}

/* A batch of about `bytes` of properties: events each holding a string of
 * at most 1,000,000 bytes (an event's properties are limited to 1 MiB). */
static kw_capture_batch *stage_big(const kw_call *c, int64_t project_id, size_t bytes)
{
    const size_t each = 1000000;
    char *big = malloc(each + 1);
    assert_non_null(big);
    memset(big, 'x', each);
    big[each] = '\0';
    json_t *events = json_array();
    for (size_t left = bytes; left; ) {
        size_t n = left < each ? left : each;
        json_t *event = json_pack("{s:s, s:s, s:{s:s%}}", "event", "big", "distinct_id", "u1",
                                  "properties", "blob", big, n);
        assert_non_null(event);
        json_array_append_new(events, event);
        left -= n;
    }
    free(big);
    kw_capture_batch *b = NULL;
    kw_problem p;
    assert_int_equal(kw_capture_stage(c, project_id, json_pack("{s:o}", "batch", events), &b, &p),
                     0);
    return b;
}

/* The queue is bounded by the memory its batches hold, not only by their
 * number: a few large batches fill it while the committer is held, the
 * next is refused at once (the server sheds it: 503), and room comes back
 * as batches are done. */
static void test_queue_bounded_by_bytes(void **state)
{
    struct fixture *f = *state;
    int64_t project = make_project(f->store, make_user(f->store, "b@x.io"), "phc_bytes");
    kw_call c = {.store = f->store};
    kw_capture_group *g;
    assert_int_equal(kw_capture_group_start(&c, 1000, &g), KW_OK);
    struct probe p = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER,
                      .hold = 1};
    assert_int_equal(kw_capture_group_submit(g, stage(&c, project, "a", 1), probe_done, &p),
                     KW_OK);
    wait_calls(&p, 1);  /* the committer is held inside the first callback */
    const size_t piece = KW_CAPTURE_QUEUE_BYTES / 4;
    int queued = 0;
    for (; queued < 3; queued++)
        assert_int_equal(kw_capture_group_submit(g, stage_big(&c, project, piece), probe_done, &p),
                         KW_OK);
    kw_capture_batch *over = stage_big(&c, project, piece);
    assert_int_equal(kw_capture_group_submit(g, over, probe_done, &p), KW_ERR_LIMIT);
    /* a small one still fits */
    assert_int_equal(kw_capture_group_submit(g, stage(&c, project, "s", 1), probe_done, &p),
                     KW_OK);
    release(&p);
    wait_calls(&p, 5);
    for (int i = 0; i < 5; i++) assert_int_equal(p.rc[i], KW_OK);
    /* done: the room is back */
    assert_int_equal(kw_capture_group_submit(g, over, probe_done, &p), KW_OK);
    kw_capture_group_stop(g);
    assert_int_equal(p.rc[5], KW_OK);
    kw_capture_group_free(g);
}

/* Many batches queued at once share transactions and all arrive. */
static void test_many_batches(void **state)
{
    struct fixture *f = *state;
    int64_t project = make_project(f->store, make_user(f->store, "m@x.io"), "phc_many");
    kw_call c = {.store = f->store};
    kw_capture_group *g;
    assert_int_equal(kw_capture_group_start(&c, 1000, &g), KW_OK);
    static struct probe p = {.lock = PTHREAD_MUTEX_INITIALIZER,
                             .changed = PTHREAD_COND_INITIALIZER};
    p.calls = 0;
    for (int i = 0; i < 12; i++)
        assert_int_equal(kw_capture_group_submit(g, stage(&c, project, "m", 25), probe_done, &p),
                         KW_OK);
    kw_capture_group_free(g);  /* stops it first */
    assert_int_equal(p.calls, 12);
    for (int i = 0; i < 12; i++) assert_int_equal(p.rc[i], KW_OK);
    assert_int_equal(stored(f->store, project), 300);
}

/* One group mixing two projects, with an empty batch inside a run:
 * consecutive batches of a project go in as one list, and every event
 * lands in its own project. */
static void test_runs_of_projects(void **state)
{
    struct fixture *f = *state;
    int64_t p1 = make_project(f->store, make_user(f->store, "r1@x.io"), "phc_run_one");
    int64_t p2 = make_project(f->store, make_user(f->store, "r2@x.io"), "phc_run_two");
    kw_call c = {.store = f->store};
    kw_capture_group *g;
    assert_int_equal(kw_capture_group_start(&c, 100, &g), KW_OK);
    static struct probe p = {.lock = PTHREAD_MUTEX_INITIALIZER,
                             .changed = PTHREAD_COND_INITIALIZER};
    p.calls = 0;
    p.hold = 1;
    assert_int_equal(kw_capture_group_submit(g, stage(&c, p1, "r0", 1), probe_done, &p), KW_OK);
    wait_calls(&p, 1);  /* the committer waits in the callback: the rest queue up */
    static const struct { int project; const char *uuid; int n; } queued[] = {
        {1, "r1", 2}, {1, "r2", 3}, {2, "r3", 1}, {1, "r4", 0}, {1, "r5", 2}, {2, "r6", 4},
    };
    for (size_t i = 0; i < sizeof queued / sizeof queued[0]; i++)
        assert_int_equal(kw_capture_group_submit(g, stage(&c, queued[i].project == 1 ? p1 : p2,
                                                          queued[i].uuid, queued[i].n),
                                                 probe_done, &p),
                         KW_OK);
    release(&p);
    wait_calls(&p, 7);
    for (int i = 0; i < 7; i++) assert_int_equal(p.rc[i], KW_OK);
    assert_int_equal(stored(f->store, p1), 1 + 2 + 3 + 0 + 2);
    assert_int_equal(stored(f->store, p2), 1 + 4);
    kw_capture_group_free(g);
}

#define CASES(setup)                                                              \
    {                                                                             \
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),      \
        cmocka_unit_test_setup_teardown(test_many_batches, setup, teardown),      \
        cmocka_unit_test_setup_teardown(test_runs_of_projects, setup, teardown),  \
        cmocka_unit_test_setup_teardown(test_queue_bounded_by_bytes, setup, teardown), \
    }

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = CASES(setup_sqlite);
    int failed = cmocka_run_group_tests_name("capture_group/sqlite", sqlite_tests, NULL, NULL);
    pg_admin_url = getenv("KEYWARD_TEST_PG_URL");
    if (!pg_admin_url || !*pg_admin_url) {
        printf("[  SKIPPED ] capture_group/postgresql: KEYWARD_TEST_PG_URL is not set\n");
        return failed;
    }
    const struct CMUnitTest pg_tests[] = CASES(setup_pg);
    failed += cmocka_run_group_tests_name("capture_group/postgresql", pg_tests, NULL, NULL);
    return failed;
}
