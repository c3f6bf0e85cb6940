/* test_session.c — the web console's sign-in, on every backend: password
 * hashing, the storage operations behind sessions, invitations and the
 * login limit, and the services built on them (lib/auth/password.c,
 * lib/auth/session.c, lib/org/invite.c).
 *
 * Like test_store.c, each test gets a fresh SQLite file and, when
 * KEYWARD_TEST_PG_URL is set (scripts/pg-test-cluster), a fresh PostgreSQL
 * database; the clock is pinned so expiry and the login window are tested
 * without sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyward/keyward.h"
#include "keyward/session.h"
#include "auth/session_internal.h"

#define SEC ((kw_time)1000000)
#define T0 ((kw_time)1800000000 * SEC)

struct fixture {
    int pg;
    char url[1024], path[256], dbname[64];
    kw_store *store;
    kw_sessions *sessions;
    kw_user alice;
    kw_org org;
};

static const char *pg_admin_url;
static int counter;

static int pg_admin(const char *sql)
{
    PGconn *db = PQconnectdb(pg_admin_url);
    int ok = PQstatus(db) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(db, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
    }
    PQfinish(db);
    return ok ? 0 : -1;
}

/* Alice (owner of org A, with project P) and the sessions context. */
static int populate(struct fixture *f)
{
    kw_clock_set(T0);
    if (kw_store_open(f->url, &f->store)) return -1;
    strcpy(f->alice.email, "alice@a.io");
    f->alice.is_active = 1;
    strcpy(f->org.name, "Acme");
    kw_project p;
    memset(&p, 0, sizeof p);
    if (kw_store_user_create(f->store, &f->alice) || kw_store_org_create(f->store, &f->org) ||
        kw_store_membership_set(f->store, f->alice.id, f->org.id, KW_LEVEL_OWNER))
        return -1;
    strcpy(p.org_id, f->org.id);
    strcpy(p.name, "P");
    kw_key_generate(KW_KEY_PROJECT, p.api_token);
    if (kw_store_project_create(f->store, &p)) return -1;
    return kw_sessions_new(f->store, &f->sessions);
}

static int setup_sqlite(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/kw-test-session-%ld-%d.db", (long)getpid(), ++counter);
    snprintf(f->url, sizeof f->url, "sqlite:%s", f->path);
    *state = f;
    return populate(f);
}

static int setup_pg(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    *state = f;
    f->pg = 1;
    snprintf(f->dbname, sizeof f->dbname, "kwsess_%ld_%d", (long)getpid(), ++counter);
    char sql[128];
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", f->dbname);
    if (pg_admin(sql)) return -1;
    /* the admin URL with the database replaced (…/DB?params) */
    const char *auth = strstr(pg_admin_url, "://") + 3;
    const char *q = strchr(auth, '?'), *slash = strchr(auth, '/');
    if (slash && q && slash > q) slash = NULL;
    int head = (int)((slash ? slash : q ? q : auth + strlen(auth)) - pg_admin_url);
    snprintf(f->url, sizeof f->url, "%.*s/%s%s", head, pg_admin_url, f->dbname, q ? q : "");
    return populate(f);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    kw_sessions_free(f->sessions);
    kw_store_close(f->store);
    kw_clock_set(0);
    if (f->pg) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
        pg_admin(sql);
    } else {
        const char *suffix[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            char p[300];
            snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
            unlink(p);
        }
    }
    free(f);
    return 0;
}

static void test_password_hashing(void **state)
{
    (void)state;
    char a[KW_PASSWORD_HASH_MAX + 1], b[KW_PASSWORD_HASH_MAX + 1];
    assert_int_equal(kw_password_hash("correct horse battery", a), KW_OK);
    assert_int_equal(kw_password_hash("correct horse battery", b), KW_OK);
    assert_memory_equal(a, "$argon2id$", 10);
    assert_string_not_equal(a, b);  /* salted */
    assert_true(kw_password_verify(a, "correct horse battery"));
    assert_false(kw_password_verify(a, "correct horse batterY"));
    assert_false(kw_password_verify("", "x"));
    assert_false(kw_password_verify("$2b$12$bcrypt", "x"));
    kw_problem p;
    assert_true(kw_password_check("123456789", &p));
    assert_string_equal(p.attr, "password");
    assert_false(kw_password_check("1234567890", &p));
    assert_false(kw_password_check("éééééééééé", &p));  /* characters, not bytes */
}

