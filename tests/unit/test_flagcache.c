/* test_flagcache.c — the per-project flag definitions cache: a hit touches
 * no store, a local bump or a write seen in the change log (by "another
 * process", made here straight through the store) rebuilds that project
 * only, sets outlive
 * their replacement while referenced, TTL, slot collisions, readers
 * racing writers, and regex patterns compiled once per version.  Runs on a temp SQLite file. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "keyward/flagcache.h"
#include "keyward/flags.h"
#include "keyward/keyward.h"
#include "keyward/store.h"

struct fixture {
    char path[256];
    kw_store *store;
    kw_flagcache *cache;
    int64_t project, other;
};

static int64_t make_project(kw_store *s, const char *token)
{
    kw_org o;
    memset(&o, 0, sizeof o);
    snprintf(o.name, sizeof o.name, "Org");
    assert_int_equal(kw_store_org_create(s, &o), KW_OK);
    kw_project p;
    memset(&p, 0, sizeof p);
    snprintf(p.org_id, sizeof p.org_id, "%s", o.id);
    snprintf(p.name, sizeof p.name, "Project");
    snprintf(p.api_token, sizeof p.api_token, "%s", token);
    assert_int_equal(kw_store_project_create(s, &p), KW_OK);
    return p.id;
}

/* A write as another process would make it: through the store only. */
static int64_t add_flag(kw_store *s, int64_t project, const char *key, int active)
{
    kw_flag f;
    memset(&f, 0, sizeof f);
    f.project_id = project;
    snprintf(f.key, sizeof f.key, "%s", key);
    snprintf(f.name, sizeof f.name, "Flag %s", key);
    f.filters = strdup("{\"groups\":[{\"properties\":[],\"rollout_percentage\":30}]}");
    f.active = active;
    int rc = kw_store_flag_insert(s, &f);
    kw_flag_clear(&f);
    assert_int_equal(rc, KW_OK);
    return f.id;
}

static int setup(void **state)
{
    static int counter;
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/kw-test-flagcache-%ld-%d.db", (long)getpid(), ++counter);
    kw_clock_set(0);
    if (kw_store_open(f->path, &f->store)) return -1;
    f->project = make_project(f->store, "phc_flagcache_one");
    f->other = make_project(f->store, "phc_flagcache_two");
    if (kw_flagcache_new(f->store, 64, 0, &f->cache)) return -1;
    kw_flagcache_poll(f->cache);  /* first sight of the store generation */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    kw_flagcache_free(f->cache);
    kw_store_close(f->store);
    char p[300];
    unlink(f->path);
    snprintf(p, sizeof p, "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->path);
    unlink(p);
    free(f);
    kw_clock_set(0);
    return 0;
}

static void assert_stats(kw_flagcache *c, uint64_t hits, uint64_t builds)
{
    uint64_t h, b;
    kw_flagcache_stats(c, &h, &b);
    assert_int_equal(h, hits);
    assert_int_equal(b, builds);
}

static void test_hit_needs_no_store(void **state)
{
    struct fixture *f = *state;
    add_flag(f->store, f->project, "beta", 1);
    add_flag(f->store, f->project, "alpha", 0);
    kw_flagcache_poll(f->cache);
    const kw_flagset *a, *b;
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &a), KW_OK);
    assert_stats(f->cache, 0, 1);
    /* ordered by key, inactive included, PostHog's document around them */
    assert_int_equal(json_array_size(a->flags), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a->flags, 0), "key")), "alpha");
    assert_true(json_is_false(json_object_get(json_array_get(a->flags, 0), "active")));
    assert_non_null(strstr(a->body, "\"group_type_mapping\":{}"));
    assert_int_equal(a->body_len, strlen(a->body));
    assert_int_equal(strlen(a->etag), 36);
    assert_memory_equal(a->etag, "W/\"", 3);
    /* The store is closed under the cache's feet: a hit cannot need it. */
    kw_store_close(f->store);
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &b), KW_OK);
    assert_ptr_equal(a, b);
    assert_stats(f->cache, 1, 1);
    assert_int_equal(kw_store_open(f->path, &f->store), KW_OK);  /* for teardown */
    kw_flagset_release(a);
    kw_flagset_release(b);
}

