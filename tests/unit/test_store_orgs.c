/* test_store_orgs.c — managing organizations, projects and members in the
 * store (lib/store/orgs.c), on every backend: renames, the member listing
 * and level changes, deletions cascading to keys with each revocation in
 * the change log, and project ids that are never handed out twice. */
#include "store_fixture.h"

struct changes {
    int n, projects, secrets;
};

static int count_change(void *ctx, const kw_change *ch)
{
    struct changes *c = ctx;
    c->n++;
    if (!strcmp(ch->kind, "project")) c->projects++;
    if (!strcmp(ch->kind, "secret")) c->secrets++;
    return 0;
}

static int count_project(void *ctx, const kw_project *p)
{
    (void)p;
    (*(int *)ctx)++;
    return 0;
}

struct members {
    int n;
    int64_t ids[8];
    int levels[8];
};

static int seen_member(void *ctx, const kw_member *m)
{
    struct members *s = ctx;
    if (s->n < 8) {
        s->ids[s->n] = m->user.id;
        s->levels[s->n] = m->level;
    }
    s->n++;
    return 0;
}

static void org_of(kw_store *s, int64_t project_id, char org[KW_ID_LEN + 1])
{
    kw_project p;
    assert_int_equal(kw_store_project_get(s, project_id, &p), KW_OK);
    strcpy(org, p.org_id);
}

static int64_t add_project(kw_store *s, const char *org, const char *token)
{
    kw_project p;
    memset(&p, 0, sizeof p);
    snprintf(p.org_id, sizeof p.org_id, "%s", org);
    snprintf(p.name, sizeof p.name, "Second");
    snprintf(p.api_token, sizeof p.api_token, "%s", token);
    assert_int_equal(kw_store_project_create(s, &p), KW_OK);
    return p.id;
}

static void test_rename(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "rename@example.com");
    int64_t pid = make_project(s, uid, "phc_rename");
    char org[KW_ID_LEN + 1];
    org_of(s, pid, org);
    assert_int_equal(kw_store_org_rename(s, org, "Renamed org"), KW_OK);
    assert_int_equal(kw_store_project_rename(s, pid, "Renamed project"), KW_OK);
    kw_org o;
    kw_project p;
    assert_int_equal(kw_store_org_get(s, org, &o), KW_OK);
    assert_string_equal(o.name, "Renamed org");
    assert_int_equal(kw_store_project_get(s, pid, &p), KW_OK);
    assert_string_equal(p.name, "Renamed project");
    assert_int_equal(kw_store_org_rename(s, "no-such-org", "x"), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_project_rename(s, pid + 1000, "x"), KW_ERR_NOTFOUND);
}

static void test_members(void **state)
{
    kw_store *s = STORE(state);
    int64_t owner = make_user(s, "owner@example.com");
    int64_t member = make_user(s, "member@example.com");
    int64_t outsider = make_user(s, "outsider@example.com");
    int64_t pid = make_project(s, owner, "phc_members");
    char org[KW_ID_LEN + 1];
    org_of(s, pid, org);
    assert_int_equal(kw_store_membership_set(s, member, org, KW_LEVEL_MEMBER), KW_OK);

    struct members seen = {0};
    assert_int_equal(kw_store_org_members(s, org, 10, 0, seen_member, &seen), KW_OK);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.ids[0], owner);
    assert_int_equal(seen.levels[0], KW_LEVEL_OWNER);
    memset(&seen, 0, sizeof seen);
    assert_int_equal(kw_store_org_members(s, org, 1, 1, seen_member, &seen), KW_OK);
    assert_int_equal(seen.n, 1);
    assert_int_equal(seen.ids[0], member);

    int64_t n;
    assert_int_equal(kw_store_org_member_count(s, org, 0, &n), KW_OK);
    assert_int_equal(n, 2);
    assert_int_equal(kw_store_org_member_count(s, org, KW_LEVEL_OWNER, &n), KW_OK);
    assert_int_equal(n, 1);

    kw_user u;
    assert_int_equal(kw_store_user_get(s, member, &u), KW_OK);
    kw_member m;
    assert_int_equal(kw_store_member_by_uuid(s, org, u.uuid, &m), KW_OK);
    assert_int_equal(m.user.id, member);
    assert_string_equal(m.user.email, "member@example.com");
    assert_int_equal(m.level, KW_LEVEL_MEMBER);
    assert_true(m.joined_at > 0);
    assert_int_equal(kw_store_user_get(s, outsider, &u), KW_OK);
    assert_int_equal(kw_store_member_by_uuid(s, org, u.uuid, &m), KW_ERR_NOTFOUND);

    /* An update never creates a membership; a delete removes only one. */
    assert_int_equal(kw_store_membership_update(s, member, org, KW_LEVEL_ADMIN), KW_OK);
    int level;
    assert_int_equal(kw_store_membership_level(s, member, org, &level), KW_OK);
    assert_int_equal(level, KW_LEVEL_ADMIN);
    assert_int_equal(kw_store_membership_update(s, outsider, org, KW_LEVEL_ADMIN), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_membership_level(s, outsider, org, &level), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_membership_delete(s, member, org), KW_OK);
    assert_int_equal(kw_store_membership_level(s, member, org, &level), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_membership_delete(s, member, org), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_membership_level(s, owner, org, &level), KW_OK);

    /* The lock is a read of the row inside a transaction. */
    assert_int_equal(kw_store_begin(s), KW_OK);
    assert_int_equal(kw_store_org_lock(s, org), KW_OK);
    assert_int_equal(kw_store_org_lock(s, "no-such-org"), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_commit(s), KW_OK);
}