static void test_store_sessions(void **state)
{
    struct fixture *f = *state;
    kw_store *s = f->store;
    char pw[KW_PASSWORD_HASH_MAX + 1];
    assert_int_equal(kw_store_user_password_get(s, f->alice.id, pw), KW_OK);
    assert_string_equal(pw, "");
    assert_int_equal(kw_store_user_password_set(s, f->alice.id, "$argon2id$x"), KW_OK);
    assert_int_equal(kw_store_user_password_get(s, f->alice.id, pw), KW_OK);
    assert_string_equal(pw, "$argon2id$x");
    assert_int_equal(kw_store_user_password_set(s, 9999, "$argon2id$x"), KW_ERR_NOTFOUND);

    kw_session in = {0}, out;
    strcpy(in.token_hash, "aa");
    in.user_id = f->alice.id;
    in.created_at = in.last_seen_at = T0;
    in.expires_at = T0 + 100 * SEC;
    assert_int_equal(kw_store_session_insert(s, &in), KW_OK);
    assert_int_equal(kw_store_session_insert(s, &in), KW_ERR_EXISTS);
    strcpy(in.token_hash, "bb");
    assert_int_equal(kw_store_session_insert(s, &in), KW_OK);
    assert_int_equal(kw_store_session_get(s, "aa", &out), KW_OK);
    assert_int_equal(out.user_id, f->alice.id);
    assert_int_equal(out.expires_at, T0 + 100 * SEC);
    assert_true(out.user_active);
    /* touch: at most once per interval */
    assert_int_equal(kw_store_session_touch(s, "aa", T0 + 30 * SEC, 60 * SEC), KW_OK);
    assert_int_equal(kw_store_session_get(s, "aa", &out), KW_OK);
    assert_int_equal(out.last_seen_at, T0);
    assert_int_equal(kw_store_session_touch(s, "aa", T0 + 61 * SEC, 60 * SEC), KW_OK);
    assert_int_equal(kw_store_session_get(s, "aa", &out), KW_OK);
    assert_int_equal(out.last_seen_at, T0 + 61 * SEC);
    /* the user's state is read with the session */
    assert_int_equal(kw_store_user_set_active(s, f->alice.id, 0), KW_OK);
    assert_int_equal(kw_store_session_get(s, "aa", &out), KW_OK);
    assert_false(out.user_active);
    assert_int_equal(kw_store_session_delete(s, "aa"), KW_OK);
    assert_int_equal(kw_store_session_get(s, "aa", &out), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_session_delete_user(s, f->alice.id), KW_OK);
    assert_int_equal(kw_store_session_get(s, "bb", &out), KW_ERR_NOTFOUND);
}

