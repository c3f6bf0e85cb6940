/* store_fixture.h — the fixture every store test file shares: a fresh
 * store per test on each backend, and the rows most tests start from.
 *
 * SQLite always (a temp file); PostgreSQL when KEYWARD_TEST_PG_URL points
 * at a server the suite may create databases on (scripts/pg-test-cluster
 * starts a throwaway one): a new database named after the pid and a
 * counter, dropped afterwards, so runs never collide.  A test file sets
 * pg_admin_url from the environment before running its PostgreSQL group
 * (store_fixture_pg_url).  Each test file is its own program and uses
 * only some of these functions: FIXTURE keeps the rest from warning. */
#ifndef KW_STORE_FIXTURE_H
#define KW_STORE_FIXTURE_H

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

#define FIXTURE static __attribute__((unused))

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
FIXTURE int pg_url_for(const char *admin, const char *db, char *out, size_t size)
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

FIXTURE int pg_admin(const char *sql)
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

FIXTURE int open_store(struct fixture *f)
{
    return kw_store_open(f->url, &f->store);
}

FIXTURE int setup_sqlite(void **state)
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

FIXTURE int setup_pg(void **state)
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

FIXTURE int teardown(void **state)
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

FIXTURE int64_t make_user(kw_store *s, const char *email)
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

FIXTURE void make_pkey(kw_pkey *k, const char *id, int64_t user_id, const char *secure, kw_time at)
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

FIXTURE int64_t make_project(kw_store *s, int64_t user_id, const char *token)
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

FIXTURE void make_psk(kw_psk *k, const char *id, int64_t project_id, int64_t by, kw_time at)
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

/* KEYWARD_TEST_PG_URL, or NULL (and a SKIPPED line naming `group`) when
 * the PostgreSQL group cannot run. */
FIXTURE const char *store_fixture_pg_url(const char *group)
{
    pg_admin_url = getenv("KEYWARD_TEST_PG_URL");
    if (pg_admin_url && *pg_admin_url) return pg_admin_url;
    printf("[  SKIPPED ] %s: KEYWARD_TEST_PG_URL is not set "
           "(start a server with scripts/pg-test-cluster start)\n", group);
    return NULL;
}

#endif