/* Deleting a project takes its secret keys with it, and each is in the
 * change log (so every verifier forgets it), with the project's token. */
static void test_project_delete_revokes(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "del@example.com");
    int64_t pid = make_project(s, uid, "phc_del");
    char org[KW_ID_LEN + 1];
    org_of(s, pid, org);
    int64_t other = add_project(s, org, "phc_keep");
    kw_psk k;
    make_psk(&k, "psk-a", pid, uid, 1000);
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    make_psk(&k, "psk-b", pid, uid, 1001);
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    make_psk(&k, "psk-c", other, uid, 1002);
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    int64_t g0, g1;
    assert_int_equal(kw_store_auth_generation(s, &g0), KW_OK);
    assert_int_equal(kw_store_project_delete(s, pid), KW_OK);
    assert_int_equal(kw_store_auth_generation(s, &g1), KW_OK);
    struct changes ch = {0};
    assert_int_equal(kw_store_changes(s, KW_CHANGE_AUTH, g0, g1, count_change, &ch), (int)(g1 - g0));
    assert_int_equal(ch.projects, 1);
    assert_int_equal(ch.secrets, 2);

    kw_project p;
    kw_psk got;
    assert_int_equal(kw_store_project_get(s, pid, &p), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_project_by_token(s, "phc_del", &p), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_psk_by_hash(s, "sha256$psk-a", &got), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_psk_by_hash(s, "sha256$psk-c", &got), KW_OK);
    assert_int_equal(kw_store_project_delete(s, pid), KW_ERR_NOTFOUND);
}

/* A new project never gets the id of a deleted one, even the newest,
 * and no writer (the import) can put a row under a deleted id. */
static void test_project_ids_never_reused(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "ids@example.com");
    int64_t first = make_project(s, uid, "phc_ids1");
    char org[KW_ID_LEN + 1];
    org_of(s, first, org);
    int64_t second = add_project(s, org, "phc_ids2");
    assert_int_equal(kw_store_project_delete(s, second), KW_OK);
    int64_t third = add_project(s, org, "phc_ids3");
    assert_true(third > second);
    assert_int_equal(kw_store_project_delete(s, third), KW_OK);
    assert_int_equal(kw_store_project_delete(s, first), KW_OK);
    int64_t fourth = add_project(s, org, "phc_ids4");
    assert_true(fourth > third);

    kw_project old;
    memset(&old, 0, sizeof old);
    old.id = second;
    snprintf(old.uuid, sizeof old.uuid, "00000000-0000-4000-8000-000000000001");
    snprintf(old.org_id, sizeof old.org_id, "%s", org);
    snprintf(old.name, sizeof old.name, "Imported");
    snprintf(old.api_token, sizeof old.api_token, "phc_imported");
    old.created_at = 5;
    assert_int_equal(kw_store_import_project(s, &old), KW_ERR_EXISTS);
    assert_int_equal(kw_store_project_get(s, second, &old), KW_ERR_NOTFOUND);
    /* The import's sequence fix-up does not rewind past a deleted id. */
    assert_int_equal(kw_store_import_done(s), KW_OK);
    assert_int_equal(kw_store_project_delete(s, fourth), KW_OK);
    assert_int_equal(kw_store_import_done(s), KW_OK);
    assert_true(add_project(s, org, "phc_ids5") > fourth);
}