static void test_store_invites_and_attempts(void **state)
{
    struct fixture *f = *state;
    kw_store *s = f->store;
    kw_invite in = {0}, out;
    strcpy(in.id, "inv-1");
    strcpy(in.org_id, f->org.id);
    strcpy(in.token_hash, "hh");
    strcpy(in.target_email, "bob@b.io");
    in.level = KW_LEVEL_ADMIN;
    in.created_by = f->alice.id;
    in.created_at = T0;
    in.expires_at = T0 + 10 * SEC;
    assert_int_equal(kw_store_invite_insert(s, &in), KW_OK);
    assert_int_equal(kw_store_invite_by_hash(s, "hh", &out), KW_OK);
    assert_string_equal(out.target_email, "bob@b.io");
    assert_int_equal(out.level, KW_LEVEL_ADMIN);
    assert_int_equal(out.accepted_at, 0);
    assert_int_equal(kw_store_invite_accept(s, "inv-1", T0 + 10 * SEC), KW_ERR_NOTFOUND);  /* expired */
    assert_int_equal(kw_store_invite_accept(s, "inv-1", T0 + 5 * SEC), KW_OK);
    assert_int_equal(kw_store_invite_accept(s, "inv-1", T0 + 6 * SEC), KW_ERR_NOTFOUND);  /* once */
    assert_int_equal(kw_store_invite_by_hash(s, "hh", &out), KW_OK);
    assert_int_equal(out.accepted_at, T0 + 5 * SEC);

    kw_time at;
    for (int i = 0; i < 3; i++)
        assert_int_equal(kw_store_login_failure_add(s, "email:x", T0 + i * SEC, 900 * SEC), KW_OK);
    assert_int_equal(kw_store_login_failure_nth(s, "email:x", T0 - SEC, 3, &at), KW_OK);
    assert_int_equal(at, T0);
    assert_int_equal(kw_store_login_failure_nth(s, "email:x", T0 - SEC, 4, &at), KW_OK);
    assert_int_equal(at, 0);
    assert_int_equal(kw_store_login_failure_nth(s, "email:x", T0, 2, &at), KW_OK);
    assert_int_equal(at, T0 + SEC);
    assert_int_equal(kw_store_login_failure_nth(s, "email:y", T0 - SEC, 1, &at), KW_OK);
    assert_int_equal(at, 0);
    assert_int_equal(kw_store_login_failure_clear(s, "email:x"), KW_OK);
    assert_int_equal(kw_store_login_failure_nth(s, "email:x", T0 - SEC, 1, &at), KW_OK);
    assert_int_equal(at, 0);

    char secret[80], again[80];
    assert_int_equal(kw_store_meta_secret(s, "t", "first", secret, sizeof secret), KW_OK);
    assert_string_equal(secret, "first");
    assert_int_equal(kw_store_meta_secret(s, "t", "second", again, sizeof again), KW_OK);
    assert_string_equal(again, "first");  /* the first writer wins, for every instance */
}

/* Revoking by id: one statement finds and deletes, among the
 * organization's pending invitations only, and returns the row deleted. */
static void test_store_invite_delete(void **state)
{
    struct fixture *f = *state;
    kw_store *s = f->store;
    kw_org other;
    memset(&other, 0, sizeof other);
    strcpy(other.name, "Other");
    assert_int_equal(kw_store_org_create(s, &other), KW_OK);
    const char *ids[] = {"inv-live", "inv-used", "inv-old"};
    for (int i = 0; i < 3; i++) {
        kw_invite in = {0};
        strcpy(in.id, ids[i]);
        strcpy(in.org_id, f->org.id);
        snprintf(in.token_hash, sizeof in.token_hash, "h%d", i);
        snprintf(in.target_email, sizeof in.target_email, "p%d@b.io", i);
        in.level = KW_LEVEL_MEMBER;
        in.created_by = f->alice.id;
        in.created_at = T0;
        in.expires_at = T0 + (i == 2 ? 1 : 100) * SEC;
        assert_int_equal(kw_store_invite_insert(s, &in), KW_OK);
    }
    assert_int_equal(kw_store_invite_accept(s, "inv-used", T0), KW_OK);
    kw_time now = T0 + 10 * SEC;
    kw_invite out;
    int64_t n = 0;
    /* another organization's id never matches, and the invitation stays */
    assert_int_equal(kw_store_invite_delete(s, "inv-live", other.id, now, &out), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_invite_count(s, f->org.id, now, &n), KW_OK);
    assert_int_equal(n, 1);
    /* used, expired or unknown: not pending, not deleted */
    assert_int_equal(kw_store_invite_delete(s, "inv-used", f->org.id, now, &out), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_invite_delete(s, "inv-old", f->org.id, now, &out), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_invite_delete(s, "nope", f->org.id, now, &out), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_invite_by_hash(s, "h1", &out), KW_OK);
    assert_int_equal(kw_store_invite_by_hash(s, "h2", &out), KW_OK);
    /* its own organization's: deleted, and the row comes back */
    assert_int_equal(kw_store_invite_delete(s, "inv-live", f->org.id, now, &out), KW_OK);
    assert_string_equal(out.id, "inv-live");
    assert_string_equal(out.org_id, f->org.id);
    assert_string_equal(out.target_email, "p0@b.io");
    assert_int_equal(out.created_by, f->alice.id);
    assert_int_equal(kw_store_invite_by_hash(s, "h0", &out), KW_ERR_NOTFOUND);
    assert_int_equal(kw_store_invite_delete(s, "inv-live", f->org.id, now, &out), KW_ERR_NOTFOUND);
}

