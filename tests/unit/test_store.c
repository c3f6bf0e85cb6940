/* test_store.c — the store conformance suite.
 *
 * The same checks run against every backend: SQLite (a temp file) always,
 * and PostgreSQL when KEYWARD_TEST_PG_URL points at a server the suite may
 * create databases on (scripts/pg-test-cluster starts a throwaway one).
 * Each test gets a fresh store: a new SQLite file, or a new PostgreSQL
 * database named after the pid and a counter, dropped afterwards, so runs
 * never collide.  The clock is pinned where times matter. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* strdup, nanosleep, getpid under -std=c11 */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyward/keyward.h"
#include "keyward/store.h"

enum backend { BACKEND_SQLITE, BACKEND_PG };

struct fixture {
    enum backend backend;
    char url[1024];
    char path[256];    /* sqlite: the file */
    char dbname[64];   /* pg: the database */
    kw_store *store;
};

static const char *pg_admin_url;
static int db_counter;

/* pg URL with the database part replaced: scheme://authority/DB?params */
static int pg_url_for(const char *admin, const char *db, char *out, size_t size)
{
    const char *auth = strstr(admin, "://");
    if (!auth) return -1;
    auth += 3;
    const char *q = strchr(auth, '?');
    const char *slash = strchr(auth, '/');
    if (slash && q && slash > q) slash = NULL;
    size_t head = (size_t)((slash ? slash : q ? q : auth + strlen(auth)) - admin);
    int n = snprintf(out, size, "%.*s/%s%s", (int)head, admin, db, q ? q : "");
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int pg_admin(const char *sql)
{
    PGconn *db = PQconnectdb(pg_admin_url);
    int ok = PQstatus(db) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(db, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) fprintf(stderr, "test_store: %s: %s", sql, PQerrorMessage(db));
        PQclear(r);
    } else {
        fprintf(stderr, "test_store: cannot connect: %s", PQerrorMessage(db));
    }
    PQfinish(db);
    return ok ? 0 : -1;
}

static int open_store(struct fixture *f)
{
    return kw_store_open(f->url, &f->store);
}

