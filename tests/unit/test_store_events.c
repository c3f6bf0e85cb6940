/* test_store_events.c — the store's captured events and endpoints, on
 * every backend (store_fixture.h): capture batches (atomic, in order,
 * any text as data, never outliving their project), each endpoint query
 * kind, and endpoint rows. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* getpid under -std=c11 */
#endif
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyward/keyward.h"
#include "keyward/store.h"
#include "store_fixture.h"

#define HOUR_US (3600LL * 1000000)
#define DAY_US (24 * HOUR_US)

static kw_event ev(const char *uuid, const char *name, const char *who, const char *props,
                   kw_time t)
{
    kw_event e;
    memset(&e, 0, sizeof e);
    snprintf(e.uuid, sizeof e.uuid, "%s", uuid);
    e.event = name;
    e.distinct_id = who;
    e.properties = props;
    e.timestamp = t;
    return e;
}

struct rows {
    int n;
    kw_time bucket[32];
    char key[32][64];
    int key_null[32];
    int64_t count[32];
    char props[32][256];
    char who[32][64];
    char uuid[32][KW_ID_LEN + 1];
};

static int collect_row(void *ctx, const kw_event_row *r)
{
    struct rows *rs = ctx;
    if (rs->n >= 32) return 1;
    rs->bucket[rs->n] = r->bucket;
    const char *key = r->key ? r->key : r->event.event;
    rs->key_null[rs->n] = key == NULL;
    snprintf(rs->key[rs->n], sizeof rs->key[0], "%s", key ? key : "");
    const kw_event *e = &r->event;
    snprintf(rs->props[rs->n], sizeof rs->props[0], "%s", e->properties ? e->properties : "");
    snprintf(rs->who[rs->n], sizeof rs->who[0], "%s", e->distinct_id ? e->distinct_id : "");
    snprintf(rs->uuid[rs->n], sizeof rs->uuid[0], "%s", r->event.uuid);
    rs->count[rs->n++] = r->count;
    return 0;
}

/* Recent events with each one's created_at in place of the count. */
static int collect_created(void *ctx, const kw_event_row *r)
{
    kw_event_row row = *r;
    row.count = r->event.created_at;
    return collect_row(ctx, &row);
}

static void run_query(kw_store *s, const kw_event_query *q, struct rows *out)
{
    memset(out, 0, sizeof *out);
    assert_int_equal(kw_store_events_query(s, q, collect_row, out), KW_OK);
}

static void test_events(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "ev@example.com");
    int64_t pid = make_project(s, uid, "phc_ev");
    int64_t other = make_project(s, uid, "phc_ev_other");
    const kw_time t0 = 20000 * DAY_US;  /* a midnight */
    /* Hostile text is data: quotes, SQL, a key with dots and quotes. */
    const char *evil = "x'); DROP TABLE events; --";
    kw_event batch[] = {
        ev("u1", "$pageview", "alice", "{\"plan\":\"pro\",\"a.b\\\"c\":1}", t0 + 1),
        ev("u2", "$pageview", "bob", "{\"plan\":\"free\"}", t0 + HOUR_US),
        ev("u3", "$pageview", "alice", "{\"plan\":\"pro\"}", t0 + DAY_US + 5),
        ev("u4", "signup", "carol", "{\"plan\":true}", t0 + DAY_US + 6),
        ev("u5", evil, "dave\"\\", "{\"plan\":null,\"q\":\"' OR 1=1 --\"}", t0 + 2 * DAY_US),
    };
    assert_int_equal(kw_store_events_insert(s, pid, batch, 5), KW_OK);
    kw_event noise = ev("u9", "$pageview", "zed", "{}", t0);
    assert_int_equal(kw_store_events_insert(s, other, &noise, 1), KW_OK);
    assert_int_equal(kw_store_events_insert(s, pid, batch, 0), KW_OK);

    kw_event_query q = {.kind = KW_EQ_EVENT_COUNTS, .project_id = pid, .limit = 100};
    struct rows r;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 3);  /* by count desc, then name (bytewise) */
    assert_string_equal(r.key[0], "$pageview");
    assert_int_equal(r.count[0], 3);
    assert_string_equal(r.key[1], "signup");
    assert_string_equal(r.key[2], evil);
    assert_int_equal(r.count[2], 1);

    q.event = evil;  /* an exact match, nothing more */
    run_query(s, &q, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.count[0], 1);

    q.event = "$pageview";
    q.bucket = DAY_US;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.bucket[0], t0);
    assert_int_equal(r.count[0], 2);
    assert_int_equal(r.bucket[1], t0 + DAY_US);
    assert_int_equal(r.count[1], 1);

    q.date_from = t0 + HOUR_US;  /* inclusive */
    q.date_to = t0 + DAY_US + 5; /* exclusive */
    q.bucket = 0;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.count[0], 1);

    kw_event_query u = {.kind = KW_EQ_UNIQUE_USERS, .project_id = pid, .limit = 100};
    run_query(s, &u, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.count[0], 4);
    u.event = "$pageview";
    run_query(s, &u, &r);
    assert_int_equal(r.count[0], 2);

    kw_event_query b = {.kind = KW_EQ_PROPERTY_BREAKDOWN, .project_id = pid, .property = "plan",
                        .limit = 100};
    run_query(s, &b, &r);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.key[0], "pro");
    assert_int_equal(r.count[0], 2);
    assert_string_equal(r.key[1], "free");
    assert_string_equal(r.key[2], "true");
    assert_true(r.key_null[3]);  /* JSON null and missing read as NULL, last */
    b.property = "a.b\"c";       /* a key is a key, not a path */
    run_query(s, &b, &r);
    assert_int_equal(r.n, 2);
    assert_true(r.key_null[0]);  /* by count first: 4 without the key */
    assert_int_equal(r.count[0], 4);
    assert_string_equal(r.key[1], "1");
    assert_int_equal(r.count[1], 1);

    kw_event_query recent = {.kind = KW_EQ_RECENT_EVENTS, .project_id = pid, .limit = 2};
    run_query(s, &recent, &r);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.key[0], evil);
    assert_string_equal(r.props[0], "{\"plan\":null,\"q\":\"' OR 1=1 --\"}");
    assert_string_equal(r.key[1], "signup");

    /* The other project's event never shows. */
    kw_event_query all = {.kind = KW_EQ_EVENT_COUNTS, .project_id = other, .limit = 10};
    run_query(s, &all, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.count[0], 1);
}

