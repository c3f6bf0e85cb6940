/* test_store.c — the store conformance suite.
 *
 * The same checks run against every backend, each test on a fresh store
 * (store_fixture.h).  The clock is pinned where times matter.  Objects
 * with a file of their own: test_store_lifecycle.c. */
#include "store/db.h"
#include "store_fixture.h"

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
    /* The failure is kept for the logs in the database's words, naming the
     * constraint and never the value bound to it. */
    assert_non_null(strstr(kw_store_last_error(), "users"));  /* users.email, users_email_key */
    assert_null(strstr(kw_store_last_error(), "ada@"));

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

/* Both databases answer alike: an active flag reads back as 0 or 1 whatever
 * non-zero value was stored (SQLite kept the raw value, PostgreSQL a
 * boolean), and a list stops at the first non-zero callback result and
 * returns it. */
static int stop_first(void *ctx, const void *row)
{
    (void)row;
    ++*(int *)ctx;
    return 7;
}
static int stop_user(void *ctx, const kw_user *u) { return stop_first(ctx, u); }
static int stop_project(void *ctx, const kw_project *p) { return stop_first(ctx, p); }
static int stop_org(void *ctx, const kw_org *o, int level)
{
    (void)level;
    return stop_first(ctx, o);
}

static void test_users_dialects_agree(void **state)
{
    kw_store *s = STORE(state);
    kw_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.email, sizeof u.email, "two@example.com");
    u.is_active = 2;
    assert_int_equal(kw_store_user_create(s, &u), KW_OK);
    kw_user got;
    assert_int_equal(kw_store_user_get(s, u.id, &got), KW_OK);
    assert_int_equal(got.is_active, 1);
    assert_int_equal(kw_store_user_set_active(s, u.id, 5), KW_OK);
    assert_int_equal(kw_store_user_get(s, u.id, &got), KW_OK);
    assert_int_equal(got.is_active, 1);

    make_user(s, "three@example.com");
    make_project(s, u.id, "phc_a");
    make_project(s, u.id, "phc_b");
    int calls = 0;
    assert_int_equal(kw_store_user_list(s, stop_user, &calls), 7);
    assert_int_equal(calls, 1);
    calls = 0;
    assert_int_equal(kw_store_project_list(s, stop_project, &calls), 7);
    assert_int_equal(calls, 1);
    calls = 0;
    assert_int_equal(kw_store_user_projects(s, u.id, stop_project, &calls), 7);
    assert_int_equal(calls, 1);
    calls = 0;
    assert_int_equal(kw_store_user_orgs(s, u.id, stop_org, &calls), 7);
    assert_int_equal(calls, 1);
    /* The statements are usable again after a list stopped half-way. */
    struct seen seen = {0};
    assert_int_equal(kw_store_user_projects(s, u.id, seen_project, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
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

/* A flag written without filters is stored as "{}", on insert and update. */
static void test_flag_empty_filters(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "e@example.com");
    int64_t pid = make_project(s, uid, "phc_empty");
    kw_flag f;
    memset(&f, 0, sizeof f);
    f.project_id = pid;
    snprintf(f.key, sizeof f.key, "bare");
    assert_int_equal(kw_store_flag_insert(s, &f), KW_OK);
    kw_flag got;
    assert_int_equal(kw_store_flag_get(s, pid, f.id, &got), KW_OK);
    assert_string_equal(got.filters, "{}");
    assert_int_equal(got.active, 0);
    kw_flag_clear(&got);
    f.active = 1;
    f.filters = strdup("{\"groups\":[1]}");
    assert_int_equal(kw_store_flag_update(s, &f), KW_OK);
    kw_flag_clear(&f);
    assert_int_equal(kw_store_flag_get(s, pid, f.id, &got), KW_OK);
    assert_string_equal(got.filters, "{\"groups\":[1]}");
    assert_int_equal(got.active, 1);
    kw_flag_clear(&got);
    assert_int_equal(kw_store_flag_update(s, &f), KW_OK);  /* filters now NULL */
    assert_int_equal(kw_store_flag_get(s, pid, f.id, &got), KW_OK);
    assert_string_equal(got.filters, "{}");
    assert_int_equal(got.version, 3);
    kw_flag_clear(&got);
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

/* The change log (migration 9): every bump of a generation logs what it
 * changed, numbered with the generation it produced, so a cache forgets
 * one key, user or project and can tell a complete read from a pruned one. */
struct seen_changes {
    int n;
    kw_change c[8];
};

static int collect_change(void *ctx, const kw_change *ch)
{
    struct seen_changes *seen = ctx;
    if (seen->n < 8) seen->c[seen->n] = *ch;
    seen->n++;
    return 0;
}

static void test_change_log(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "log@example.com");
    int64_t pid = make_project(s, uid, "phc_changelog");
    kw_pkey k;
    make_pkey(&k, "key-x", uid, "sha256$xxx", 1000);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    make_pkey(&k, "key-y", uid, "sha256$yyy", 1000);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    int64_t a0, a4, f0, f1;
    assert_int_equal(kw_store_auth_generation(s, &a0), KW_OK);
    assert_int_equal(kw_store_flags_generation(s, &f0), KW_OK);
    assert_int_equal(kw_store_pkey_delete(s, uid, "key-x"), KW_OK);
    snprintf(k.scopes, sizeof k.scopes, "[\"feature_flag:read\"]");
    assert_int_equal(kw_store_pkey_update(s, &k), KW_OK);
    assert_int_equal(kw_store_user_set_active(s, uid, 0), KW_OK);
    assert_int_equal(kw_store_project_set_token(s, pid, "phc_changelog2"), KW_OK);
    add_flag(s, pid, "logged", uid);
    assert_int_equal(kw_store_auth_generation(s, &a4), KW_OK);
    assert_int_equal(kw_store_flags_generation(s, &f1), KW_OK);
    assert_int_equal(a4, a0 + 4);
    assert_int_equal(f1, f0 + 1);

    struct seen_changes seen = {0};
    assert_int_equal(kw_store_changes(s, KW_CHANGE_AUTH, a0, a4, collect_change, &seen), 4);
    const char *kinds[] = {"personal", "personal", "user", "project"};
    char uid_text[24], pid_text[24];
    snprintf(uid_text, sizeof uid_text, "%lld", (long long)uid);
    snprintf(pid_text, sizeof pid_text, "%lld", (long long)pid);
    const char *refs[] = {"key-x", "key-y", uid_text, pid_text};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(seen.c[i].generation, a0 + 1 + i);
        assert_string_equal(seen.c[i].kind, kinds[i]);
        assert_string_equal(seen.c[i].ref, refs[i]);
    }
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_changes(s, KW_CHANGE_FLAGS, f0, f1, collect_change, &seen), 1);
    assert_string_equal(seen.c[0].kind, "flags");
    assert_string_equal(seen.c[0].ref, pid_text);
    /* A range: nothing after the generation read, nothing before `after`. */
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_changes(s, KW_CHANGE_AUTH, a0 + 3, a4, collect_change, &seen), 1);
    assert_string_equal(seen.c[0].kind, "project");
    /* Pruned rows are missing: fewer than the generations say. */
    assert_int_equal(kw_store_changes_prune(s, KW_CHANGE_AUTH, a0 + 2), KW_OK);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_changes(s, KW_CHANGE_AUTH, a0, a4, collect_change, &seen), 2);
    assert_string_equal(seen.c[0].kind, "user");
    /* The flags stream is not pruned by the auth stream's prune. */
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_changes(s, KW_CHANGE_FLAGS, f0, f1, collect_change, &seen), 1);
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