static int setup_sqlite(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->backend = BACKEND_SQLITE;
    snprintf(f->path, sizeof f->path, "/tmp/kw-test-store-%ld-%d.db", (long)getpid(), ++db_counter);
    snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
    kw_clock_set(0);
    if (open_store(f)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_pg(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->backend = BACKEND_PG;
    char sql[128];
    snprintf(f->dbname, sizeof f->dbname, "kwtest_%ld_%d", (long)getpid(), ++db_counter);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", f->dbname);
    kw_clock_set(0);
    if (pg_url_for(pg_admin_url, f->dbname, f->url, sizeof f->url) || pg_admin(sql)) {
        free(f);
        return -1;
    }
    int rc = open_store(f);
    if (rc) {
        fprintf(stderr, "test_store: open %s: %s\n", f->url, kw_strerror(rc));
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    kw_store_close(f->store);
    kw_clock_set(0);
    if (f->backend == BACKEND_SQLITE) {
        char p[300];
        unlink(f->path);
        snprintf(p, sizeof p, "%s-wal", f->path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", f->path);
        unlink(p);
    } else {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
        pg_admin(sql);
    }
    free(f);
    return 0;
}

#define STORE(state) (((struct fixture *)*(state))->store)

/* ---- helpers ------------------------------------------------------------- */

static int64_t make_user(kw_store *s, const char *email)
{
    kw_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.email, sizeof u.email, "%s", email);
    snprintf(u.first_name, sizeof u.first_name, "Name");
    u.is_active = 1;
    assert_int_equal(kw_store_user_create(s, &u), KW_OK);
    assert_true(u.id > 0);
    return u.id;
}

static void make_pkey(kw_pkey *k, const char *id, int64_t user_id, const char *secure, kw_time at)
{
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", id);
    k->user_id = user_id;
    snprintf(k->label, sizeof k->label, "label %s", id);
    snprintf(k->secure_value, sizeof k->secure_value, "%s", secure);
    snprintf(k->mask_value, sizeof k->mask_value, "phx_...%.4s", id);
    k->created_at = at;
    snprintf(k->scopes, sizeof k->scopes, "[\"*\"]");
}

static int64_t make_project(kw_store *s, int64_t user_id, const char *token)
{
    kw_org o;
    memset(&o, 0, sizeof o);
    snprintf(o.name, sizeof o.name, "Org");
    assert_int_equal(kw_store_org_create(s, &o), KW_OK);
    assert_int_equal(kw_store_membership_set(s, user_id, o.id, KW_LEVEL_OWNER), KW_OK);
    kw_project p;
    memset(&p, 0, sizeof p);
    snprintf(p.org_id, sizeof p.org_id, "%s", o.id);
    snprintf(p.name, sizeof p.name, "Project");
    snprintf(p.api_token, sizeof p.api_token, "%s", token);
    assert_int_equal(kw_store_project_create(s, &p), KW_OK);
    return p.id;
}

/* Collects ids (text) or ints from list callbacks, in order. */
struct seen {
    int n;
    char ids[32][KW_NAME_MAX + 1];
    int64_t nums[32];
    int stop_after;  /* > 0: return 1 from the callback after this many */
};

static int seen_pkey(void *ctx, const kw_pkey *k)
{
    struct seen *s = ctx;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", k->id);
    s->n++;
    return s->stop_after && s->n >= s->stop_after;
}

static int seen_flag(void *ctx, const kw_flag *f)
{
    struct seen *s = ctx;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", f->key);
    s->nums[s->n++] = f->id;
    return 0;
}

static int seen_activity(void *ctx, const kw_activity *a)
{
    struct seen *s = ctx;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", a->id);
    s->nums[s->n++] = a->created_at;
    return 0;
}

static int seen_org(void *ctx, const kw_org *o, int level)
{
    struct seen *s = ctx;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", o->id);
    s->nums[s->n++] = level;
    return 0;
}

static int seen_project(void *ctx, const kw_project *p)
{
    struct seen *s = ctx;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", p->api_token);
    s->nums[s->n++] = p->id;
    return 0;
}

/* ---- schema -------------------------------------------------------------- */

static void test_migrations_idempotent(void **state)
{
    struct fixture *f = *state;
    int v1 = 0, v2 = 0;
    assert_int_equal(kw_store_schema_version(f->store, &v1), KW_OK);
    assert_true(v1 >= 1);
    make_user(f->store, "keep@example.com");
    kw_store_close(f->store);
    /* Opening again applies nothing and keeps the data. */
    assert_int_equal(open_store(f), KW_OK);
    assert_int_equal(kw_store_schema_version(f->store, &v2), KW_OK);
    assert_int_equal(v1, v2);
    /* A second store on the same database at the same time is fine too. */
    kw_store *other;
    assert_int_equal(kw_store_open(f->url, &other), KW_OK);
    int64_t n = 0;
    assert_int_equal(kw_store_user_count(other, &n), KW_OK);
    assert_int_equal(n, 1);
    kw_store_close(other);
    assert_string_equal(kw_store_backend(f->store), f->backend == BACKEND_PG ? "postgresql" : "sqlite");
}

/* ---- users, orgs, projects ------------------------------------------------ */

static void test_users(void **state)
{
    kw_store *s = STORE(state);
    int64_t n = -1;
    assert_int_equal(kw_store_user_count(s, &n), KW_OK);
    assert_int_equal(n, 0);
    int64_t id = make_user(s, "ada@example.com");
    kw_user u;
    assert_int_equal(kw_store_user_get(s, id, &u), KW_OK);
    assert_string_equal(u.email, "ada@example.com");
    assert_string_equal(u.first_name, "Name");
    assert_int_equal(u.is_active, 1);
    assert_int_equal(strlen(u.uuid), KW_ID_LEN);
    assert_true(u.created_at > 0);
    kw_user by;
    assert_int_equal(kw_store_user_by_email(s, "ada@example.com", &by), KW_OK);
    assert_int_equal(by.id, id);
    assert_string_equal(by.uuid, u.uuid);
    assert_int_equal(kw_store_user_by_email(s, "nobody@example.com", &by), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_user_get(s, id + 1000, &by), KW_ERR_NOTFOUND);

    kw_user dup;
    memset(&dup, 0, sizeof dup);
    snprintf(dup.email, sizeof dup.email, "ada@example.com");
    assert_int_equal(kw_store_user_create(s, &dup), KW_ERR_EXISTS);

    assert_int_equal(kw_store_user_set_active(s, id, 0), KW_OK);
    assert_int_equal(kw_store_user_get(s, id, &u), KW_OK);
    assert_int_equal(u.is_active, 0);
    assert_int_equal(kw_store_user_set_active(s, id + 1000, 1), KW_ERR_NOTFOUND);
    int64_t id2 = make_user(s, "bob@example.com");
    assert_true(id2 != id);
    assert_int_equal(kw_store_user_count(s, &n), KW_OK);
    assert_int_equal(n, 2);
}

static void test_orgs_memberships(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "m@example.com");
    kw_org a, b, got;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    snprintf(a.name, sizeof a.name, "Alpha");
    snprintf(b.name, sizeof b.name, "Beta");
    kw_clock_set(1000000);
    assert_int_equal(kw_store_org_create(s, &a), KW_OK);
    kw_clock_set(2000000);
    assert_int_equal(kw_store_org_create(s, &b), KW_OK);
    assert_int_equal(kw_store_org_get(s, a.id, &got), KW_OK);
    assert_string_equal(got.name, "Alpha");
    assert_int_equal(got.created_at, 1000000);
    assert_int_equal(kw_store_org_get(s, "00000000-0000-4000-8000-000000000000", &got),
                     KW_ERR_NOTFOUND);

    int level = 0;
    assert_int_equal(kw_store_membership_level(s, uid, a.id, &level), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_membership_set(s, uid, b.id, KW_LEVEL_MEMBER), KW_OK);
    assert_int_equal(kw_store_membership_set(s, uid, a.id, KW_LEVEL_MEMBER), KW_OK);
    assert_int_equal(kw_store_membership_set(s, uid, a.id, KW_LEVEL_ADMIN), KW_OK);  /* upsert */
    assert_int_equal(kw_store_membership_level(s, uid, a.id, &level), KW_OK);
    assert_int_equal(level, KW_LEVEL_ADMIN);

    struct seen seen = {0};
    assert_int_equal(kw_store_user_orgs(s, uid, seen_org, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ids[0], a.id);  /* by created_at */
    assert_int_equal(seen.nums[0], KW_LEVEL_ADMIN);
    assert_string_equal(seen.ids[1], b.id);
    assert_int_equal(seen.nums[1], KW_LEVEL_MEMBER);
}

static void test_projects(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "p@example.com");
    int64_t other = make_user(s, "q@example.com");
    int64_t p1 = make_project(s, uid, "phc_one");
    int64_t p2 = make_project(s, uid, "phc_two");
    make_project(s, other, "phc_three");
    assert_true(p2 > p1);

    kw_project p;
    assert_int_equal(kw_store_project_get(s, p1, &p), KW_OK);
    assert_string_equal(p.api_token, "phc_one");
    assert_string_equal(p.name, "Project");
    assert_int_equal(strlen(p.uuid), KW_ID_LEN);
    assert_int_equal(kw_store_project_by_token(s, "phc_two", &p), KW_OK);
    assert_int_equal(p.id, p2);
    assert_int_equal(kw_store_project_by_token(s, "phc_none", &p), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_project_get(s, p2 + 100, &p), KW_ERR_NOTFOUND);

    struct seen seen = {0};
    assert_int_equal(kw_store_user_projects(s, uid, seen_project, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.nums[0], p1);
    assert_int_equal(seen.nums[1], p2);

    assert_int_equal(kw_store_project_set_token(s, p1, "phc_new"), KW_OK);
    assert_int_equal(kw_store_project_by_token(s, "phc_new", &p), KW_OK);
    assert_int_equal(p.id, p1);
    assert_int_equal(kw_store_project_set_token(s, p1, "phc_two"), KW_ERR_EXISTS);
    assert_int_equal(kw_store_project_set_token(s, p2 + 100, "phc_x"), KW_ERR_NOTFOUND);
}

/* ---- personal API keys --------------------------------------------------- */

static void test_pkey_crud(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "k@example.com");
    int64_t other = make_user(s, "o@example.com");
    kw_pkey k;
    make_pkey(&k, "key-a", uid, "sha256$aaa", 1000);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    make_pkey(&k, "key-c", uid, "sha256$ccc", 3000);
    k.scoped_teams[0] = '\0';
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    make_pkey(&k, "key-b", uid, "sha256$bbb", 3000);  /* same time as key-c: id breaks the tie */
    snprintf(k.scoped_teams, sizeof k.scoped_teams, "[1,2]");
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    make_pkey(&k, "key-o", other, "sha256$ooo", 5000);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);

    kw_pkey got;
    assert_int_equal(kw_store_pkey_get(s, uid, "key-b", &got), KW_OK);
    assert_string_equal(got.label, "label key-b");
    assert_string_equal(got.secure_value, "sha256$bbb");
    assert_string_equal(got.mask_value, "phx_...key-");
    assert_string_equal(got.scopes, "[\"*\"]");
    assert_string_equal(got.scoped_teams, "[1,2]");
    assert_string_equal(got.scoped_orgs, "");
    assert_int_equal(got.created_at, 3000);
    assert_int_equal(got.last_used_at, 0);
    assert_int_equal(got.last_rolled_at, 0);
    /* Another user's key is not found through this user. */
    assert_int_equal(kw_store_pkey_get(s, uid, "key-o", &got), KW_ERR_NOTFOUND);

    struct seen seen = {0};
    assert_int_equal(kw_store_pkey_list(s, uid, seen_pkey, &seen), KW_OK);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.ids[0], "key-c");
    assert_string_equal(seen.ids[1], "key-b");
    assert_string_equal(seen.ids[2], "key-a");
    /* A callback's non-zero return stops the walk and is returned. */
    struct seen first = {.stop_after = 1};
    assert_int_equal(kw_store_pkey_list(s, uid, seen_pkey, &first), 1);
    assert_int_equal(first.n, 1);

    /* update: label, scopes, scoped_*; "" means NULL */
    assert_int_equal(kw_store_pkey_get(s, uid, "key-a", &got), KW_OK);
    snprintf(got.label, sizeof got.label, "renamed");
    got.scopes[0] = '\0';
    snprintf(got.scoped_orgs, sizeof got.scoped_orgs, "[\"o1\"]");
    assert_int_equal(kw_store_pkey_update(s, &got), KW_OK);
    assert_int_equal(kw_store_pkey_get(s, uid, "key-a", &got), KW_OK);
    assert_string_equal(got.label, "renamed");
    assert_string_equal(got.scopes, "");
    assert_string_equal(got.scoped_orgs, "[\"o1\"]");
    got.user_id = other;
    assert_int_equal(kw_store_pkey_update(s, &got), KW_ERR_NOTFOUND);

    /* roll: new hash and mask, old hash no longer verifies */
    assert_int_equal(kw_store_pkey_roll(s, uid, "key-a", "sha256$zzz", "phx_...zzzz", 7000), KW_OK);
    assert_int_equal(kw_store_pkey_by_hash(s, "sha256$aaa", &got), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_pkey_by_hash(s, "sha256$zzz", &got), KW_OK);
    assert_string_equal(got.id, "key-a");
    assert_int_equal(got.user_id, uid);
    assert_string_equal(got.mask_value, "phx_...zzzz");
    assert_int_equal(got.last_rolled_at, 7000);
    assert_int_equal(kw_store_pkey_roll(s, other, "key-a", "sha256$yyy", "m", 8000), KW_ERR_NOTFOUND);
    /* rolling onto another key's hash violates the unique index */
    assert_int_equal(kw_store_pkey_roll(s, uid, "key-a", "sha256$bbb", "m", 8000), KW_ERR_EXISTS);

    /* delete */
    assert_int_equal(kw_store_pkey_delete(s, other, "key-a"), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_pkey_delete(s, uid, "key-a"), KW_OK);
    assert_int_equal(kw_store_pkey_delete(s, uid, "key-a"), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_pkey_by_hash(s, "sha256$zzz", &got), KW_ERR_NOTFOUND);
}

static void test_pkey_unique_secure_value(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "u@example.com");
    kw_pkey k;
    make_pkey(&k, "key-1", uid, "sha256$same", 1);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    make_pkey(&k, "key-2", uid, "sha256$same", 2);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_ERR_EXISTS);
    make_pkey(&k, "key-1", uid, "sha256$other", 2);  /* duplicate id */
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_ERR_EXISTS);
}

static void test_pkey_touch(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "t@example.com");
    kw_pkey k, got;
    make_pkey(&k, "key-t", uid, "sha256$ttt", 1);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    const kw_time interval = 60000000;
    assert_int_equal(kw_store_pkey_touch(s, "key-t", 100000000, interval), KW_OK);
    assert_int_equal(kw_store_pkey_get(s, uid, "key-t", &got), KW_OK);
    assert_int_equal(got.last_used_at, 100000000);
    /* within the interval: no write */
    assert_int_equal(kw_store_pkey_touch(s, "key-t", 100000000 + interval - 1, interval), KW_OK);
    assert_int_equal(kw_store_pkey_get(s, uid, "key-t", &got), KW_OK);
    assert_int_equal(got.last_used_at, 100000000);
    /* once the interval has passed: written */
    assert_int_equal(kw_store_pkey_touch(s, "key-t", 100000000 + interval, interval), KW_OK);
    assert_int_equal(kw_store_pkey_get(s, uid, "key-t", &got), KW_OK);
    assert_int_equal(got.last_used_at, 100000000 + interval);
    /* unknown key: nothing to do, not an error */
    assert_int_equal(kw_store_pkey_touch(s, "key-none", 1, interval), KW_OK);
}