/* A set's regex patterns are compiled when it is built, once: hits and
 * evaluations compile nothing; a rebuild (a new version) compiles again. */
static void test_regexes_compiled_once_per_version(void **state)
{
    struct fixture *f = *state;
    kw_flag fl;
    memset(&fl, 0, sizeof fl);
    fl.project_id = f->project;
    snprintf(fl.key, sizeof fl.key, "rx");
    fl.filters = strdup("{\"groups\":[{\"properties\":[{\"key\":\"email\",\"operator\":"
                        "\"regex\",\"value\":\"@acme\\\\.com$\"},{\"key\":\"plan\","
                        "\"operator\":\"not_regex\",\"value\":\"^free\"}]}]}");
    fl.active = 1;
    assert_int_equal(kw_store_flag_insert(f->store, &fl), KW_OK);
    kw_flag_clear(&fl);
    kw_flagcache_poll(f->cache);
    uint64_t before = kw_flag_regex_compiles();
    const kw_flagset *s;
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    assert_non_null(s->regexes);
    assert_int_equal(kw_flag_regex_compiles() - before, 2);
    json_t *props = json_pack("{s:s, s:s}", "email", "ann@acme.com", "plan", "pro");
    for (int i = 0; i < 100; i++) {
        const kw_flagset *again;
        assert_int_equal(kw_flagcache_get(f->cache, f->project, &again), KW_OK);
        kw_flag_budget budget;
        kw_flag_budget_init(&budget);
        kw_flag_context ctx = {.distinct_id = "u", .person_properties = props,
                               .regexes = again->regexes, .budget = &budget};
        kw_flag_result r;
        assert_int_equal(kw_flag_evaluate(json_array_get(again->flags, 0), &ctx, &r), KW_OK);
        assert_true(r.enabled);
        kw_flagset_release(again);
    }
    assert_int_equal(kw_flag_regex_compiles() - before, 2);
    kw_flagcache_bump(f->cache);
    kw_flagset_release(s);
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    assert_int_equal(kw_flag_regex_compiles() - before, 4);
    kw_flagset_release(s);
    json_decref(props);
}

static void test_empty_project_and_isolation(void **state)
{
    struct fixture *f = *state;
    add_flag(f->store, f->project, "only-here", 1);
    kw_flagcache_poll(f->cache);
    const kw_flagset *s;
    assert_int_equal(kw_flagcache_get(f->cache, f->other, &s), KW_OK);
    assert_int_equal(json_array_size(s->flags), 0);
    assert_non_null(strstr(s->body, "\"flags\":[]"));
    kw_flagset_release(s);
}

static void test_local_bump_rebuilds(void **state)
{
    struct fixture *f = *state;
    add_flag(f->store, f->project, "one", 1);
    kw_flagcache_poll(f->cache);
    const kw_flagset *before, *after;
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &before), KW_OK);
    char etag[48];
    strcpy(etag, before->etag);
    add_flag(f->store, f->project, "two", 1);
    kw_flagcache_bump(f->cache);
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &after), KW_OK);
    assert_stats(f->cache, 0, 2);
    assert_int_equal(json_array_size(after->flags), 2);
    assert_string_not_equal(after->etag, etag);
    /* the replaced set is still whole while referenced */
    assert_int_equal(json_array_size(before->flags), 1);
    assert_string_equal(before->etag, etag);
    kw_flagset_release(before);
    kw_flagset_release(after);
    kw_flagcache_bump(NULL);  /* no-op */
}

static void test_outside_write_seen_at_poll(void **state)
{
    struct fixture *f = *state;
    const kw_flagset *s;
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    assert_int_equal(json_array_size(s->flags), 0);
    kw_flagset_release(s);
    add_flag(f->store, f->project, "outside", 1);  /* no bump: another process */
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    assert_int_equal(json_array_size(s->flags), 0);  /* stale until the poll */
    kw_flagset_release(s);
    kw_flagcache_poll(f->cache);
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    assert_int_equal(json_array_size(s->flags), 1);
    kw_flagset_release(s);
    /* an unchanged generation keeps the entry */
    kw_flagcache_poll(f->cache);
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_stats(f->cache, 2, 2);
}