/* Deleting an organization: its projects (and their keys), memberships
 * and nothing of another organization. */
static void test_org_delete(void **state)
{
    kw_store *s = STORE(state);
    int64_t uid = make_user(s, "orgdel@example.com");
    int64_t pid = make_project(s, uid, "phc_orgdel");
    int64_t keep = make_project(s, uid, "phc_orgkeep");
    char org[KW_ID_LEN + 1], kept[KW_ID_LEN + 1];
    org_of(s, pid, org);
    org_of(s, keep, kept);
    add_project(s, org, "phc_orgdel2");
    kw_psk k;
    make_psk(&k, "psk-org", pid, uid, 1000);
    assert_int_equal(kw_store_psk_insert(s, &k, KW_MAX_SECRET_KEYS), KW_OK);
    int n = 0;
    assert_int_equal(kw_store_org_projects(s, org, count_project, &n), KW_OK);
    assert_int_equal(n, 2);
    int64_t g0, g1;
    assert_int_equal(kw_store_auth_generation(s, &g0), KW_OK);
    assert_int_equal(kw_store_org_delete(s, org), KW_OK);
    assert_int_equal(kw_store_auth_generation(s, &g1), KW_OK);
    struct changes ch = {0};
    assert_int_equal(kw_store_changes(s, KW_CHANGE_AUTH, g0, g1, count_change, &ch), (int)(g1 - g0));
    assert_int_equal(ch.projects, 2);
    assert_int_equal(ch.secrets, 1);
    n = 0;
    assert_int_equal(kw_store_org_projects(s, org, count_project, &n), KW_OK);
    assert_int_equal(n, 0);
    int level;
    assert_int_equal(kw_store_membership_level(s, uid, org, &level), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_membership_level(s, uid, kept, &level), KW_OK);
    kw_org o;
    assert_int_equal(kw_store_org_get(s, org, &o), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_org_get(s, kept, &o), KW_OK);
    assert_int_equal(kw_store_org_delete(s, org), KW_ERR_NOTFOUND);
}

/* The lock that keeps the last-owner rule: a second transaction locking
 * the same organization waits for the first, then reads what it wrote
 * (on SQLite BEGIN IMMEDIATE already serializes writers; on PostgreSQL
 * the row lock does it under READ COMMITTED). */
struct locker {
    kw_store *store;
    const char *org;
    int64_t owners_seen;
    int rc;
};

static void *second_demoter(void *arg)
{
    struct locker *l = arg;
    int rc = kw_store_begin(l->store);
    if (!rc) rc = kw_store_org_lock(l->store, l->org);
    if (!rc) rc = kw_store_org_member_count(l->store, l->org, KW_LEVEL_OWNER, &l->owners_seen);
    if (!rc) rc = kw_store_commit(l->store);
    else kw_store_rollback(l->store);
    l->rc = rc;
    return NULL;
}

static void test_org_lock_serializes(void **state)
{
    kw_store *s = STORE(state);
    int64_t a = make_user(s, "lock-a@example.com");
    int64_t b = make_user(s, "lock-b@example.com");
    int64_t pid = make_project(s, a, "phc_lock");
    char org[KW_ID_LEN + 1];
    org_of(s, pid, org);
    assert_int_equal(kw_store_membership_set(s, b, org, KW_LEVEL_OWNER), KW_OK);
    assert_int_equal(kw_store_begin(s), KW_OK);
    assert_int_equal(kw_store_org_lock(s, org), KW_OK);
    struct locker l = {s, org, -1, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, second_demoter, &l), 0);
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_int_equal(kw_store_membership_update(s, b, org, KW_LEVEL_ADMIN), KW_OK);
    assert_int_equal(kw_store_commit(s), KW_OK);
    pthread_join(t, NULL);
    assert_int_equal(l.rc, KW_OK);
    assert_int_equal(l.owners_seen, 1);
}