static void test_pkey_rehash(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "r@example.com");
    kw_pkey k, got;
    make_pkey(&k, "key-l", uid, "pbkdf2_sha256$260000$salt$hash", 1);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    make_pkey(&k, "key-m", uid, "sha256$modern", 2);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    int64_t n = -1;
    assert_int_equal(kw_store_pkey_legacy_count(s, &n), KW_OK);
    assert_int_equal(n, 1);
    /* only if still the old value */
    assert_int_equal(kw_store_pkey_rehash(s, "key-l", "pbkdf2_sha256$wrong", "sha256$new"), KW_OK);
    assert_int_equal(kw_store_pkey_get(s, uid, "key-l", &got), KW_OK);
    assert_string_equal(got.secure_value, "pbkdf2_sha256$260000$salt$hash");
    assert_int_equal(kw_store_pkey_rehash(s, "key-l", "pbkdf2_sha256$260000$salt$hash", "sha256$new"),
                     KW_OK);
    assert_int_equal(kw_store_pkey_by_hash(s, "sha256$new", &got), KW_OK);
    assert_string_equal(got.id, "key-l");
    assert_int_equal(kw_store_pkey_legacy_count(s, &n), KW_OK);
    assert_int_equal(n, 0);
}

static void test_pkey_limit(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "l@example.com");
    int64_t other = make_user(s, "l2@example.com");
    kw_pkey k;
    char id[32], sv[64];
    for (int i = 0; i < KW_MAX_PERSONAL_KEYS; i++) {
        snprintf(id, sizeof id, "key-%d", i);
        snprintf(sv, sizeof sv, "sha256$%d", i);
        make_pkey(&k, id, uid, sv, i + 1);
        assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    }
    make_pkey(&k, "key-over", uid, "sha256$over", 100);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_ERR_LIMIT);
    /* the limit is per user */
    make_pkey(&k, "key-other", other, "sha256$other", 100);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    /* freeing a slot allows one more */
    assert_int_equal(kw_store_pkey_delete(s, uid, "key-3"), KW_OK);
    make_pkey(&k, "key-over", uid, "sha256$over", 100);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    make_pkey(&k, "key-over2", uid, "sha256$over2", 100);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_ERR_LIMIT);
}

/* Several threads (each on its own connection) race to create keys for one
 * user: exactly max_per_user succeed. */
struct race {
    kw_store *store;
    int64_t user_id;
    int thread;
    int ok, limit, other;
};

static void *race_thread(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < 5; i++) {
        kw_pkey k;
        char id[32], sv[64];
        snprintf(id, sizeof id, "race-%d-%d", r->thread, i);
        snprintf(sv, sizeof sv, "sha256$race-%d-%d", r->thread, i);
        make_pkey(&k, id, r->user_id, sv, 1000 + i);
        int rc = kw_store_pkey_insert(r->store, &k, KW_MAX_PERSONAL_KEYS);
        if (rc == KW_OK)
            r->ok++;
        else if (rc == KW_ERR_LIMIT)
            r->limit++;
        else
            r->other++;
    }
    return NULL;
}

static void test_pkey_limit_concurrent(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "race@example.com");
    enum { THREADS = 4 };
    pthread_t t[THREADS];
    struct race r[THREADS];
    for (int i = 0; i < THREADS; i++) {
        r[i] = (struct race){.store = s, .user_id = uid, .thread = i};
        assert_int_equal(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
    }
    int ok = 0, limit = 0, other = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += r[i].ok;
        limit += r[i].limit;
        other += r[i].other;
    }
    assert_int_equal(other, 0);
    assert_int_equal(ok, KW_MAX_PERSONAL_KEYS);
    assert_int_equal(limit, THREADS * 5 - KW_MAX_PERSONAL_KEYS);
    struct seen seen = {0};
    assert_int_equal(kw_store_pkey_list(s, uid, seen_pkey, &seen), KW_OK);
    assert_int_equal(seen.n, KW_MAX_PERSONAL_KEYS);
}

/* ---- feature flags ------------------------------------------------------- */

static int64_t add_flag(kw_store *s, int64_t project_id, const char *key, int64_t created_by)
{
    kw_flag f;
    memset(&f, 0, sizeof f);
    f.project_id = project_id;
    snprintf(f.key, sizeof f.key, "%s", key);
    snprintf(f.name, sizeof f.name, "Flag %s", key);
    f.filters = strdup("{\"groups\":[]}");
    f.active = 1;
    f.created_by = created_by;
    int rc = kw_store_flag_insert(s, &f);
    kw_flag_clear(&f);
    if (rc) return rc;
    assert_int_equal(f.version, 1);
    return f.id;
}

static void test_flags(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "f@example.com");
    int64_t pid = make_project(s, uid, "phc_flags");
    int64_t pid2 = make_project(s, uid, "phc_flags2");
    kw_clock_set(1000);
    int64_t beta = add_flag(s, pid, "beta", uid);
    kw_clock_set(2000);
    int64_t alpha = add_flag(s, pid, "alpha", 0);
    kw_clock_set(3000);
    int64_t gamma = add_flag(s, pid, "gamma", 0);
    assert_true(beta > 0 && alpha > 0 && gamma > 0);
    /* a duplicate live key is refused; the same key in another project is fine */
    assert_int_equal(add_flag(s, pid, "beta", 0), KW_ERR_EXISTS);
    assert_true(add_flag(s, pid2, "beta", 0) > 0);

    kw_flag f;
    assert_int_equal(kw_store_flag_get(s, pid, beta, &f), KW_OK);
    assert_string_equal(f.key, "beta");
    assert_string_equal(f.name, "Flag beta");
    assert_string_equal(f.filters, "{\"groups\":[]}");
    assert_int_equal(f.active, 1);
    assert_int_equal(f.deleted, 0);
    assert_int_equal(f.ensure_experience_continuity, 0);
    assert_int_equal(f.version, 1);
    assert_int_equal(f.created_by, uid);
    assert_int_equal(f.created_at, 1000);
    assert_int_equal(f.updated_at, 1000);
    kw_flag_clear(&f);
    assert_int_equal(kw_store_flag_get(s, pid2, beta, &f), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_flag_get(s, pid, alpha, &f), KW_OK);
    assert_int_equal(f.created_by, 0);

    /* update bumps version and updated_at */
    kw_clock_set(4000);
    f.active = 0;
    f.ensure_experience_continuity = 1;
    snprintf(f.name, sizeof f.name, "Alpha!");
    assert_int_equal(kw_store_flag_update(s, &f), KW_OK);
    assert_int_equal(f.version, 2);
    kw_flag_clear(&f);
    assert_int_equal(kw_store_flag_get(s, pid, alpha, &f), KW_OK);
    assert_int_equal(f.version, 2);
    assert_int_equal(f.updated_at, 4000);
    assert_int_equal(f.created_at, 2000);
    assert_int_equal(f.active, 0);
    assert_int_equal(f.ensure_experience_continuity, 1);
    assert_string_equal(f.name, "Alpha!");
    /* renaming onto a live key is refused */
    snprintf(f.key, sizeof f.key, "gamma");
    assert_int_equal(kw_store_flag_update(s, &f), KW_ERR_EXISTS);
    kw_flag_clear(&f);

    /* soft delete frees the key */
    assert_int_equal(kw_store_flag_get(s, pid, beta, &f), KW_OK);
    f.deleted = 1;
    assert_int_equal(kw_store_flag_update(s, &f), KW_OK);
    kw_flag_clear(&f);
    kw_clock_set(5000);
    int64_t beta2 = add_flag(s, pid, "beta", 0);
    assert_true(beta2 > 0 && beta2 != beta);

    struct seen seen = {0};
    assert_int_equal(kw_store_flag_list(s, pid, KW_FLAG_NEWEST_FIRST, 0, seen_flag, &seen), KW_OK);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.nums[0], beta2);
    assert_int_equal(seen.nums[1], gamma);
    assert_int_equal(seen.nums[2], alpha);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_flag_list(s, pid, KW_FLAG_BY_KEY, 1, seen_flag, &seen), KW_OK);
    assert_int_equal(seen.n, 4);
    assert_string_equal(seen.ids[0], "alpha");
    assert_int_equal(seen.nums[1], beta);   /* deleted beta: lower id first */
    assert_int_equal(seen.nums[2], beta2);
    assert_string_equal(seen.ids[3], "gamma");

    kw_flag missing;
    memset(&missing, 0, sizeof missing);
    missing.project_id = pid;
    missing.id = gamma + 1000;
    snprintf(missing.key, sizeof missing.key, "nope");
    assert_int_equal(kw_store_flag_update(s, &missing), KW_ERR_NOTFOUND);
}

/* Flag writes bump the flags generation and a project token change (or
 * deletion) bumps the auth generation, whoever writes: the triggers of
 * migration 4.  Other writes leave the flags generation alone. */