/* A batch is stored whole or not at all, and works inside a caller's
 * transaction too. */
static void test_events_atomic(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "eva@example.com");
    int64_t pid = make_project(s, uid, "phc_eva");
    kw_event batch[] = {ev("a1", "one", "x", "{}", 1), ev("a2", "two", "x", "{}", 2)};
    assert_int_equal(kw_store_events_insert(s, pid + 1000, batch, 2), KW_ERR_EXISTS);  /* FK */
    kw_event_query q = {.kind = KW_EQ_EVENT_COUNTS, .project_id = pid + 1000, .limit = 10};
    struct rows r;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(kw_store_begin(s), KW_OK);
    assert_int_equal(kw_store_events_insert(s, pid, batch, 2), KW_OK);
    kw_store_rollback(s);
    q.project_id = pid;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(kw_store_begin(s), KW_OK);
    assert_int_equal(kw_store_events_insert(s, pid, batch, 2), KW_OK);
    assert_int_equal(kw_store_commit(s), KW_OK);
    run_query(s, &q, &r);
    assert_int_equal(r.n, 2);
}

/* Deleting a project deletes its events, and only its events: by the
 * foreign key's cascade on SQLite, by a trigger on PostgreSQL (where the
 * insert locks the project's row instead of a per-row foreign key). */
static void test_events_go_with_their_project(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "gone@example.com");
    int64_t pid = make_project(s, uid, "phc_gone");
    int64_t kept = make_project(s, uid, "phc_kept");
    kw_event batch[] = {ev("g1", "one", "x", "{}", 1), ev("g2", "two", "x", "{}", 2)};
    assert_int_equal(kw_store_events_insert(s, pid, batch, 2), KW_OK);
    kw_event other[] = {ev("k1", "one", "y", "{}", 1)};
    assert_int_equal(kw_store_events_insert(s, kept, other, 1), KW_OK);
    assert_int_equal(kw_store_project_delete(s, pid), KW_OK);
    kw_event_query q = {.kind = KW_EQ_EVENT_COUNTS, .project_id = pid, .limit = 10};
    struct rows r;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 0);
    q.project_id = kept;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 1);
    /* A batch arriving after the delete is refused, not stored orphaned. */
    assert_int_equal(kw_store_events_insert(s, pid, batch, 2), KW_ERR_EXISTS);
    q.project_id = pid;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 0);
}