/* A flag write forgets only its own project's set, whether this process
 * made it (after_write) or another one did (poll): the change log names
 * the project.  Both used to drop every project's set. */
static void test_write_forgets_only_its_project(void **state)
{
    struct fixture *f = *state;
    add_flag(f->store, f->project, "mine", 1);
    kw_flagcache_poll(f->cache);
    const kw_flagset *s;
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_int_equal(kw_flagcache_get(f->cache, f->other, &s), KW_OK);
    kw_flagset_release(s);
    assert_stats(f->cache, 0, 2);
    add_flag(f->store, f->other, "theirs", 1);  /* another process */
    kw_flagcache_poll(f->cache);
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_stats(f->cache, 1, 2);  /* untouched project: still a hit */
    assert_int_equal(kw_flagcache_get(f->cache, f->other, &s), KW_OK);
    assert_int_equal(json_array_size(s->flags), 1);
    kw_flagset_release(s);
    assert_stats(f->cache, 1, 3);  /* the written one: rebuilt */
    add_flag(f->store, f->other, "local", 1);
    kw_flagcache_after_write(f->cache);  /* as lib/flags/flag.c does after a commit */
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_int_equal(kw_flagcache_get(f->cache, f->other, &s), KW_OK);
    assert_int_equal(json_array_size(s->flags), 2);
    kw_flagset_release(s);
    assert_stats(f->cache, 2, 4);
    kw_flagcache_after_write(NULL);  /* no-op */
}

/* When the log cannot tell what changed — its rows were pruned before this
 * cache read them — every set is dropped: slower, never stale. */
static void test_pruned_log_drops_everything(void **state)
{
    struct fixture *f = *state;
    const kw_flagset *s;
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_int_equal(kw_flagcache_get(f->cache, f->other, &s), KW_OK);
    kw_flagset_release(s);
    add_flag(f->store, f->other, "unseen", 1);
    int64_t g;
    assert_int_equal(kw_store_flags_generation(f->store, &g), KW_OK);
    assert_int_equal(kw_store_changes_prune(f->store, KW_CHANGE_FLAGS, g), KW_OK);
    kw_flagcache_poll(f->cache);
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_int_equal(kw_flagcache_get(f->cache, f->other, &s), KW_OK);
    assert_int_equal(json_array_size(s->flags), 1);
    kw_flagset_release(s);
    assert_stats(f->cache, 0, 4);  /* both rebuilt */
}

static void test_deleted_flags_left_out(void **state)
{
    struct fixture *f = *state;
    int64_t id = add_flag(f->store, f->project, "gone", 1);
    kw_flag fl;
    assert_int_equal(kw_store_flag_get(f->store, f->project, id, &fl), KW_OK);
    fl.deleted = 1;
    assert_int_equal(kw_store_flag_update(f->store, &fl), KW_OK);
    kw_flag_clear(&fl);
    kw_flagcache_poll(f->cache);
    const kw_flagset *s;
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    assert_int_equal(json_array_size(s->flags), 0);
    kw_flagset_release(s);
}