static void test_flags_generation(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "g@example.com");
    int64_t pid = make_project(s, uid, "phc_generation");
    int64_t g0, g1, g2, g3, a0, a1;
    assert_int_equal(kw_store_flags_generation(s, &g0), KW_OK);
    int64_t id = add_flag(s, pid, "gen", uid);
    assert_true(id > 0);
    assert_int_equal(kw_store_flags_generation(s, &g1), KW_OK);
    assert_true(g1 > g0);
    kw_flag f;
    assert_int_equal(kw_store_flag_get(s, pid, id, &f), KW_OK);
    f.active = 0;
    assert_int_equal(kw_store_flag_update(s, &f), KW_OK);
    kw_flag_clear(&f);
    assert_int_equal(kw_store_flags_generation(s, &g2), KW_OK);
    assert_true(g2 > g1);
    make_user(s, "other@example.com");
    assert_int_equal(kw_store_flags_generation(s, &g3), KW_OK);
    assert_int_equal(g3, g2);

    assert_int_equal(kw_store_auth_generation(s, &a0), KW_OK);
    assert_int_equal(kw_store_project_set_token(s, pid, "phc_generation2"), KW_OK);
    assert_int_equal(kw_store_auth_generation(s, &a1), KW_OK);
    assert_true(a1 > a0);
}

/* ---- activity log -------------------------------------------------------- */

static void add_activity(kw_store *s, const char *id, int64_t project_id, int64_t user_id,
                         const char *scope, const char *item_id, kw_time at)
{
    kw_activity a;
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "%s", id);
    a.project_id = project_id;
    a.user_id = user_id;
    snprintf(a.activity, sizeof a.activity, "created");
    snprintf(a.scope, sizeof a.scope, "%s", scope);
    if (item_id) snprintf(a.item_id, sizeof a.item_id, "%s", item_id);
    a.detail = strdup("{\"name\":\"x\"}");
    snprintf(a.ip_address, sizeof a.ip_address, "127.0.0.1");
    a.created_at = at;
    assert_int_equal(kw_store_activity_insert(s, &a), KW_OK);
    kw_activity_clear(&a);
}

static void test_activity(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "a@example.com");
    int64_t u2 = make_user(s, "a2@example.com");
    int64_t pid = make_project(s, uid, "phc_act");
    add_activity(s, "a1", pid, uid, "FeatureFlag", "1", 100);
    add_activity(s, "a2", pid, u2, "PersonalAPIKey", "k1", 200);
    add_activity(s, "a3", pid, uid, "FeatureFlag", "2", 300);
    add_activity(s, "a4", pid, 0, "Project", NULL, 300);  /* same time as a3 */
    add_activity(s, "a5", pid, uid, "FeatureFlag", "1", 400);
    add_activity(s, "a6", pid + 1, uid, "FeatureFlag", "1", 500);  /* other project */

    /* id filled when empty */
    kw_activity a;
    memset(&a, 0, sizeof a);
    snprintf(a.activity, sizeof a.activity, "deleted");
    snprintf(a.scope, sizeof a.scope, "Other");
    a.project_id = pid + 2;
    assert_int_equal(kw_store_activity_insert(s, &a), KW_OK);
    assert_int_equal(strlen(a.id), KW_ID_LEN);
    assert_true(a.created_at > 0);

    kw_activity_query q = {.project_id = pid};
    struct seen seen = {0};
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 5);
    const char *desc[] = {"a5", "a4", "a3", "a2", "a1"};
    for (int i = 0; i < 5; i++) assert_string_equal(seen.ids[i], desc[i]);
    int64_t n = 0;
    assert_int_equal(kw_store_activity_count(s, &q, &n), KW_OK);
    assert_int_equal(n, 5);

    /* entry contents */
    q.item_id = "k1";
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ids[0], "a2");
    assert_int_equal(seen.nums[0], 200);
    q.item_id = NULL;

    /* scopes */
    const char *const scopes[] = {"PersonalAPIKey", "Project", NULL};
    q.scopes = scopes;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ids[0], "a4");
    assert_string_equal(seen.ids[1], "a2");
    assert_int_equal(kw_store_activity_count(s, &q, &n), KW_OK);
    assert_int_equal(n, 2);
    q.scopes = NULL;

    /* user + item */
    q.user_id = uid;
    q.item_id = "1";
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ids[0], "a5");
    assert_string_equal(seen.ids[1], "a1");
    assert_int_equal(kw_store_activity_count(s, &q, &n), KW_OK);
    assert_int_equal(n, 2);
    q.user_id = 0;
    q.item_id = NULL;

    /* cursor: strictly before (300, "a4") -> a3 (same time, smaller id), a2, a1 */
    q.before = 300;
    q.before_id = "a4";
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 3);
    assert_string_equal(seen.ids[0], "a3");
    assert_string_equal(seen.ids[1], "a2");
    /* the count ignores the cursor */
    assert_int_equal(kw_store_activity_count(s, &q, &n), KW_OK);
    assert_int_equal(n, 5);
    /* without before_id: every entry at that time is included */
    q.before_id = NULL;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 4);
    assert_string_equal(seen.ids[0], "a4");

    /* ascending, after (300, "a3") -> a4, a5 */
    q.ascending = 1;
    q.before_id = "a3";
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ids[0], "a4");
    assert_string_equal(seen.ids[1], "a5");
    q.before = 0;
    q.before_id = NULL;

    /* ascending with limit/offset */
    q.limit = 2;
    q.offset = 1;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ids[0], "a2");
    assert_string_equal(seen.ids[1], "a3");
    q.ascending = 0;
    q.offset = 4;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ids[0], "a1");
}

/* ---- transactions -------------------------------------------------------- */

static void test_transactions(void **state)
{
    kw_store *s = STORE(state);
    int64_t n = 0;
    assert_false(kw_store_in_transaction(s));
    assert_int_equal(kw_store_begin(s), KW_OK);
    assert_true(kw_store_in_transaction(s));
    make_user(s, "gone@example.com");
    kw_store_rollback(s);
    assert_false(kw_store_in_transaction(s));
    assert_int_equal(kw_store_user_count(s, &n), KW_OK);
    assert_int_equal(n, 0);

    /* A failed statement undoes itself only; the transaction goes on. */
    assert_int_equal(kw_store_begin(s), KW_OK);
    make_user(s, "one@example.com");
    kw_user dup;
    memset(&dup, 0, sizeof dup);
    snprintf(dup.email, sizeof dup.email, "one@example.com");
    assert_int_equal(kw_store_user_create(s, &dup), KW_ERR_EXISTS);
    make_user(s, "two@example.com");
    assert_true(kw_store_in_transaction(s));
    assert_int_equal(kw_store_commit(s), KW_OK);
    assert_false(kw_store_in_transaction(s));
    assert_int_equal(kw_store_user_count(s, &n), KW_OK);
    assert_int_equal(n, 2);
}

/* ---- PostgreSQL only ----------------------------------------------------- */

/* The server drops the session (restart, failover, idle kill): the call in
 * flight fails as KW_ERR_UNAVAILABLE, the next one reconnects and prepares
 * its statements again. */
static void test_pg_reconnect(void **state)
{
    struct fixture *f = *state;
    kw_store *s = f->store;
    int64_t uid = make_user(s, "re@example.com");
    kw_user u;
    assert_int_equal(kw_store_user_get(s, uid, &u), KW_OK);  /* statement now prepared */
    char sql[256];
    snprintf(sql, sizeof sql,
             "DO $$ BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE datname = '%s' AND pid <> pg_backend_pid(); END $$",
             f->dbname);
    assert_int_equal(pg_admin(sql), 0);
    nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
    assert_int_equal(kw_store_user_get(s, uid, &u), KW_ERR_UNAVAILABLE);
    assert_int_equal(kw_store_user_get(s, uid, &u), KW_OK);
    assert_string_equal(u.email, "re@example.com");
    int64_t n = 0;
    assert_int_equal(kw_store_user_count(s, &n), KW_OK);
    assert_int_equal(n, 1);
}

/* Several instances starting at once on an empty database: the advisory
 * lock makes them apply the migrations once, one after the other. */
struct opener {
    const char *url;
    int rc;
    int version;
};

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    kw_store *s = NULL;
    o->rc = kw_store_open(o->url, &s);
    if (!o->rc) o->rc = kw_store_schema_version(s, &o->version);
    kw_store_close(s);
    return NULL;
}