/* A project deleted while a batch is being stored for it, on PostgreSQL
 * (its own connection per thread), in both orders: no event outlives its
 * project.  Insert first: the delete waits for the insert's row lock and
 * its trigger then sees the committed events.  Delete first: the insert
 * waits for the delete and finds no project. */
struct deleter {
    kw_store *store;
    int64_t project_id;
    int in_transaction;  /* begin, delete, hold the lock for a while, commit */
    atomic_int deleted;
    int rc;
};

static void *delete_project(void *arg)
{
    struct deleter *d = arg;
    if (d->in_transaction) kw_store_begin(d->store);
    d->rc = kw_store_project_delete(d->store, d->project_id);
    atomic_store(&d->deleted, 1);
    if (d->in_transaction) {
        nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL);
        if (kw_store_commit(d->store)) d->rc = -1;
    }
    return NULL;
}

static void test_events_project_deleted_meanwhile(void **state)
{
    kw_store *s = STORE(state);
    if (strcmp(kw_store_backend(s), "postgresql") != 0) skip();
    int64_t uid = make_user(s, "race@example.com");
    int64_t first = make_project(s, uid, "phc_race1");
    int64_t second = make_project(s, uid, "phc_race2");
    kw_event batch[] = {ev("r1", "one", "x", "{}", 1), ev("r2", "two", "x", "{}", 2)};
    kw_event_query q = {.kind = KW_EQ_EVENT_COUNTS, .limit = 10};
    struct rows r;

    assert_int_equal(kw_store_begin(s), KW_OK);
    assert_int_equal(kw_store_events_insert(s, first, batch, 2), KW_OK);
    struct deleter d = {.store = s, .project_id = first};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, delete_project, &d), 0);
    nanosleep(&(struct timespec){.tv_nsec = 300000000}, NULL);
    assert_int_equal(atomic_load(&d.deleted), 0);  /* waiting for the insert's lock */
    assert_int_equal(kw_store_commit(s), KW_OK);
    pthread_join(t, NULL);
    assert_int_equal(d.rc, KW_OK);
    q.project_id = first;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 0);

    struct deleter d2 = {.store = s, .project_id = second, .in_transaction = 1};
    assert_int_equal(pthread_create(&t, NULL, delete_project, &d2), 0);
    for (int spin = 0; spin < 5000 && !atomic_load(&d2.deleted); spin++)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    assert_int_equal(kw_store_events_insert(s, second, batch, 2), KW_ERR_EXISTS);
    pthread_join(t, NULL);
    assert_int_equal(d2.rc, KW_OK);
    q.project_id = second;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 0);
}

/* Endpoint names and ids from a list, in order. */
struct seen {
    int n;
    char ids[8][KW_ENDPOINT_NAME_MAX + 1];
    int64_t nums[8];
};

/* An event keeps the arrival time it was given (capture stamps each one),
 * on every backend; only an event without one gets the store's clock. */
static void test_events_created_at(void **state)
{
    kw_store *s = STORE(state);
    int64_t pid = make_project(s, make_user(s, "evc@example.com"), "phc_evc");
    kw_clock_set(5000);
    kw_event batch[] = {ev("c1", "a", "x", "{}", 10), ev("c2", "b", "x", "{}", 20)};
    batch[0].created_at = 1234;
    assert_int_equal(kw_store_events_insert(s, pid, batch, 2), KW_OK);
    struct rows r;
    kw_event_query q = {.kind = KW_EQ_RECENT_EVENTS, .project_id = pid, .limit = 10};
    memset(&r, 0, sizeof r);
    assert_int_equal(kw_store_events_query(s, &q, collect_created, &r), KW_OK);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.key[0], "b");
    assert_int_equal(r.count[0], 5000);
    assert_string_equal(r.key[1], "a");
    assert_int_equal(r.count[1], 1234);
    kw_clock_set(0);
}

/* The largest batch capture accepts goes in whole and in order, and text
 * that means something in an array literal or in SQL comes back as sent. */