/* Every filter at once: the statement is built per call, and its
 * parameters must be numbered without gaps for PostgreSQL to accept it. */
static int keep_activity(void *ctx, const kw_activity *a)
{
    kw_activity *out = ctx;
    kw_activity_clear(out);
    *out = *a;
    out->detail = strdup(a->detail);
    return 0;
}

static void test_activity_filters_combined(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "c@example.com");
    int64_t u2 = make_user(s, "c2@example.com");
    int64_t pid = make_project(s, uid, "phc_combined");
    add_activity(s, "b1", pid, uid, "FeatureFlag", "7", 100);
    add_activity(s, "b2", pid, uid, "PersonalAPIKey", "7", 200);
    add_activity(s, "b3", pid, uid, "FeatureFlag", "7", 200);
    add_activity(s, "b4", pid, u2, "FeatureFlag", "7", 300);   /* other user */
    add_activity(s, "b5", pid, uid, "Project", "7", 300);      /* other scope */
    add_activity(s, "b6", pid, uid, "FeatureFlag", "8", 300);  /* other item */
    add_activity(s, "b7", pid, uid, "PersonalAPIKey", "7", 400);
    add_activity(s, "b8", pid, uid, "FeatureFlag", "7", 500);

    const char *const scopes[] = {"FeatureFlag", "PersonalAPIKey", NULL};
    kw_activity_query q = {.project_id = pid, .scopes = scopes, .user_id = uid, .item_id = "7",
                           .before = 400, .before_id = "b7", .limit = 2, .offset = 1};
    struct seen seen = {0};
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 2);  /* b3, b2, b1 before the cursor; the page skips b3 */
    assert_string_equal(seen.ids[0], "b2");
    assert_string_equal(seen.ids[1], "b1");
    int64_t n = 0;
    assert_int_equal(kw_store_activity_count(s, &q, &n), KW_OK);
    assert_int_equal(n, 5);  /* b1 b2 b3 b7 b8 */

    q.ascending = 1;
    q.before = 200;
    q.before_id = "b2";
    q.offset = 0;
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_activity_list(s, &q, seen_activity, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.ids[0], "b3");
    assert_string_equal(seen.ids[1], "b7");

    /* only the first 16 scopes count */
    const char *many[20];
    for (int i = 0; i < 16; i++) many[i] = "Nothing";
    many[16] = "FeatureFlag";
    many[17] = NULL;
    kw_activity_query q2 = {.project_id = pid, .scopes = many};
    assert_int_equal(kw_store_activity_count(s, &q2, &n), KW_OK);
    assert_int_equal(n, 0);
    many[15] = "FeatureFlag";
    assert_int_equal(kw_store_activity_count(s, &q2, &n), KW_OK);
    assert_int_equal(n, 5);

    /* an entry reads back whole; optional columns come back empty */
    kw_activity a;
    memset(&a, 0, sizeof a);
    snprintf(a.id, sizeof a.id, "b9");
    a.project_id = pid;
    snprintf(a.org_id, sizeof a.org_id, "org-1");
    snprintf(a.activity, sizeof a.activity, "leaked");
    snprintf(a.scope, sizeof a.scope, "Other");
    a.created_at = 900;
    assert_int_equal(kw_store_activity_insert(s, &a), KW_OK);
    kw_activity got;
    memset(&got, 0, sizeof got);
    kw_activity_query q3 = {.project_id = pid, .limit = 1};
    assert_int_equal(kw_store_activity_list(s, &q3, keep_activity, &got), KW_OK);
    assert_string_equal(got.id, "b9");
    assert_string_equal(got.org_id, "org-1");
    assert_int_equal(got.user_id, 0);
    assert_string_equal(got.activity, "leaked");
    assert_string_equal(got.item_id, "");
    assert_string_equal(got.detail, "{}");
    assert_string_equal(got.ip_address, "");
    kw_activity_clear(&got);
    q3.item_id = "7";
    assert_int_equal(kw_store_activity_list(s, &q3, keep_activity, &got), KW_OK);
    assert_string_equal(got.id, "b8");
    assert_int_equal(got.user_id, uid);
    assert_string_equal(got.scope, "FeatureFlag");
    assert_string_equal(got.detail, "{\"name\":\"x\"}");
    assert_string_equal(got.ip_address, "127.0.0.1");
    kw_activity_clear(&got);
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