static void test_pg_concurrent_migrations(void **state)
{
    struct fixture *f = *state;
    int version = 0;
    assert_int_equal(kw_store_schema_version(f->store, &version), KW_OK);
    char db[96], url[1100], sql[160];
    snprintf(db, sizeof db, "%s_fresh", f->dbname);
    assert_int_equal(pg_url_for(pg_admin_url, db, url, sizeof url), 0);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    assert_int_equal(pg_admin(sql), 0);
    enum { THREADS = 6 };
    pthread_t t[THREADS];
    struct opener o[THREADS];
    for (int i = 0; i < THREADS; i++) {
        o[i] = (struct opener){.url = url, .rc = -100};
        assert_int_equal(pthread_create(&t[i], NULL, open_thread, &o[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    pg_admin(sql);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(o[i].rc, KW_OK);
        assert_int_equal(o[i].version, version);
    }
}

/* ---- project secret API keys ------------------------------------------- */

static void make_psk(kw_psk *k, const char *id, int64_t project_id, int64_t by, kw_time at)
{
    memset(k, 0, sizeof *k);
    snprintf(k->id, sizeof k->id, "%s", id);
    k->project_id = project_id;
    snprintf(k->label, sizeof k->label, "label %s", id);
    snprintf(k->secure_value, sizeof k->secure_value, "sha256$%s", id);
    snprintf(k->mask_value, sizeof k->mask_value, "phs_...%.4s", id);
    k->created_at = at;
    k->created_by = by;
    snprintf(k->scopes, sizeof k->scopes, "[\"feature_flag:read\"]");
}

static int seen_psk(void *ctx, const kw_psk *k)
{
    struct seen *s = ctx;
    snprintf(s->ids[s->n++], sizeof s->ids[0], "%s", k->id);
    return s->stop_after > 0 && s->n >= s->stop_after;
}

static void test_psk_crud(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "psk@example.com");
    int64_t p1 = make_project(s, uid, "phc_psk1");
    int64_t p2 = make_project(s, uid, "phc_psk2");
    kw_psk k, got;
    make_psk(&k, "psk-a", p1, uid, 10);
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    make_psk(&k, "psk-b", p1, 0, 20);
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    make_psk(&k, "psk-c", p2, uid, 30);
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    /* duplicate label in the same project; the same label elsewhere is fine */
    make_psk(&k, "psk-d", p1, uid, 40);
    snprintf(k.label, sizeof k.label, "label psk-a");
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_ERR_EXISTS);
    k.project_id = p2;
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);

    assert_int_equal(kw_store_psk_get(s, p1, "psk-a", &got), KW_OK);
    assert_string_equal(got.label, "label psk-a");
    assert_string_equal(got.secure_value, "sha256$psk-a");
    assert_string_equal(got.scopes, "[\"feature_flag:read\"]");
    assert_int_equal(got.created_by, uid);
    assert_int_equal(got.created_at, 10);
    assert_int_equal(got.last_used_at, 0);
    assert_int_equal(kw_store_psk_get(s, p1, "psk-b", &got), KW_OK);
    assert_int_equal(got.created_by, 0);
    /* another project's key is not found */
    assert_int_equal(kw_store_psk_get(s, p2, "psk-a", &got), KW_ERR_NOTFOUND);

    struct seen seen = {0};
    assert_int_equal(kw_store_psk_list(s, p1, 100, 0, seen_psk, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ids[0], "psk-b");
    assert_string_equal(seen.ids[1], "psk-a");
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_psk_list(s, p1, 1, 1, seen_psk, &seen), KW_OK);
    assert_int_equal(seen.n, 1);
    assert_string_equal(seen.ids[0], "psk-a");
    int64_t n = 0;
    assert_int_equal(kw_store_psk_count(s, p1, &n), KW_OK);
    assert_int_equal(n, 2);

    assert_int_equal(kw_store_psk_get(s, p1, "psk-a", &got), KW_OK);
    snprintf(got.label, sizeof got.label, "renamed");
    snprintf(got.scopes, sizeof got.scopes, "[\"endpoint:read\"]");
    assert_int_equal(kw_store_psk_update(s, &got), KW_OK);
    assert_int_equal(kw_store_psk_get(s, p1, "psk-a", &got), KW_OK);
    assert_string_equal(got.label, "renamed");
    assert_string_equal(got.scopes, "[\"endpoint:read\"]");
    snprintf(got.label, sizeof got.label, "label psk-b");
    assert_int_equal(kw_store_psk_update(s, &got), KW_ERR_EXISTS);

    assert_int_equal(kw_store_psk_roll(s, p1, "psk-a", "sha256$new", "phs_...new1", 99), KW_OK);
    assert_int_equal(kw_store_psk_by_hash(s, "sha256$psk-a", &got), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_psk_by_hash(s, "sha256$new", &got), KW_OK);
    assert_string_equal(got.id, "psk-a");
    assert_int_equal(got.project_id, p1);
    assert_int_equal(got.last_rolled_at, 99);
    assert_string_equal(got.mask_value, "phs_...new1");
    assert_int_equal(kw_store_psk_roll(s, p2, "psk-a", "sha256$x", "m", 1), KW_ERR_NOTFOUND);

    assert_int_equal(kw_store_psk_delete(s, p2, "psk-a"), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_psk_delete(s, p1, "psk-a"), KW_OK);
    assert_int_equal(kw_store_psk_get(s, p1, "psk-a", &got), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_psk_count(s, p1, &n), KW_OK);
    assert_int_equal(n, 1);
}

static void test_psk_touch_limit(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "pskt@example.com");
    int64_t pid = make_project(s, uid, "phc_pskt");
    kw_psk k, got;
    make_psk(&k, "psk-t", pid, uid, 1);
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    const kw_time interval = 60000000;
    assert_int_equal(kw_store_psk_touch(s, "psk-t", 100000000, interval), KW_OK);
    assert_int_equal(kw_store_psk_touch(s, "psk-t", 100000000 + interval - 1, interval), KW_OK);
    assert_int_equal(kw_store_psk_get(s, pid, "psk-t", &got), KW_OK);
    assert_int_equal(got.last_used_at, 100000000);
    assert_int_equal(kw_store_psk_touch(s, "psk-t", 100000000 + interval, interval), KW_OK);
    assert_int_equal(kw_store_psk_get(s, pid, "psk-t", &got), KW_OK);
    assert_int_equal(got.last_used_at, 100000000 + interval);
    assert_int_equal(kw_store_psk_touch(s, "psk-none", 1, interval), KW_OK);
    /* the limit: 3 keys allowed, the 4th refused */
    for (int i = 0; i < 2; i++) {
        char id[32]; /* room for any int: the compiler checks the format's worst case */
        snprintf(id, sizeof id, "psk-l%d", i);
        make_psk(&k, id, pid, uid, 2 + i);
        assert_int_equal(kw_store_psk_insert(s, &k, 3), KW_OK);
    }
    make_psk(&k, "psk-over", pid, uid, 9);
    assert_int_equal(kw_store_psk_insert(s, &k, 3), KW_ERR_LIMIT);
    /* the key belongs to the project: its creator's state does not matter */
    assert_int_equal(kw_store_user_set_active(s, uid, 0), KW_OK);
    assert_int_equal(kw_store_psk_by_hash(s, "sha256$psk-t", &got), KW_OK);
}

/* ---- captured events and endpoints ---------------------------------------- */

#define HOUR_US (3600LL * 1000000)
#define DAY_US (24 * HOUR_US)

static kw_event ev(const char *uuid, const char *name, const char *who, const char *props, kw_time t)
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
};