static void test_events_batch_text(void **state)
{
    kw_store *s = STORE(state);
    int64_t pid = make_project(s, make_user(s, "evb@example.com"), "phc_evb");
    static const char *const NAMES[] = {"", "NULL", "{a,b}", "back\\slash", "quo\"te",
                                        "\"{,}\\\"", "caf\u00e9 \xe2\x9c\x93", " spaced "};
    enum { N = 1000, K = sizeof NAMES / sizeof NAMES[0] };
    static kw_event batch[N];
    for (int i = 0; i < N; i++) {
        char uuid[16];
        snprintf(uuid, sizeof uuid, "b%d", i);
        batch[i] = ev(uuid, NAMES[i % K], NAMES[(i + 1) % K], i % K ? "{\"k\":\"v\\\"\"}" : NULL,
                      7);
    }
    assert_int_equal(kw_store_events_insert(s, pid, batch, N), KW_OK);
    kw_event_query q = {.kind = KW_EQ_EVENT_COUNTS, .project_id = pid, .limit = 100};
    struct rows r;
    run_query(s, &q, &r);
    assert_int_equal(r.n, K);
    for (int i = 0; i < r.n; i++) assert_int_equal(r.count[i], N / K);
    /* Newest first; one timestamp, so by id: the batch's own order. */
    kw_event_query recent = {.kind = KW_EQ_RECENT_EVENTS, .project_id = pid, .limit = 2 * K};
    run_query(s, &recent, &r);
    assert_int_equal(r.n, 2 * K);
    for (int i = 0; i < r.n; i++) {
        const kw_event *e = &batch[N - 1 - i];
        assert_string_equal(r.key[i], e->event);
        assert_string_equal(r.who[i], e->distinct_id);
        assert_string_equal(r.uuid[i], e->uuid);
        assert_string_equal(r.props[i], e->properties ? e->properties : "{}");
    }
}

/* Batches around SQLite's 16-row statement (a part of one, exactly one,
 * one and a row, two less a row, two) come back row for row: every column
 * of every row in its place, none lost or doubled at a chunk's edge. */
static void test_events_chunk_edges(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "evc@example.com");
    static const int SIZES[] = {1, 15, 16, 17, 31, 32};
    for (int k = 0; k < (int)(sizeof SIZES / sizeof SIZES[0]); k++) {
        char token[32];
        snprintf(token, sizeof token, "phc_evc%d", k);
        int64_t pid = make_project(s, uid, token);
        int n = SIZES[k];
        kw_event batch[32];
        char names[32][24], who[32][24], props[32][32];
        for (int i = 0; i < n; i++) {
            char uuid[32];
            snprintf(uuid, sizeof uuid, "c%d-%d", k, i);
            snprintf(names[i], sizeof names[i], "ev%d", i);
            snprintf(who[i], sizeof who[i], "user-%d", i);
            snprintf(props[i], sizeof props[i], "{\"i\":%d}", i);
            batch[i] = ev(uuid, names[i], who[i], props[i], (kw_time)(1000 + i));
        }
        assert_int_equal(kw_store_events_insert(s, pid, batch, (size_t)n), KW_OK);
        kw_event_query q = {.kind = KW_EQ_RECENT_EVENTS, .project_id = pid, .limit = 32};
        struct rows r;
        run_query(s, &q, &r);
        assert_int_equal(r.n, n);
        for (int i = 0; i < n; i++) {  /* newest first */
            const kw_event *e = &batch[n - 1 - i];
            assert_string_equal(r.key[i], e->event);
            assert_string_equal(r.who[i], e->distinct_id);
            assert_string_equal(r.uuid[i], e->uuid);
            assert_string_equal(r.props[i], e->properties);
        }
    }
}

/* On SQLite a row refused in the second 16-row statement (a NULL event
 * name: the column is NOT NULL) takes the first statement's rows with it:
 * the batch is stored whole or not at all however it is cut.  PostgreSQL
 * stores a batch in one statement, so it has no such edge to test. */
static void test_events_refused_row_in_later_chunk(void **state)
{
    struct fixture *f = *state;
    if (f->backend != BACKEND_SQLITE) skip();
    kw_store *s = STORE(state);
    int64_t pid = make_project(s, make_user(s, "evr@example.com"), "phc_evr");
    kw_event batch[40];
    for (int i = 0; i < 40; i++) {
        char uuid[16];
        snprintf(uuid, sizeof uuid, "r%d", i);
        batch[i] = ev(uuid, i == 20 ? NULL : "ok", "x", "{}", 5);
    }
    assert_int_not_equal(kw_store_events_insert(s, pid, batch, 40), KW_OK);
    kw_event_query q = {.kind = KW_EQ_EVENT_COUNTS, .project_id = pid, .limit = 10};
    struct rows r;
    run_query(s, &q, &r);
    assert_int_equal(r.n, 0);
    batch[20].event = "ok";
    assert_int_equal(kw_store_events_insert(s, pid, batch, 40), KW_OK);
    run_query(s, &q, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.count[0], 40);
}