/* The sweep: failures older than `before` go whatever their key (keys
 * that never fail again included), at most `limit` per call, so the
 * server's batches end when one comes back short; newer rows stay. */
static void test_store_login_failure_sweep(void **state)
{
    struct fixture *f = *state;
    kw_store *s = f->store;
    char key[32];
    kw_time at;
    int64_t removed = -1;
    for (int i = 0; i < 25; i++) {  /* 25 keys that each failed once, long ago */
        snprintf(key, sizeof key, "ip:10.0.1.%d", i);
        assert_int_equal(kw_store_login_failure_add(s, key, T0 + i * SEC, KW_LOGIN_WINDOW), KW_OK);
    }
    for (int i = 0; i < 3; i++)  /* and one recent key */
        assert_int_equal(kw_store_login_failure_add(s, "ip:10.0.2.1", T0 + KW_LOGIN_WINDOW + i * SEC,
                                                    KW_LOGIN_WINDOW), KW_OK);
    kw_time before = T0 + KW_LOGIN_WINDOW;
    assert_int_equal(kw_store_login_failure_sweep(s, before, 10, &removed), KW_OK);
    assert_int_equal(removed, 10);
    assert_int_equal(kw_store_login_failure_sweep(s, before, 10, &removed), KW_OK);
    assert_int_equal(removed, 10);
    assert_int_equal(kw_store_login_failure_sweep(s, before, 10, &removed), KW_OK);
    assert_int_equal(removed, 5);
    assert_int_equal(kw_store_login_failure_sweep(s, before, 10, &removed), KW_OK);
    assert_int_equal(removed, 0);
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof key, "ip:10.0.1.%d", i);
        assert_int_equal(kw_store_login_failure_nth(s, key, 0, 1, &at), KW_OK);
        assert_int_equal(at, 0);
    }
    assert_int_equal(kw_store_login_failure_nth(s, "ip:10.0.2.1", 0, 3, &at), KW_OK);
    assert_int_equal(at, before);  /* not before itself: only older rows go */
}

static json_t *creds(const char *email, const char *password)
{
    return json_pack("{s:s, s:s}", "email", email, "password", password);
}