static int collect_row(void *ctx, const kw_event_row *r)
{
    struct rows *rs = ctx;
    if (rs->n >= 32) return 1;
    rs->bucket[rs->n] = r->bucket;
    const char *key = r->key ? r->key : r->event.event;
    rs->key_null[rs->n] = key == NULL;
    snprintf(rs->key[rs->n], sizeof rs->key[0], "%s", key ? key : "");
    snprintf(rs->props[rs->n], sizeof rs->props[0], "%s", r->event.properties ? r->event.properties : "");
    rs->count[rs->n++] = r->count;
    return 0;
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

static int seen_endpoint(void *ctx, const kw_endpoint *e)
{
    struct seen *s = ctx;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", e->name);
    s->nums[s->n++] = e->id;
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

/* ---- key lifecycle (SPEC §6) --------------------------------------------- */

static int seen_user(void *ctx, const kw_user *u)
{
    struct seen *s = ctx;
    snprintf(s->ids[s->n], sizeof s->ids[0], "%s", u->email);
    s->nums[s->n++] = u->id;
    return 0;
}

/* expires_at / rate_limit_per_minute round-trip; scopes_used OR-merges
 * idempotently; changing expiry bumps the auth generation, the usage merge
 * does not. */
static void test_key_lifecycle_columns(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "life@example.com");
    int64_t pid = make_project(s, uid, "phc_life");
    kw_pkey k, got;
    make_pkey(&k, "life-a", uid, "sha256$life", 1000);
    k.expires_at = 5000;
    k.rate_limit_per_minute = 3;
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    assert_int_equal(kw_store_pkey_by_hash(s, "sha256$life", &got), KW_OK);
    assert_int_equal(got.expires_at, 5000);
    assert_int_equal(got.rate_limit_per_minute, 3);
    assert_string_equal(got.scopes_used, "");

    int64_t g0, g1, g2;
    assert_int_equal(kw_store_auth_generation(s, &g0), KW_OK);
    got.expires_at = 0;
    got.rate_limit_per_minute = 0;
    assert_int_equal(kw_store_pkey_update(s, &got), KW_OK);
    assert_int_equal(kw_store_auth_generation(s, &g1), KW_OK);
    assert_true(g1 > g0);
    assert_int_equal(kw_store_pkey_get(s, uid, "life-a", &got), KW_OK);
    assert_int_equal(got.expires_at, 0);
    assert_int_equal(got.rate_limit_per_minute, 0);

    assert_int_equal(kw_store_key_scopes_used(s, KW_KEY_PERSONAL, "life-a", "[\"project:read\"]"), KW_OK);
    assert_int_equal(kw_store_key_scopes_used(s, KW_KEY_PERSONAL, "life-a",
                                              "[\"feature_flag:write\",\"project:read\"]"), KW_OK);
    assert_int_equal(kw_store_key_scopes_used(s, KW_KEY_PERSONAL, "life-a", "[\"project:read\"]"), KW_OK);
    assert_int_equal(kw_store_key_scopes_used(s, KW_KEY_PERSONAL, "gone", "[\"project:read\"]"), KW_OK);
    assert_int_equal(kw_store_auth_generation(s, &g2), KW_OK);
    assert_int_equal(g2, g1);
    assert_int_equal(kw_store_pkey_get(s, uid, "life-a", &got), KW_OK);
    assert_true(strstr(got.scopes_used, "\"feature_flag:write\"") != NULL);
    assert_true(strstr(got.scopes_used, "\"project:read\"") != NULL);
    assert_ptr_equal(strstr(strstr(got.scopes_used, "project:read") + 1, "project:read"), NULL);

    kw_psk pk, pgot;
    memset(&pk, 0, sizeof pk);
    snprintf(pk.id, sizeof pk.id, "life-s");
    pk.project_id = pid;
    snprintf(pk.label, sizeof pk.label, "s");
    snprintf(pk.secure_value, sizeof pk.secure_value, "sha256$lifes");
    snprintf(pk.mask_value, sizeof pk.mask_value, "phs_...s");
    snprintf(pk.scopes, sizeof pk.scopes, "[\"feature_flag:read\"]");
    pk.created_at = 1;
    pk.expires_at = 777;
    pk.rate_limit_per_minute = 1000000;
    assert_int_equal(kw_store_psk_insert(s, &pk, KW_MAX_SECRET_KEYS), KW_OK);
    assert_int_equal(kw_store_key_scopes_used(s, KW_KEY_SECRET, "life-s", "[\"feature_flag:read\"]"),
                     KW_OK);
    assert_int_equal(kw_store_psk_get(s, pid, "life-s", &pgot), KW_OK);
    assert_int_equal(pgot.expires_at, 777);
    assert_int_equal(pgot.rate_limit_per_minute, 1000000);
    assert_true(strstr(pgot.scopes_used, "\"feature_flag:read\"") != NULL);
    pgot.expires_at = 888;
    assert_int_equal(kw_store_psk_update(s, &pgot), KW_OK);
    assert_int_equal(kw_store_auth_generation(s, &g0), KW_OK);
    assert_true(g0 > g2);
    assert_int_equal(kw_store_psk_by_hash(s, "sha256$lifes", &pgot), KW_OK);
    assert_int_equal(pgot.expires_at, 888);
}

/* scopes_used without the spaces PostgreSQL's json_agg puts after commas,
 * so one expected text serves both backends. */
static const char *compact(const char *json, char *out, size_t size)
{
    size_t n = 0;
    for (; *json && n + 1 < size; json++)
        if (*json != ' ') out[n++] = *json;
    out[n] = '\0';
    return out;
}

/* The batched usage merge: both key kinds in one call, interleaved; ids
 * that need quoting inside an array literal; a missing key and a NULL list
 * are no error; each row gets exactly its own lists, merged with what it
 * had; a repeat changes nothing; no auth generation bump. */
static void test_scopes_used_many(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "many@example.com");
    int64_t pid = make_project(s, uid, "phc_many");
    enum { NP = 40, NS = 20 };
    char pids[NP][KW_ID_LEN + 1], sids[NS][KW_ID_LEN + 1];
    for (int i = 0; i < NP; i++) {
        /* A few ids with the characters an array literal must escape. */
        snprintf(pids[i], sizeof pids[i], i % 10 == 3 ? "p\"{%d},\\x" : "many-p-%02d", i);
        char secure[64];
        snprintf(secure, sizeof secure, "sha256$many-%d", i);
        kw_pkey k;
        make_pkey(&k, pids[i], uid, secure, 1000 + i);
        assert_int_equal(kw_store_pkey_insert(s, &k, NP), KW_OK);
    }
    for (int i = 0; i < NS; i++) {
        snprintf(sids[i], sizeof sids[i], "many-s-%02d", i);
        kw_psk k;
        make_psk(&k, sids[i], pid, uid, 1000 + i);
        assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    }
    assert_int_equal(kw_store_key_scopes_used(s, KW_KEY_PERSONAL, pids[0], "[\"user:read\"]"), KW_OK);
    int64_t g0, g1;
    assert_int_equal(kw_store_auth_generation(s, &g0), KW_OK);

    kw_scope_use uses[NP + NS + 2];
    size_t n = 0;
    for (int i = 0; i < NP || i < NS; i++) {
        if (i < NP)
            uses[n++] = (kw_scope_use){KW_KEY_PERSONAL, pids[i],
                                       i % 2 ? "[\"project:read\",\"project:write\"]"
                                             : "[\"feature_flag:read\"]"};
        if (i < NS) uses[n++] = (kw_scope_use){KW_KEY_SECRET, sids[i], "[\"feature_flag:write\"]"};
    }
    uses[n++] = (kw_scope_use){KW_KEY_PERSONAL, "gone", "[\"user:read\"]"};
    uses[n++] = (kw_scope_use){KW_KEY_SECRET, "gone-too", NULL};
    for (int round = 0; round < 2; round++) {
        assert_int_equal(kw_store_key_scopes_used_many(s, uses, n), KW_OK);
        char text[KW_JSON_LIST_MAX];
        for (int i = 0; i < NP; i++) {
            kw_pkey got;
            assert_int_equal(kw_store_pkey_get(s, uid, pids[i], &got), KW_OK);
            const char *want = i == 0 ? "[\"feature_flag:read\",\"user:read\"]"
                               : i % 2 ? "[\"project:read\",\"project:write\"]"
                                       : "[\"feature_flag:read\"]";
            assert_string_equal(compact(got.scopes_used, text, sizeof text), want);
        }
        for (int i = 0; i < NS; i++) {
            kw_psk got;
            assert_int_equal(kw_store_psk_get(s, pid, sids[i], &got), KW_OK);
            assert_string_equal(compact(got.scopes_used, text, sizeof text),
                                "[\"feature_flag:write\"]");
        }
    }
    assert_int_equal(kw_store_key_scopes_used_many(s, uses, 0), KW_OK);
    assert_int_equal(kw_store_auth_generation(s, &g1), KW_OK);
    assert_int_equal(g1, g0);
}

/* Two flushers (two instances) merging the same keys in opposite orders
 * at once: each batch locks its rows, so an unordered lock sequence would
 * deadlock; every call must succeed and no scope may be lost. */
struct used_race {
    kw_store *store;
    char (*ids)[KW_ID_LEN + 1];
    int n, reverse, failures;
};

static void *used_race_thread(void *arg)
{
    static const char *const LISTS[] = {"[\"project:read\"]", "[\"user:read\"]",
                                        "[\"feature_flag:read\"]", "[\"insight:write\"]"};
    struct used_race *r = arg;
    kw_scope_use *uses = calloc((size_t)r->n, sizeof *uses);
    if (!uses) {  /* no cmocka assertions off the test's thread */
        r->failures++;
        return NULL;
    }
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < r->n; i++) {
            int at = r->reverse ? r->n - 1 - i : i;
            uses[i] = (kw_scope_use){KW_KEY_PERSONAL, r->ids[at], LISTS[(round + r->reverse) % 4]};
        }
        if (kw_store_key_scopes_used_many(r->store, uses, (size_t)r->n)) r->failures++;
    }
    free(uses);
    return NULL;
}

static void test_scopes_used_race(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "usedrace@example.com");
    enum { N = 300 };
    static char ids[N][KW_ID_LEN + 1];
    assert_int_equal(kw_store_begin(s), KW_OK);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "used-race-%03d", i);
        char secure[64];
        snprintf(secure, sizeof secure, "sha256$used-race-%d", i);
        kw_pkey k;
        make_pkey(&k, ids[i], uid, secure, 1000 + i);
        assert_int_equal(kw_store_pkey_insert(s, &k, N), KW_OK);
    }
    assert_int_equal(kw_store_commit(s), KW_OK);
    pthread_t t[2];
    struct used_race r[2];
    for (int i = 0; i < 2; i++) {
        r[i] = (struct used_race){.store = s, .ids = ids, .n = N, .reverse = i};
        assert_int_equal(pthread_create(&t[i], NULL, used_race_thread, &r[i]), 0);
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    assert_int_equal(r[0].failures + r[1].failures, 0);
    char text[KW_JSON_LIST_MAX];
    for (int i = 0; i < N; i++) {
        kw_pkey got;
        assert_int_equal(kw_store_pkey_get(s, uid, ids[i], &got), KW_OK);
        assert_string_equal(compact(got.scopes_used, text, sizeof text),
                            "[\"feature_flag:read\",\"insight:write\",\"project:read\",\"user:read\"]");
    }
}

