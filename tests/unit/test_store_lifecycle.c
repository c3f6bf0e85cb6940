/* test_store_lifecycle.c — what the key lifecycle stores besides the key
 * rows (lib/store/lifecycle.c), on every backend: the batched scope-usage
 * merge and last_used_at write (one statement per key kind on PostgreSQL,
 * one transaction on SQLite), their behaviour under two concurrent
 * flushers, and the previous values of rolled keys. */
#include "store_fixture.h"

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

/* A batch called inside the caller's transaction joins it instead of
 * opening its own (SQLite refuses a nested BEGIN; PostgreSQL runs it on
 * the caller's session): a rollback undoes it, a commit keeps it. */
static void test_batches_join_transaction(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "batchtx@example.com");
    int64_t pid = make_project(s, uid, "phc_batchtx");
    kw_pkey k, got;
    make_pkey(&k, "batchtx-p", uid, "sha256$batchtx-p", 1000);
    assert_int_equal(kw_store_pkey_insert(s, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    kw_psk pk, pgot;
    make_psk(&pk, "batchtx-s", pid, uid, 1000);
    assert_int_equal(kw_store_psk_insert(s, &pk, KW_MAX_SECRET_KEYS), KW_OK);
    const kw_key_touch t[] = {{KW_KEY_PERSONAL, "batchtx-p", 5000}, {KW_KEY_SECRET, "batchtx-s", 6000}};
    const kw_scope_use u[] = {{KW_KEY_PERSONAL, "batchtx-p", "[\"user:read\"]"},
                              {KW_KEY_SECRET, "batchtx-s", "[\"feature_flag:read\"]"}};
    for (int commit = 0; commit < 2; commit++) {
        assert_int_equal(kw_store_begin(s), KW_OK);
        assert_int_equal(kw_store_key_touch_many(s, t, 2, 1000), KW_OK);
        assert_int_equal(kw_store_key_scopes_used_many(s, u, 2), KW_OK);
        assert_true(kw_store_in_transaction(s));  /* still the caller's */
        if (commit)
            assert_int_equal(kw_store_commit(s), KW_OK);
        else
            kw_store_rollback(s);
        assert_int_equal(kw_store_pkey_get(s, uid, "batchtx-p", &got), KW_OK);
        assert_int_equal(kw_store_psk_get(s, pid, "batchtx-s", &pgot), KW_OK);
        assert_int_equal(got.last_used_at, commit ? 5000 : 0);
        assert_int_equal(pgot.last_used_at, commit ? 6000 : 0);
        assert_int_equal(strstr(got.scopes_used, "user:read") != NULL, commit);
        assert_int_equal(strstr(pgot.scopes_used, "feature_flag:read") != NULL, commit);
    }
    /* Outside a transaction a batch commits by itself. */
    assert_false(kw_store_in_transaction(s));
}

#define CASES(setup)                                                                   \
    {                                                                                  \
        cmocka_unit_test_setup_teardown(test_scopes_used_many, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_scopes_used_race, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_touch_many, setup, teardown),             \
        cmocka_unit_test_setup_teardown(test_touch_many_race, setup, teardown),        \
        cmocka_unit_test_setup_teardown(test_batches_join_transaction, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_rolled_values, setup, teardown),          \
    }

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = CASES(setup_sqlite);
    int failed = cmocka_run_group_tests_name("store-lifecycle/sqlite", sqlite_tests, NULL, NULL);
    if (!store_fixture_pg_url("store-lifecycle/postgresql")) return failed;
    const struct CMUnitTest pg_tests[] = CASES(setup_pg);
    failed += cmocka_run_group_tests_name("store-lifecycle/postgresql", pg_tests, NULL, NULL);
    return failed;
}