/* The server drops an idle session (restart, failover, idle kill): the
 * next call notices before it sends anything, reconnects and prepares its
 * statements again, and succeeds — no request pays for a stale session. */
/* A long message is cut to the buffer at a character boundary and to its
 * first line (the logger turns the text into a JSON string, which must be
 * valid UTF-8). */
static void test_last_error_cut(void **state)
{
    (void)state;
    char msg[600];
    size_t at = 0;
    while (at + 2 < 400) {  /* "é" is two bytes: every cut may land inside one */
        msg[at++] = (char)0xC3;
        msg[at++] = (char)0xA9;
    }
    memcpy(msg + at, "\nsecond line", 13);
    for (size_t code = 1; code < 4; code++) {
        char name[8] = "c";
        memset(name, 'x', code);  /* shifts where the cut falls */
        name[code] = '\0';
        kw_db_note_error(name, msg);
        const char *e = kw_store_last_error();
        size_t len = strlen(e);
        assert_true(len > 100 && len < 400);
        assert_null(strchr(e, '\n'));
        size_t body = len - (code + 2);
        assert_int_equal(body % 2, 0);  /* whole characters only */
        assert_int_equal((unsigned char)e[len - 1], 0xA9);
    }
    kw_db_note_error("42P01", "relation \"x\" does not exist\nLINE 1: ...");
    assert_string_equal(kw_store_last_error(), "42P01: relation \"x\" does not exist");
}

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
    memset(&u, 0, sizeof u);
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

/* A listing reads what its serializer shows in the same statement: the
 * creator of a project key and the end of a rolled key's grace come with
 * each row (no query per row), for get and list alike. */
struct listed {
    int n;
    kw_psk psk;
    kw_pkey pkey;
};
static int listed_psk(void *ctx, const kw_psk *k)
{
    struct listed *l = ctx;
    if (strcmp(k->id, "lj-psk") == 0) l->psk = *k;
    l->n++;
    return 0;
}
static int listed_pkey(void *ctx, const kw_pkey *k)
{
    struct listed *l = ctx;
    if (strcmp(k->id, "lj-pkey") == 0) l->pkey = *k;
    l->n++;
    return 0;
}