/* The batched last_used_at write: both kinds interleaved in one call;
 * per key the single touch's condition — NULL is written, a value within
 * the interval is kept, an older one is replaced, never an earlier time;
 * a repeated id takes its latest time; unknown ids and quoting-worthy ids
 * are fine; no auth generation bump. */
static void test_touch_many(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "touchmany@example.com");
    int64_t pid = make_project(s, uid, "phc_touchmany");
    const kw_time iv = 60000000, t0 = 1000000000;
    /* Per key: the last_used_at before the batch (0 = never), the time the
     * batch brings, and what must be stored after it. */
    static const struct {
        kw_time before, when, after;
    } CASE[] = {
        {0, t0, t0},                         /* never used: written */
        {t0 - 10, t0, t0 - 10},              /* recent: kept */
        {t0 - iv, t0, t0},                   /* exactly the interval: written */
        {t0 - 5 * iv, t0, t0},               /* old: written */
        {t0 + iv, t0, t0 + iv},              /* newer than the batch: never backwards */
    };
    enum { NC = sizeof CASE / sizeof CASE[0] };
    char pids[NC][KW_ID_LEN + 1], sids[NC][KW_ID_LEN + 1];
    for (int i = 0; i < NC; i++) {
        snprintf(pids[i], sizeof pids[i], i == 3 ? "tm-p\"{%d},\\" : "tm-p-%d", i);
        snprintf(sids[i], sizeof sids[i], "tm-s-%d", i);
        char secure[64];
        snprintf(secure, sizeof secure, "sha256$tm-%d", i);
        kw_pkey k;
        make_pkey(&k, pids[i], uid, secure, 1000 + i);
        assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
        kw_psk pk;
        make_psk(&pk, sids[i], pid, uid, 1000 + i);
        assert_int_equal(kw_store_psk_insert(s, &pk, KW_MAX_SECRET_KEYS), KW_OK);
        if (CASE[i].before) {
            assert_int_equal(kw_store_pkey_touch(s, pids[i], CASE[i].before, iv), KW_OK);
            assert_int_equal(kw_store_psk_touch(s, sids[i], CASE[i].before, iv), KW_OK);
        }
    }
    int64_t g0, g1;
    assert_int_equal(kw_store_auth_generation(s, &g0), KW_OK);
    kw_key_touch t[2 * NC + 4];
    size_t n = 0;
    for (int i = 0; i < NC; i++) {
        t[n++] = (kw_key_touch){KW_KEY_PERSONAL, pids[i], CASE[i].when};
        t[n++] = (kw_key_touch){KW_KEY_SECRET, sids[i], CASE[i].when};
    }
    t[n++] = (kw_key_touch){KW_KEY_PERSONAL, "tm-gone", t0};
    t[n++] = (kw_key_touch){KW_KEY_SECRET, "tm-gone-too", t0};
    /* The personal id of case 0 again, later: its time is t0 + 7. */
    t[n++] = (kw_key_touch){KW_KEY_PERSONAL, pids[0], t0 + 7};
    /* The secret id of case 0 again, earlier (listed after): still t0. */
    t[n++] = (kw_key_touch){KW_KEY_SECRET, sids[0], t0 - 3};
    assert_int_equal(kw_store_key_touch_many(s, t, n, iv), KW_OK);
    for (int i = 0; i < NC; i++) {
        kw_pkey got;
        assert_int_equal(kw_store_pkey_get(s, uid, pids[i], &got), KW_OK);
        /* SQLite applies the list in order: the repeat of case 0 at t0 + 7
         * is within the interval of t0 and so changes nothing; PostgreSQL
         * folds the repeats first.  Both are the single touch's semantics. */
        if (i == 0)
            assert_true(got.last_used_at == t0 || got.last_used_at == t0 + 7);
        else
            assert_int_equal(got.last_used_at, CASE[i].after);
        kw_psk pgot;
        assert_int_equal(kw_store_psk_get(s, pid, sids[i], &pgot), KW_OK);
        assert_int_equal(pgot.last_used_at, CASE[i].after);
    }
    /* Again an interval later: every key is written (none was newer). */
    for (size_t i = 0; i < n; i++) t[i].when = t0 + 2 * iv;
    assert_int_equal(kw_store_key_touch_many(s, t, n, iv), KW_OK);
    for (int i = 0; i < NC; i++) {
        kw_pkey got;
        assert_int_equal(kw_store_pkey_get(s, uid, pids[i], &got), KW_OK);
        assert_int_equal(got.last_used_at, t0 + 2 * iv);
        kw_psk pgot;
        assert_int_equal(kw_store_psk_get(s, pid, sids[i], &pgot), KW_OK);
        assert_int_equal(pgot.last_used_at, t0 + 2 * iv);
    }
    assert_int_equal(kw_store_key_touch_many(s, t, 0, iv), KW_OK);
    assert_int_equal(kw_store_auth_generation(s, &g1), KW_OK);
    assert_int_equal(g1, g0);
}

/* Two instances draining overlapping touches in opposite orders at once:
 * rows are locked in id order, so no deadlock; every call succeeds and
 * each key ends at the latest time written. */
struct touch_race {
    kw_store *store;
    char (*ids)[KW_ID_LEN + 1];
    int n, reverse, failures;
};

static void *touch_race_thread(void *arg)
{
    struct touch_race *r = arg;
    kw_key_touch *t = calloc((size_t)r->n, sizeof *t);
    if (!t) {
        r->failures++;
        return NULL;
    }
    for (int round = 1; round <= 20; round++) {
        for (int i = 0; i < r->n; i++) {
            int at = r->reverse ? r->n - 1 - i : i;
            t[i] = (kw_key_touch){KW_KEY_PERSONAL, r->ids[at], (kw_time)round * 1000};
        }
        if (kw_store_key_touch_many(r->store, t, (size_t)r->n, 1000)) r->failures++;
    }
    free(t);
    return NULL;
}

static void test_touch_many_race(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "touchrace@example.com");
    enum { N = 300 };
    static char ids[N][KW_ID_LEN + 1];
    assert_int_equal(kw_store_begin(s), KW_OK);
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof ids[i], "touch-race-%03d", i);
        char secure[64];
        snprintf(secure, sizeof secure, "sha256$touch-race-%d", i);
        kw_pkey k;
        make_pkey(&k, ids[i], uid, secure, 1000 + i);
        assert_int_equal(kw_store_pkey_insert(s, &k, N), KW_OK);
    }
    assert_int_equal(kw_store_commit(s), KW_OK);
    pthread_t th[2];
    struct touch_race r[2];
    for (int i = 0; i < 2; i++) {
        r[i] = (struct touch_race){.store = s, .ids = ids, .n = N, .reverse = i};
        assert_int_equal(pthread_create(&th[i], NULL, touch_race_thread, &r[i]), 0);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    assert_int_equal(r[0].failures + r[1].failures, 0);
    for (int i = 0; i < N; i++) {
        kw_pkey got;
        assert_int_equal(kw_store_pkey_get(s, uid, ids[i], &got), KW_OK);
        assert_int_equal(got.last_used_at, 20 * 1000);
    }
}

/* Previous values of rolled keys: set replaces a key's rows, get answers
 * the key's current hash, expiry/live see only live rows, changes bump the
 * auth generation, and deleting the key removes its rows. */