static void test_login_sessions_csrf(void **state)
{
    struct fixture *f = *state;
    kw_principal me = {0};
    me.session = 1;
    me.user_id = f->alice.id;
    kw_call c = {.store = f->store, .actor = &me, .ip = "cli"};
    kw_problem p;
    assert_int_equal(kw_user_set_password(&c, f->alice.id, "correct horse battery", &p), 0);

    kw_login login;
    int wait;
    json_t *good = creds("alice@a.io", "correct horse battery");
    json_t *bad = creds("alice@a.io", "wrong password!");
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.1", bad, &login, &wait, &p), 1);
    assert_int_equal(p.status, 400);
    assert_string_equal(p.detail, KW_MSG_BAD_LOGIN);
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.1", good, &login, &wait, &p), 0);
    assert_int_equal(strlen(login.token), KW_TOKEN_LEN);
    assert_int_equal(login.user.id, f->alice.id);

    kw_principal pr;
    assert_int_equal(kw_session_resolve(f->sessions, login.token, &pr), KW_VERIFY_OK);
    assert_true(pr.session);
    assert_int_equal(pr.user_id, f->alice.id);
    assert_int_equal(kw_session_resolve(f->sessions, "short", &pr), KW_VERIFY_INVALID);
    /* only the hash is stored */
    char hash[KW_TOKEN_HASH_LEN + 1];
    kw_session row;
    kw_token_hash(login.token, hash);
    assert_int_equal(kw_store_session_get(f->store, hash, &row), KW_OK);
    assert_int_equal(kw_store_session_get(f->store, login.token, &row), KW_ERR_NOTFOUND);

    /* CSRF: derived, stable for the session, different across sessions */
    char csrf[KW_TOKEN_LEN + 1];
    kw_session_csrf(f->sessions, login.token, csrf);
    assert_string_equal(csrf, login.csrf);
    assert_true(kw_session_csrf_ok(f->sessions, login.token, login.csrf));
    assert_false(kw_session_csrf_ok(f->sessions, login.token, NULL));
    assert_false(kw_session_csrf_ok(f->sessions, login.token, ""));
    kw_login other;
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.1", good, &other, &wait, &p), 0);
    assert_false(kw_session_csrf_ok(f->sessions, login.token, other.csrf));

    /* idle expiry (12 h), then absolute expiry (7 d) despite activity */
    kw_clock_set(T0 + KW_SESSION_IDLE + SEC);
    assert_int_equal(kw_session_resolve(f->sessions, login.token, &pr), KW_VERIFY_INVALID);
    kw_clock_set(T0);
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.1", good, &login, &wait, &p), 0);
    for (kw_time t = T0; t < T0 + KW_SESSION_ABSOLUTE; t += KW_SESSION_IDLE / 2) {
        kw_clock_set(t);
        assert_int_equal(kw_session_resolve(f->sessions, login.token, &pr), KW_VERIFY_OK);
    }
    kw_clock_set(T0 + KW_SESSION_ABSOLUTE);
    assert_int_equal(kw_session_resolve(f->sessions, login.token, &pr), KW_VERIFY_INVALID);

    /* logout; a password change; a deactivated user */
    kw_clock_set(T0);
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.1", good, &login, &wait, &p), 0);
    assert_int_equal(kw_session_logout(f->sessions, login.token), KW_OK);
    assert_int_equal(kw_session_resolve(f->sessions, login.token, &pr), KW_VERIFY_INVALID);
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.1", good, &login, &wait, &p), 0);
    assert_int_equal(kw_user_set_password(&c, f->alice.id, "another long one", &p), 0);
    assert_int_equal(kw_session_resolve(f->sessions, login.token, &pr), KW_VERIFY_INVALID);
    json_t *newer = creds("alice@a.io", "another long one");
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.1", newer, &login, &wait, &p), 0);
    assert_int_equal(kw_store_user_set_active(f->store, f->alice.id, 0), KW_OK);
    assert_int_equal(kw_session_resolve(f->sessions, login.token, &pr), KW_VERIFY_INVALID);
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.1", newer, &login, &wait, &p), 1);
    json_decref(good);
    json_decref(bad);
    json_decref(newer);
}

static void test_login_limit(void **state)
{
    struct fixture *f = *state;
    kw_principal me = {0};
    me.session = 1;
    kw_call c = {.store = f->store, .actor = &me, .ip = "cli"};
    kw_problem p;
    assert_int_equal(kw_user_set_password(&c, f->alice.id, "correct horse battery", &p), 0);
    json_t *good = creds("alice@a.io", "correct horse battery");
    json_t *bad = creds("Alice@A.io", "nope nope nope");
    kw_login login;
    int wait = 0;
    for (int i = 0; i < KW_LOGIN_MAX_PER_ACCOUNT; i++) {
        kw_clock_set(T0 + i * SEC);
        assert_int_equal(kw_session_login(f->sessions, "10.0.0.2", bad, &login, &wait, &p), 1);
        assert_int_equal(p.status, 400);
    }
    /* the account is locked for that address, even with the right password */
    kw_clock_set(T0 + 10 * SEC);
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.2", good, &login, &wait, &p), 1);
    assert_int_equal(p.status, 429);
    assert_int_equal(wait, (int)((KW_LOGIN_WINDOW - 10 * SEC) / SEC));
    /* never for the account alone: from another address the user signs in */
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.3", good, &login, &wait, &p), 0);
    /* the pair is free again once the oldest failure leaves the window */
    kw_clock_set(T0 + KW_LOGIN_WINDOW + SEC);
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.2", good, &login, &wait, &p), 0);

    /* per address: many accounts from one address */
    kw_clock_set(T0 + 2 * KW_LOGIN_WINDOW);
    for (int i = 0; i < KW_LOGIN_MAX_PER_IP; i++) {
        char email[32];
        snprintf(email, sizeof email, "nobody%d@x.io", i);
        json_t *b = creds(email, "whatever pass");
        assert_int_equal(kw_session_login(f->sessions, "10.0.0.9", b, &login, &wait, &p), 1);
        assert_int_equal(p.status, 400);
        json_decref(b);
    }
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.9", good, &login, &wait, &p), 1);
    assert_int_equal(p.status, 429);
    assert_true(wait >= 1);
    assert_int_equal(kw_session_login(f->sessions, "10.0.0.10", good, &login, &wait, &p), 0);
    json_decref(good);
    json_decref(bad);
}