static int listed_flag(void *ctx, const kw_flag *f)
{
    struct listed *l = ctx;
    if (l->n++ == 0) {
        assert_true(f->joined);
        assert_string_equal(f->created_by_user.email, "joined@example.com");
    } else {
        assert_false(f->joined);
    }
    return 0;
}

static void test_key_lists_join_creator_and_grace(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "joined@example.com");
    int64_t p1 = make_project(s, uid, "phc_joined");
    kw_psk k;
    make_psk(&k, "lj-psk", p1, uid, 10);
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    make_psk(&k, "lj-orphan", p1, 0, 11);
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    kw_pkey pk;
    make_pkey(&pk, "lj-pkey", uid, "sha256$lj-pkey", 12);
    assert_int_equal(kw_store_pkey_insert(s, &pk, KW_MAX_PERSONAL_KEYS), KW_OK);
    assert_int_equal(kw_store_rolled_set(s, KW_KEY_SECRET, "lj-psk", "sha256$lj-old", 5000, 100), KW_OK);
    assert_int_equal(kw_store_rolled_set(s, KW_KEY_PERSONAL, "lj-pkey", "sha256$lj-pold", 6000, 100),
                     KW_OK);

    struct listed l = {0};
    assert_int_equal(kw_store_psk_list(s, p1, 100, 0, listed_psk, &l), KW_OK);
    assert_int_equal(l.n, 2);
    assert_true(l.psk.joined);
    assert_int_equal(l.psk.previous_value_expires_at, 5000);
    assert_int_equal(l.psk.created_by_user.id, uid);
    assert_string_equal(l.psk.created_by_user.email, "joined@example.com");
    assert_int_equal(kw_store_pkey_list(s, uid, listed_pkey, &l), KW_OK);
    assert_true(l.pkey.joined);
    assert_int_equal(l.pkey.previous_value_expires_at, 6000);

    kw_psk got;
    assert_int_equal(kw_store_psk_get(s, p1, "lj-orphan", &got), KW_OK);
    assert_true(got.joined);
    assert_int_equal(got.previous_value_expires_at, 0);
    assert_int_equal(got.created_by_user.id, 0);
    /* The verification read leaves them out: it is the hot path. */
    assert_int_equal(kw_store_psk_by_hash(s, "sha256$lj-psk", &got), KW_OK);
    assert_false(got.joined);

    /* Flags: the admin listing carries the creator, the definitions'
     * by-key listing does not need it. */
    kw_flag f = {0};
    f.project_id = p1;
    snprintf(f.key, sizeof f.key, "lj-flag");
    f.created_by = uid;
    f.active = 1;
    assert_int_equal(kw_store_flag_insert(s, &f), KW_OK);
    l.n = 0;
    assert_int_equal(kw_store_flag_list(s, p1, KW_FLAG_NEWEST_FIRST, 0, listed_flag, &l), KW_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(kw_store_flag_list(s, p1, KW_FLAG_BY_KEY, 0, listed_flag, &l), KW_OK);
    assert_int_equal(l.n, 2);
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
        cmocka_unit_test_setup_teardown(test_users_dialects_agree, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_pkey_crud, setup, teardown),      \
        cmocka_unit_test_setup_teardown(test_pkey_unique_secure_value, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_pkey_touch, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_pkey_rehash, setup, teardown),    \
        cmocka_unit_test_setup_teardown(test_pkey_limit, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_pkey_limit_concurrent, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_psk_crud, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_key_lists_join_creator_and_grace, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_psk_touch_limit, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_flags, setup, teardown),          \
        cmocka_unit_test_setup_teardown(test_flags_generation, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_change_log, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_activity, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_activity_filters_combined, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_flag_empty_filters, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),   \
        cmocka_unit_test_setup_teardown(test_key_lifecycle_columns, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_import_rows, setup, teardown),    \
        cmocka_unit_test(test_last_error_cut),                                 \
    }

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = CASES(setup_sqlite);
    int failed = cmocka_run_group_tests_name("store/sqlite", sqlite_tests, NULL, NULL);

    if (!store_fixture_pg_url("store/postgresql")) return failed;
    const struct CMUnitTest pg_tests[] = CASES(setup_pg);
    failed += cmocka_run_group_tests_name("store/postgresql", pg_tests, NULL, NULL);
    const struct CMUnitTest pg_only[] = {
        cmocka_unit_test_setup_teardown(test_pg_reconnect, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_pg_concurrent_migrations, setup_pg, teardown),
    };
    failed += cmocka_run_group_tests_name("store/postgresql-only", pg_only, NULL, NULL);
    return failed;
}