/* The directory generation (migration 16) moves with every write that
 * changes what GET /api/users/@me answers — whoever writes, on each
 * backend — and stays put for key use and rolls, which change nothing
 * there. */
static int64_t directory_gen(kw_store *s)
{
    int64_t g = 0;
    assert_int_equal(kw_store_directory_generation(s, &g), KW_OK);
    return g;
}

#define ASSERT_BUMPS(call)                          \
    do {                                            \
        int64_t before_ = directory_gen(s);         \
        assert_int_equal((call), KW_OK);            \
        assert_true(directory_gen(s) > before_);    \
    } while (0)

static void test_directory_generation(void **state)
{
    kw_store *s = STORE(state);
    int64_t g0 = directory_gen(s);
    int64_t uid = make_user(s, "dir@example.com");
    assert_true(directory_gen(s) > g0);
    int64_t g1 = directory_gen(s);
    int64_t pid = make_project(s, uid, "phc_directory");
    assert_true(directory_gen(s) > g1);
    char org[KW_ID_LEN + 1];
    org_of(s, pid, org);
    int64_t other = make_user(s, "dir2@example.com");

    ASSERT_BUMPS(kw_store_org_rename(s, org, "Renamed"));
    ASSERT_BUMPS(kw_store_project_rename(s, pid, "Renamed project"));
    ASSERT_BUMPS(kw_store_project_set_token(s, pid, "phc_directory2"));
    ASSERT_BUMPS(kw_store_membership_set(s, other, org, KW_LEVEL_MEMBER));
    ASSERT_BUMPS(kw_store_membership_update(s, other, org, KW_LEVEL_ADMIN));
    ASSERT_BUMPS(kw_store_membership_delete(s, other, org));
    ASSERT_BUMPS(kw_store_user_set_active(s, other, 0));
    int64_t pid2 = 0;
    {
        int64_t before = directory_gen(s);
        pid2 = add_project(s, org, "phc_directory3");
        assert_true(directory_gen(s) > before);
    }
    ASSERT_BUMPS(kw_store_project_delete(s, pid2));

    kw_pkey k;
    make_pkey(&k, "dirkey", uid, "sha256$dirkey", kw_now());
    int64_t before = directory_gen(s);
    assert_int_equal(kw_store_pkey_insert(s, &k, 10), KW_OK);
    /* A new key changes nothing @me shows; its use and its roll neither. */
    assert_int_equal(directory_gen(s), before);
    assert_int_equal(kw_store_pkey_roll(s, uid, "dirkey", "sha256$dirkey2", "phx_...dirk", kw_now()),
                     KW_OK);
    assert_int_equal(directory_gen(s), before);
    snprintf(k.scoped_teams, sizeof k.scoped_teams, "[%lld]", (long long)pid);
    ASSERT_BUMPS(kw_store_pkey_update(s, &k));
    ASSERT_BUMPS(kw_store_pkey_delete(s, uid, "dirkey"));

    /* Inside a transaction the bump is visible once committed. */
    before = directory_gen(s);
    assert_int_equal(kw_store_begin(s), KW_OK);
    assert_int_equal(kw_store_org_rename(s, org, "Again"), KW_OK);
    assert_int_equal(kw_store_commit(s), KW_OK);
    assert_true(directory_gen(s) > before);

    ASSERT_BUMPS(kw_store_org_delete(s, org));
}
#undef ASSERT_BUMPS

#define CASES(setup)                                                                  \
    {                                                                                 \
        cmocka_unit_test_setup_teardown(test_rename, setup, teardown),                \
        cmocka_unit_test_setup_teardown(test_members, setup, teardown),               \
        cmocka_unit_test_setup_teardown(test_project_delete_revokes, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_project_ids_never_reused, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_org_delete, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_org_lock_serializes, setup, teardown),   \
        cmocka_unit_test_setup_teardown(test_directory_generation, setup, teardown),  \
    }

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = CASES(setup_sqlite);
    int failed = cmocka_run_group_tests_name("store-orgs/sqlite", sqlite_tests, NULL, NULL);
    if (!store_fixture_pg_url("store-orgs/postgresql")) return failed;
    const struct CMUnitTest pg_tests[] = CASES(setup_pg);
    failed += cmocka_run_group_tests_name("store-orgs/postgresql", pg_tests, NULL, NULL);
    return failed;
}