/* The password-hash budget per address: each hash takes a unit and gives
 * its turn back when done; once the address's burst is spent both the
 * peek and the take refuse with 429, and another address still may. */
static void test_hash_budget(void **state)
{
    struct fixture *f = *state;
    kw_problem p;
    int wait = 0;
    for (int i = 0; i < KW_LOGIN_HASH_CLIENT_BURST; i++) {
        assert_int_equal(kw_session_hash_admissible(f->sessions, "10.0.3.1", &wait, &p), 0);
        assert_int_equal(kw_session_hash_take(f->sessions, "10.0.3.1", &wait, &p), 0);
        kw_session_hash_done(f->sessions);
    }
    assert_int_equal(kw_session_hash_admissible(f->sessions, "10.0.3.1", &wait, &p), 1);
    assert_int_equal(p.status, 429);
    assert_true(wait >= 1);
    wait = 0;
    assert_int_equal(kw_session_hash_take(f->sessions, "10.0.3.1", &wait, &p), 1);
    assert_int_equal(p.status, 429);
    assert_true(wait >= 1);
    assert_int_equal(kw_session_hash_take(f->sessions, "10.0.3.2", &wait, &p), 0);
    kw_session_hash_done(f->sessions);
}

static void test_invites(void **state)
{
    struct fixture *f = *state;
    kw_principal me = {0};
    me.session = 1;
    me.user_id = f->alice.id;
    me.n_scoped_teams = me.n_scoped_orgs = -1;
    kw_call c = {.store = f->store, .actor = &me, .ip = "127.0.0.1"};
    kw_problem p;
    kw_invite inv;
    char token[KW_TOKEN_LEN + 1];
    json_t *body = json_pack("{s:s, s:i}", "email", "bob@b.io", "level", KW_LEVEL_ADMIN);
    assert_int_equal(kw_invite_create(&c, f->org.id, KW_LEVEL_OWNER, body, &inv, token, &p), 0);
    json_decref(body);
    /* an admin cannot invite an owner; a bad email or level is refused */
    body = json_pack("{s:s, s:i}", "email", "eve@b.io", "level", KW_LEVEL_OWNER);
    assert_int_equal(kw_invite_create(&c, f->org.id, KW_LEVEL_ADMIN, body, &inv, token, &p), 1);
    assert_int_equal(p.status, 403);
    json_decref(body);
    body = json_pack("{s:s}", "email", "not-an-email");
    assert_int_equal(kw_invite_create(&c, f->org.id, KW_LEVEL_OWNER, body, &inv, token, &p), 1);
    assert_int_equal(p.status, 400);
    json_decref(body);
    body = json_pack("{s:s, s:i}", "email", "eve@b.io", "level", 3);
    assert_int_equal(kw_invite_create(&c, f->org.id, KW_LEVEL_OWNER, body, &inv, token, &p), 1);
    assert_string_equal(p.attr, "level");
    json_decref(body);

    body = json_pack("{s:s, s:i}", "email", "bob@b.io", "level", KW_LEVEL_ADMIN);
    assert_int_equal(kw_invite_create(&c, f->org.id, KW_LEVEL_OWNER, body, &inv, token, &p), 0);
    json_decref(body);
    kw_invite seen;
    assert_int_equal(kw_invite_lookup(f->store, token, &seen, &p), 0);
    assert_string_equal(seen.target_email, "bob@b.io");

    kw_login login;
    int wait;
    json_t *accept = json_pack("{s:s, s:s, s:s}", "token", token, "password", "short",
                               "first_name", "Bob");
    assert_int_equal(kw_invite_accept(f->sessions, "127.0.0.1", accept, &login, &wait, &p), 1);
    assert_string_equal(p.attr, "password");
    json_decref(accept);
    accept = json_pack("{s:s, s:s, s:s}", "token", token, "password", "bobs long password",
                       "first_name", "Bob");
    assert_int_equal(kw_invite_accept(f->sessions, "127.0.0.1", accept, &login, &wait, &p), 0);
    assert_string_equal(login.user.email, "bob@b.io");
    assert_string_equal(login.user.first_name, "Bob");
    int level;
    assert_int_equal(kw_store_membership_level(f->store, login.user.id, f->org.id, &level), KW_OK);
    assert_int_equal(level, KW_LEVEL_ADMIN);
    kw_principal pr;
    assert_int_equal(kw_session_resolve(f->sessions, login.token, &pr), KW_VERIFY_OK);
    /* the link works once */
    assert_int_equal(kw_invite_accept(f->sessions, "127.0.0.1", accept, &login, &wait, &p), 1);
    assert_string_equal(p.attr, "token");
    assert_int_equal(kw_invite_lookup(f->store, token, &seen, &p), 1);
    assert_int_equal(p.status, 404);
    json_decref(accept);
    /* and the new user signs in with the chosen password */
    json_t *good = creds("bob@b.io", "bobs long password");
    assert_int_equal(kw_session_login(f->sessions, "127.0.0.1", good, &login, &wait, &p), 0);
    json_decref(good);

    /* revoked only through its own organization; then its link is dead */
    body = json_pack("{s:s}", "email", "dave@d.io");
    assert_int_equal(kw_invite_create(&c, f->org.id, KW_LEVEL_OWNER, body, &inv, token, &p), 0);
    json_decref(body);
    kw_org other;
    memset(&other, 0, sizeof other);
    strcpy(other.name, "Other");
    assert_int_equal(kw_store_org_create(f->store, &other), KW_OK);
    assert_int_equal(kw_invite_revoke(&c, other.id, inv.id, &p), 1);
    assert_int_equal(p.status, 404);
    assert_int_equal(kw_invite_lookup(f->store, token, &seen, &p), 0);
    assert_int_equal(kw_invite_revoke(&c, f->org.id, inv.id, &p), 0);
    assert_int_equal(kw_invite_lookup(f->store, token, &seen, &p), 1);
    assert_int_equal(p.status, 404);
    assert_int_equal(kw_invite_revoke(&c, f->org.id, inv.id, &p), 1);
    assert_int_equal(p.status, 404);

    /* expired after 7 days */
    body = json_pack("{s:s}", "email", "carol@c.io");
    assert_int_equal(kw_invite_create(&c, f->org.id, KW_LEVEL_OWNER, body, &inv, token, &p), 0);
    json_decref(body);
    kw_clock_set(T0 + KW_INVITE_TTL);
    assert_int_equal(kw_invite_lookup(f->store, token, &seen, &p), 1);
}