static void test_ttl(void **state)
{
    struct fixture *f = *state;
    kw_flagcache *c;
    assert_int_equal(kw_flagcache_new(f->store, 16, 1000000, &c), KW_OK);
    kw_clock_set(10000000);
    const kw_flagset *s;
    assert_int_equal(kw_flagcache_get(c, f->project, &s), KW_OK);
    kw_flagset_release(s);
    kw_clock_set(10999999);
    assert_int_equal(kw_flagcache_get(c, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_stats(c, 1, 1);
    kw_clock_set(11000000);
    assert_int_equal(kw_flagcache_get(c, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_stats(c, 1, 2);
    kw_flagcache_free(c);
}

/* One slot for every project: neighbours evict each other but never see
 * each other's flags. */
static void test_collisions(void **state)
{
    struct fixture *f = *state;
    kw_flagcache *c;
    assert_int_equal(kw_flagcache_new(f->store, 1, 0, &c), KW_OK);
    /* 16 shards of one slot: projects 16 ids apart share a slot. */
    int64_t last = f->other;
    for (int i = 0; i < 20; i++) {
        char token[64];
        snprintf(token, sizeof token, "phc_flagcache_more_%d", i);
        last = make_project(f->store, token);
    }
    for (int64_t p = f->project; p <= last; p++) add_flag(f->store, p, "k", 1);
    add_flag(f->store, f->project, "first-only", 1);
    for (int round = 0; round < 3; round++)
        for (int64_t p = f->project; p <= last; p++) {
            const kw_flagset *s;
            assert_int_equal(kw_flagcache_get(c, p, &s), KW_OK);
            assert_int_equal(s->project_id, p);
            assert_int_equal(json_array_size(s->flags), p == f->project ? 2 : 1);
            kw_flagset_release(s);
        }
    uint64_t hits, builds;
    kw_flagcache_stats(c, &hits, &builds);
    assert_true(builds > (uint64_t)(last - f->project + 1));  /* evictions happened */
    assert_true(hits > 0);                                    /* and so did hits */
    kw_flagcache_free(c);
}

struct race {
    kw_flagcache *cache;
    int64_t project;
    int stop;
    int errors;
};

static void *reader(void *arg)
{
    struct race *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        const kw_flagset *s;
        if (kw_flagcache_get(r->cache, r->project, &s)) {
            __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
            continue;
        }
        /* read everything a handler would read */
        if (strlen(s->body) != s->body_len || s->project_id != r->project)
            __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
        kw_flagset_release(s);
    }
    return NULL;
}

static void test_readers_race_bumps(void **state)
{
    struct fixture *f = *state;
    add_flag(f->store, f->project, "raced", 1);
    kw_flagcache_poll(f->cache);
    struct race r = {f->cache, f->project, 0, 0};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, reader, &r);
    for (int i = 0; i < 200; i++) {
        kw_flagcache_bump(f->cache);
        usleep(200);
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    assert_int_equal(r.errors, 0);
}

/* Renames the generation table under the store's feet (raw SQLite, as a
 * broken database would look to the cache): polls fail until put back. */
static void break_generation(const char *path, int broken)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, broken ? "ALTER TABLE kw_meta RENAME TO kw_meta_gone"
                                             : "ALTER TABLE kw_meta_gone RENAME TO kw_meta",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
}

/* The store unreachable at a poll: sets survive (served from memory) for
 * the grace period after the last good poll, then are refused; a good poll
 * trusts them again.  It used to drop everything at the first failure. */
static void test_outage_keeps_sets_within_grace(void **state)
{
    struct fixture *f = *state;
    add_flag(f->store, f->project, "kept", 1);
    kw_flagcache_set_grace(f->cache, 3000000);
    kw_clock_set(100000000);
    kw_flagcache_poll(f->cache);
    const kw_flagset *s;
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_stats(f->cache, 0, 1);

    break_generation(f->path, 1);
    kw_clock_set(101000000);
    kw_flagcache_poll(f->cache);  /* fails */
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    assert_int_equal(json_array_size(s->flags), 1);
    kw_flagset_release(s);
    assert_stats(f->cache, 1, 1);  /* a hit, not a rebuild */
    kw_clock_set(103000000);       /* exactly the grace after the last good poll */
    kw_flagcache_poll(f->cache);
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_stats(f->cache, 2, 1);
    kw_clock_set(103000001);  /* past it: not served from memory any more */
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    kw_flagset_release(s);
    assert_stats(f->cache, 2, 2);  /* rebuilt (this store can still list flags) */

    break_generation(f->path, 0);
    kw_flagcache_poll(f->cache);  /* back */
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &s), KW_OK);
    kw_flagset_release(s);
    uint64_t hits, builds;
    kw_flagcache_stats(f->cache, &hits, &builds);
    assert_int_equal(hits, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hit_needs_no_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_project_and_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regexes_compiled_once_per_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_bump_rebuilds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_forgets_only_its_project, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pruned_log_drops_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outside_write_seen_at_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_flags_left_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_race_bumps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_keeps_sets_within_grace, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