static void test_rolled_values(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "rolled@example.com");
    int64_t pid = make_project(s, uid, "phc_rolled");
    kw_pkey k;
    make_pkey(&k, "rolled-a", uid, "sha256$new-a", 1000);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    kw_psk pk;
    memset(&pk, 0, sizeof pk);
    snprintf(pk.id, sizeof pk.id, "rolled-s");
    pk.project_id = pid;
    snprintf(pk.label, sizeof pk.label, "s");
    snprintf(pk.secure_value, sizeof pk.secure_value, "sha256$new-s");
    snprintf(pk.mask_value, sizeof pk.mask_value, "phs_...s");
    snprintf(pk.scopes, sizeof pk.scopes, "[\"feature_flag:read\"]");
    pk.created_at = 1;
    assert_int_equal(kw_store_psk_insert(s, &pk, KW_MAX_SECRET_KEYS), KW_OK);

    int64_t live, g0, g1;
    kw_time until;
    kw_key_kind kind;
    char current[KW_SECURE_MAX + 1];
    assert_int_equal(kw_store_rolled_live(s, 100, &live), KW_OK);
    assert_int_equal(live, 0);
    assert_int_equal(kw_store_rolled_set(s, KW_KEY_PERSONAL, "rolled-a", "sha256$old-a", 500, 100), KW_OK);
    assert_int_equal(kw_store_rolled_set(s, KW_KEY_SECRET, "rolled-s", "sha256$old-s", 600, 100), KW_OK);
    assert_int_equal(kw_store_rolled_live(s, 100, &live), KW_OK);
    assert_int_equal(live, 2);
    assert_int_equal(kw_store_rolled_get(s, "sha256$old-a", &kind, current, &until), KW_OK);
    assert_int_equal(kind, KW_KEY_PERSONAL);
    assert_string_equal(current, "sha256$new-a");
    assert_int_equal(until, 500);
    assert_int_equal(kw_store_rolled_get(s, "sha256$old-s", &kind, current, &until), KW_OK);
    assert_int_equal(kind, KW_KEY_SECRET);
    assert_string_equal(current, "sha256$new-s");
    assert_int_equal(kw_store_rolled_get(s, "sha256$new-a", &kind, current, &until), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_rolled_expiry(s, KW_KEY_PERSONAL, "rolled-a", 100, &until), KW_OK);
    assert_int_equal(until, 500);
    assert_int_equal(kw_store_rolled_expiry(s, KW_KEY_PERSONAL, "rolled-a", 500, &until), KW_OK);
    assert_int_equal(until, 0);
    assert_int_equal(kw_store_rolled_live(s, 550, &live), KW_OK);
    assert_int_equal(live, 1);

    /* Replacing a key's previous value bumps the generation (the DELETE). */
    assert_int_equal(kw_store_auth_generation(s, &g0), KW_OK);
    assert_int_equal(kw_store_rolled_set(s, KW_KEY_PERSONAL, "rolled-a", "sha256$mid-a", 900, 200), KW_OK);
    assert_int_equal(kw_store_auth_generation(s, &g1), KW_OK);
    assert_true(g1 > g0);
    assert_int_equal(kw_store_rolled_get(s, "sha256$old-a", &kind, current, &until), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_rolled_get(s, "sha256$mid-a", &kind, current, &until), KW_OK);
    /* NULL only removes. */
    assert_int_equal(kw_store_rolled_set(s, KW_KEY_PERSONAL, "rolled-a", NULL, 0, 200), KW_OK);
    assert_int_equal(kw_store_rolled_expiry(s, KW_KEY_PERSONAL, "rolled-a", 200, &until), KW_OK);
    assert_int_equal(until, 0);

    /* Deleting the key deletes its previous values (trigger). */
    assert_int_equal(kw_store_psk_delete(s, pid, "rolled-s"), KW_OK);
    assert_int_equal(kw_store_rolled_get(s, "sha256$old-s", &kind, current, &until), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_rolled_set(s, KW_KEY_PERSONAL, "rolled-a", "sha256$mid-a", 900, 200), KW_OK);
    assert_int_equal(kw_store_pkey_delete(s, uid, "rolled-a"), KW_OK);
    assert_int_equal(kw_store_rolled_live(s, 0, &live), KW_OK);
    assert_int_equal(live, 0);
}

/* Import keeps ids and times, skips existing rows, and later inserts get
 * fresh ids past the imported ones. */
static void test_import_rows(void **state)
{
    kw_store *s = STORE(state);
    assert_int_equal(kw_store_begin(s), KW_OK);
    kw_user u;
    memset(&u, 0, sizeof u);
    u.id = 42;
    snprintf(u.uuid, sizeof u.uuid, "00000000-0000-4000-8000-000000000042");
    snprintf(u.email, sizeof u.email, "imp@example.com");
    u.is_active = 1;
    u.created_at = 123;
    assert_int_equal(kw_store_import_user(s, &u), KW_OK);
    assert_int_equal(kw_store_import_user(s, &u), KW_ERR_EXISTS);
    kw_org o;
    memset(&o, 0, sizeof o);
    snprintf(o.id, sizeof o.id, "11111111-1111-4111-8111-111111111111");
    snprintf(o.name, sizeof o.name, "Imported");
    o.created_at = 5;
    assert_int_equal(kw_store_import_org(s, &o), KW_OK);
    assert_int_equal(kw_store_import_org(s, &o), KW_ERR_EXISTS);
    kw_project p;
    memset(&p, 0, sizeof p);
    p.id = 77;
    snprintf(p.uuid, sizeof p.uuid, "22222222-2222-4222-8222-222222222222");
    snprintf(p.org_id, sizeof p.org_id, "%s", o.id);
    snprintf(p.name, sizeof p.name, "Legacy");
    snprintf(p.api_token, sizeof p.api_token, "phc_legacy");
    p.created_at = 6;
    assert_int_equal(kw_store_import_project(s, &p), KW_OK);
    assert_int_equal(kw_store_import_project(s, &p), KW_ERR_EXISTS);
    kw_pkey k;
    make_pkey(&k, "imp-key", 42, "pbkdf2_sha256$260000$posthog_personal_api_key$abc=", 9);
    k.last_used_at = 10;
    k.scopes[0] = '\0';  /* legacy NULL scopes */
    assert_int_equal(kw_store_import_pkey(s, &k), KW_OK);
    assert_int_equal(kw_store_import_pkey(s, &k), KW_ERR_EXISTS);
    assert_int_equal(kw_store_import_done(s), KW_OK);
    assert_int_equal(kw_store_commit(s), KW_OK);

    kw_pkey got;
    assert_int_equal(kw_store_pkey_get(s, 42, "imp-key", &got), KW_OK);
    assert_int_equal(got.created_at, 9);
    assert_int_equal(got.last_used_at, 10);
    assert_string_equal(got.scopes, "");
    int64_t legacy = 0;
    assert_int_equal(kw_store_pkey_legacy_count(s, &legacy), KW_OK);
    assert_int_equal(legacy, 1);
    kw_project pg;
    assert_int_equal(kw_store_project_get(s, 77, &pg), KW_OK);
    assert_string_equal(pg.api_token, "phc_legacy");
    assert_int_equal(pg.created_at, 6);

    int64_t fresh_user = make_user(s, "after@example.com");
    assert_true(fresh_user > 42);
    int64_t fresh_project = make_project(s, fresh_user, "phc_after");
    assert_true(fresh_project > 77);

    struct seen users = {0}, projects = {0};
    assert_int_equal(kw_store_user_list(s, seen_user, &users), KW_OK);
    assert_int_equal(users.n, 2);
    assert_int_equal(users.nums[0], 42);
    assert_int_equal(kw_store_project_list(s, seen_project, &projects), KW_OK);
    assert_int_equal(projects.n, 2);
    assert_int_equal(projects.nums[0], 77);
}

/* ---- runner -------------------------------------------------------------- */

#define CASES(setup)                                                           \
    {                                                                          \
        cmocka_unit_test_setup_teardown(test_migrations_idempotent, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),          \
        cmocka_unit_test_setup_teardown(test_orgs_memberships, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_projects, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_pkey_crud, setup, teardown),      \
        cmocka_unit_test_setup_teardown(test_pkey_unique_secure_value, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_pkey_touch, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_pkey_rehash, setup, teardown),    \
        cmocka_unit_test_setup_teardown(test_pkey_limit, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_pkey_limit_concurrent, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_psk_crud, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_psk_touch_limit, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),          \
        cmocka_unit_test_setup_teardown(test_flags_generation, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_activity, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),   \
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),         \
        cmocka_unit_test_setup_teardown(test_events_atomic, setup, teardown),  \
        cmocka_unit_test_setup_teardown(test_endpoints, setup, teardown),      \
        cmocka_unit_test_setup_teardown(test_key_lifecycle_columns, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_scopes_used_many, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_scopes_used_race, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_touch_many, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_touch_many_race, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_import_rows, setup, teardown),    \
        cmocka_unit_test_setup_teardown(test_rolled_values, setup, teardown),  \
    }

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = CASES(setup_sqlite);
    int failed = cmocka_run_group_tests_name("store/sqlite", sqlite_tests, NULL, NULL);

    pg_admin_url = getenv("KEYWARD_TEST_PG_URL");
    if (!pg_admin_url || !*pg_admin_url) {
        printf("[  SKIPPED ] store/postgresql: KEYWARD_TEST_PG_URL is not set "
               "(start a server with scripts/pg-test-cluster start)\n");
        return failed;
    }
    const struct CMUnitTest pg_tests[] = CASES(setup_pg);
    failed += cmocka_run_group_tests_name("store/postgresql", pg_tests, NULL, NULL);
    const struct CMUnitTest pg_only[] = {
        cmocka_unit_test_setup_teardown(test_pg_reconnect, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_pg_concurrent_migrations, setup_pg, teardown),
    };
    failed += cmocka_run_group_tests_name("store/postgresql-only", pg_only, NULL, NULL);
    return failed;
}