#define CASES(setup)                                                                   \
    {                                                                                  \
        cmocka_unit_test_setup_teardown(test_password_hashing, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_store_sessions, setup, teardown),         \
        cmocka_unit_test_setup_teardown(test_store_invites_and_attempts, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_store_invite_delete, setup, teardown),    \
        cmocka_unit_test_setup_teardown(test_store_login_failure_sweep, setup, teardown), \
        cmocka_unit_test_setup_teardown(test_login_sessions_csrf, setup, teardown),    \
        cmocka_unit_test_setup_teardown(test_login_limit, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_hash_budget, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_invites, setup, teardown),                \
    }

int main(void)
{
    const struct CMUnitTest sqlite_tests[] = CASES(setup_sqlite);
    int failed = cmocka_run_group_tests_name("session/sqlite", sqlite_tests, NULL, NULL);
    pg_admin_url = getenv("KEYWARD_TEST_PG_URL");
    if (!pg_admin_url || !*pg_admin_url || !strstr(pg_admin_url, "://")) {
        printf("[  SKIPPED ] session/postgresql: KEYWARD_TEST_PG_URL is not set\n");
        return failed;
    }
    const struct CMUnitTest pg_tests[] = CASES(setup_pg);
    return failed + cmocka_run_group_tests_name("session/postgresql", pg_tests, NULL, NULL);
}