static int seen_endpoint(void *ctx, const kw_endpoint *e)
{
    struct seen *s = ctx;
    if (s->n >= 8) return 1;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", e->name);
    s->nums[s->n++] = e->id;
    /* A listing carries the creator with the row: no query per row. */
    assert_true(e->joined);
    assert_true(e->created_by ? e->created_by_user.id == e->created_by && e->created_by_user.uuid[0]
                              : e->created_by_user.id == 0);
    return 0;
}

static void test_endpoints(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "ep@example.com");
    int64_t pid = make_project(s, uid, "phc_ep");
    int64_t other = make_project(s, uid, "phc_ep2");
    kw_clock_set(1000);
    kw_endpoint e;
    memset(&e, 0, sizeof e);
    e.project_id = pid;
    snprintf(e.name, sizeof e.name, "daily-signups");
    e.description = "d";
    e.query = "{\"kind\":\"event_counts\"}";
    e.variables = "{}";
    e.created_by = uid;
    assert_int_equal(kw_store_endpoint_insert(s, &e), KW_OK);
    assert_true(e.id > 0);
    assert_int_equal(kw_store_endpoint_insert(s, &e), KW_ERR_EXISTS);
    e.project_id = other;  /* the same name in another project is fine */
    assert_int_equal(kw_store_endpoint_insert(s, &e), KW_OK);
    kw_clock_set(2000);
    e.project_id = pid;
    snprintf(e.name, sizeof e.name, "second");
    e.created_by = 0;
    assert_int_equal(kw_store_endpoint_insert(s, &e), KW_OK);
    int64_t second = e.id;

    kw_endpoint got;
    assert_int_equal(kw_store_endpoint_get(s, pid, "daily-signups", &got), KW_OK);
    assert_string_equal(got.query, "{\"kind\":\"event_counts\"}");
    assert_string_equal(got.description, "d");
    assert_int_equal(got.created_by, uid);
    assert_int_equal(got.created_at, 1000);
    kw_endpoint_clear(&got);
    assert_int_equal(kw_store_endpoint_get(s, pid, "nope", &got), KW_ERR_NOTFOUND);

    int64_t n = 0;
    assert_int_equal(kw_store_endpoint_count(s, pid, &n), KW_OK);
    assert_int_equal(n, 2);
    struct seen seen = {0};
    assert_int_equal(kw_store_endpoint_list(s, pid, 10, 0, seen_endpoint, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ids[0], "second");  /* newest first */
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_endpoint_list(s, pid, 1, 1, seen_endpoint, &seen), KW_OK);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ids[0], "daily-signups");

    snprintf(e.name, sizeof e.name, "daily-signups");  /* rename onto a taken name */
    e.updated_at = 3000;
    assert_int_equal(kw_store_endpoint_update(s, &e), KW_ERR_EXISTS);
    snprintf(e.name, sizeof e.name, "renamed");
    e.description = "new";
    assert_int_equal(kw_store_endpoint_update(s, &e), KW_OK);
    assert_int_equal(kw_store_endpoint_get(s, pid, "renamed", &got), KW_OK);
    assert_string_equal(got.description, "new");
    assert_int_equal(got.updated_at, 3000);
    assert_int_equal(got.created_at, 2000);
    kw_endpoint_clear(&got);
    assert_int_equal(kw_store_endpoint_delete(s, other, second), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_endpoint_delete(s, pid, second), KW_OK);
    assert_int_equal(kw_store_endpoint_delete(s, pid, second), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_endpoint_count(s, pid, &n), KW_OK);
    assert_int_equal(n, 1);
    kw_clock_set(0);
}

/* ---- group types and project settings (what PostHog's SDKs read) -------- */

struct types_seen {
    int n;
    kw_group_type g[KW_GROUP_TYPES_MAX + 1];
};

static int collect_type(void *ctx, const kw_group_type *g)
{
    struct types_seen *t = ctx;
    if (t->n <= KW_GROUP_TYPES_MAX) t->g[t->n] = *g;
    t->n++;
    return 0;
}

/* Index in order of first sight, five at most, a name once; every write
 * is logged on the flags stream (the flag caches forget the project). */
static void test_group_types(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "gt@example.com");
    int64_t pid = make_project(s, uid, "phc_gt"), other = make_project(s, uid, "phc_gt2");
    int64_t g0, g1;
    assert_int_equal(kw_store_flags_generation(s, &g0), KW_OK);
    const char *names[] = {"company", "o'; DROP TABLE projects; --", "team", "Ünï", "t5"};
    for (int i = 0; i < 5; i++) assert_int_equal(kw_store_group_type_add(s, pid, names[i], 7), KW_OK);
    assert_int_equal(kw_store_flags_generation(s, &g1), KW_OK);
    assert_int_equal(g1, g0 + 5);
    assert_int_equal(kw_store_group_type_add(s, pid, "company", 8), KW_ERR_EXISTS);
    assert_int_equal(kw_store_group_type_add(s, pid, "sixth", 8), KW_ERR_LIMIT);
    assert_int_equal(kw_store_group_type_add(s, other, "team", 9), KW_OK);
    struct types_seen t = {0};
    assert_int_equal(kw_store_group_types(s, pid, collect_type, &t), KW_OK);
    assert_int_equal(t.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(t.g[i].index, i);
        assert_string_equal(t.g[i].group_type, names[i]);
        assert_string_equal(t.g[i].name_singular, "");
        assert_int_equal(t.g[i].created_at, 7);
    }
    assert_int_equal(kw_store_group_type_rename(s, pid, 1, "Org", ""), KW_OK);
    assert_int_equal(kw_store_group_type_rename(s, pid, 7, "x", "y"), KW_ERR_NOTFOUND);
    struct types_seen u = {0};
    assert_int_equal(kw_store_group_types(s, other, collect_type, &u), KW_OK);
    assert_int_equal(u.n, 1);
    assert_int_equal(u.g[0].index, 0);  /* indices are per project */
    t.n = 0;
    assert_int_equal(kw_store_group_types(s, pid, collect_type, &t), KW_OK);
    assert_string_equal(t.g[1].name_singular, "Org");
    assert_string_equal(t.g[1].name_plural, "");
}

/* Defaults are PostHog's; a negative member keeps the stored value. */
static void test_project_settings(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "ps@example.com");
    int64_t pid = make_project(s, uid, "phc_ps");
    kw_project_settings ps;
    assert_int_equal(kw_store_project_settings_get(s, pid, &ps), KW_OK);
    assert_int_equal(ps.autocapture_opt_out, 0);
    assert_int_equal(ps.capture_performance_opt_in, 1);
    assert_int_equal(ps.heatmaps_opt_in, 0);
    kw_project_settings set = {1, -1, 1};
    assert_int_equal(kw_store_project_settings_set(s, pid, &set), KW_OK);
    assert_int_equal(kw_store_project_settings_get(s, pid, &ps), KW_OK);
    assert_int_equal(ps.autocapture_opt_out, 1);
    assert_int_equal(ps.capture_performance_opt_in, 1);
    assert_int_equal(ps.heatmaps_opt_in, 1);
    kw_project_settings off = {-1, 0, -1};
    assert_int_equal(kw_store_project_settings_set(s, pid, &off), KW_OK);
    assert_int_equal(kw_store_project_settings_get(s, pid, &ps), KW_OK);
    assert_int_equal(ps.autocapture_opt_out + ps.capture_performance_opt_in * 2 + ps.heatmaps_opt_in * 4, 5);
    assert_int_equal(kw_store_project_settings_set(s, pid + 100, &off), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_project_settings_get(s, pid + 100, &ps), KW_ERR_NOTFOUND);
}

/* ---- runner -------------------------------------------------------------- */

#define CASES(setup)                                                          \
    {                                                                         \
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),        \
        cmocka_unit_test_setup_teardown(test_events_atomic, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_events_go_with_their_project, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_events_project_deleted_meanwhile, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_events_created_at, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_events_batch_text, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_events_chunk_edges, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_events_refused_row_in_later_chunk, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_endpoints, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_group_types, setup, teardown),   \
        cmocka_unit_test_setup_teardown(test_project_settings, setup, teardown), \
    }

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = CASES(setup_sqlite);
    int failed = cmocka_run_group_tests_name("store_events/sqlite", sqlite_tests, NULL, NULL);
    pg_admin_url = getenv("KEYWARD_TEST_PG_URL");
    if (!pg_admin_url || !*pg_admin_url) {
        printf("[  SKIPPED ] store_events/postgresql: KEYWARD_TEST_PG_URL is not set "
               "(start a server with scripts/pg-test-cluster start)\n");
        return failed;
    }
    const struct CMUnitTest pg_tests[] = CASES(setup_pg);
    failed += cmocka_run_group_tests_name("store_events/postgresql", pg_tests, NULL, NULL);
    return failed;
}
