/* store_sqlite.c — the embedded SQLite backend (the default).
 *
 * Concurrency model: one connection per thread, opened lazily and kept for
 * the thread's life (the HTTP server uses a fixed thread pool), each with
 * its own cache of prepared statements.  The database runs in WAL mode, so
 * readers never block on the writer and the verification path takes no
 * lock of ours at all; writers queue on SQLite's own lock (busy_timeout).
 * Multi-row writes use BEGIN IMMEDIATE so the write lock is taken up front
 * instead of failing half-way on an upgrade.
 *
 * This file holds only what the whole backend shares: the connections and
 * their statement caches, the small kw_sq_* helpers (store_backend.h), the
 * migrations and the ops table.  Each kind of stored object lives in its
 * own store_sqlite_*.c file, which keeps every file short enough to read
 * whole. */
#include "store_backend.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store_schema.h"

struct conn {
    sqlite3 *db;
    /* One cache per file that owns statements, indexed by its enum. */
    sqlite3_stmt *user_stmts[KW_SQ_USER_COUNT_STMTS];          /* store_sqlite_users.c */
    sqlite3_stmt *pkey_stmts[KW_SQ_PKEY_COUNT_STMTS];          /* store_sqlite_pkey.c */
    sqlite3_stmt *psk_stmts[KW_SQ_PSK_COUNT_STMTS];            /* store_sqlite_psk.c */
    sqlite3_stmt *flag_stmts[KW_SQ_FLAG_COUNT_STMTS];          /* store_sqlite_flags.c */
    sqlite3_stmt *activity_stmts[KW_SQ_ACTIVITY_COUNT_STMTS];  /* store_sqlite_activity.c */
    sqlite3_stmt *ev_stmts[KW_SQ_EV_COUNT_STMTS];              /* store_sqlite_events.c */
    struct conn *next;  /* every connection, for close */
};

struct sqlite_store {
    kw_store base;
    char *path;
    pthread_key_t tls;
    pthread_mutex_t conns_lock;  /* guards the list only; taken once per thread */
    struct conn *conns;
};

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return KW_OK;
    case SQLITE_CONSTRAINT: return KW_ERR_EXISTS;
    case SQLITE_NOMEM: return KW_ERR_NOMEM;
    case SQLITE_BUSY: case SQLITE_LOCKED: return KW_ERR_UNAVAILABLE;
    default: return KW_ERR_DB;
    }
}

static int open_db(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return KW_ERR_DB;
    }
    sqlite3_busy_timeout(db, 5000);
    /* WAL: readers do not block the writer or each other.  NORMAL sync is
     * durable across process crashes (the crash test's concern); FULL would
     * add an fsync per commit for power loss. */
    rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                          "PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return KW_ERR_DB;
    }
    *out = db;
    return KW_OK;
}

static struct conn *conn_get(struct sqlite_store *s)
{
    struct conn *c = pthread_getspecific(s->tls);
    if (c) return c;
    c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (open_db(s->path, &c->db)) {
        free(c);
        return NULL;
    }
    pthread_mutex_lock(&s->conns_lock);
    c->next = s->conns;
    s->conns = c;
    pthread_mutex_unlock(&s->conns_lock);
    pthread_setspecific(s->tls, c);
    return c;
}

/* The cached prepared statement in *slot (prepared on first use), reset and
 * ready to bind. */
static sqlite3_stmt *cached(sqlite3 *db, sqlite3_stmt **slot, const char *sql)
{
    if (!*slot &&
        sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK)
        return NULL;
    return *slot;
}

static int finish(sqlite3_stmt *st, int rc)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    size_t n = v ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= size) n = size - 1;
    if (n) memcpy(dst, v, n);
    dst[n] = '\0';
}

static char *dup_col(sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    return strdup(v ? (const char *)v : "");
}

/* Runs a statement that returns no rows; KW_ERR_NOTFOUND when it changed
 * nothing and `must_change` is set. */
static int exec_write(struct sqlite_store *s, sqlite3_stmt *st, int must_change)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return finish(st, map_rc(rc));
    int changed = sqlite3_changes(conn_get(s)->db);
    return finish(st, must_change && changed == 0 ? KW_ERR_NOTFOUND : KW_OK);
}

/* Steps a single-row query; KW_ERR_NOTFOUND when there is no row.  The
 * caller reads columns and then calls finish(). */
static int step_one(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return KW_OK;
    finish(st, 0);
    return rc == SQLITE_DONE ? KW_ERR_NOTFOUND : map_rc(rc);
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    return map_rc(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

/* ---- helpers for the store_sqlite_*.c files (store_backend.h) ------------ */

#define S(base) ((struct sqlite_store *)(base))

sqlite3_stmt *kw_sq_user_stmt(kw_store *b, int id)
{
    struct conn *c = conn_get(S(b));
    if (!c || id < 0 || id >= KW_SQ_USER_COUNT_STMTS) return NULL;
    return cached(c->db, &c->user_stmts[id], kw_sq_user_sql[id]);
}
sqlite3_stmt *kw_sq_pkey_stmt(kw_store *b, int id)
{
    struct conn *c = conn_get(S(b));
    if (!c || id < 0 || id >= KW_SQ_PKEY_COUNT_STMTS) return NULL;
    return cached(c->db, &c->pkey_stmts[id], kw_sq_pkey_sql[id]);
}
sqlite3_stmt *kw_sq_stmt(kw_store *b, int id)
{
    struct conn *c = conn_get(S(b));
    if (!c || id < 0 || id >= KW_SQ_PSK_COUNT_STMTS) return NULL;
    return cached(c->db, &c->psk_stmts[id], kw_sq_psk_sql[id]);
}
sqlite3_stmt *kw_sq_flag_stmt(kw_store *b, int id)
{
    struct conn *c = conn_get(S(b));
    if (!c || id < 0 || id >= KW_SQ_FLAG_COUNT_STMTS) return NULL;
    return cached(c->db, &c->flag_stmts[id], kw_sq_flag_sql[id]);
}
sqlite3_stmt *kw_sq_activity_stmt(kw_store *b, int id)
{
    struct conn *c = conn_get(S(b));
    if (!c || id < 0 || id >= KW_SQ_ACTIVITY_COUNT_STMTS) return NULL;
    return cached(c->db, &c->activity_stmts[id], kw_sq_activity_sql[id]);
}
sqlite3_stmt *kw_sq_ev_stmt(kw_store *b, int id)
{
    struct conn *c = conn_get(S(b));
    if (!c || id < 0 || id >= KW_SQ_EV_COUNT_STMTS) return NULL;
    return cached(c->db, &c->ev_stmts[id], kw_sq_ev_sql[id]);
}
/* The thread's connection, for the statements prepared per call. */
sqlite3 *kw_sq_db(kw_store *b)
{
    struct conn *c = conn_get(S(b));
    return c ? c->db : NULL;
}
int kw_sq_finish(sqlite3_stmt *st, int rc) { return finish(st, rc); }
int kw_sq_step_one(sqlite3_stmt *st) { return step_one(st); }
int kw_sq_exec_write(kw_store *b, sqlite3_stmt *st, int must_change)
{
    return exec_write(S(b), st, must_change);
}
int kw_sq_map_rc(int rc) { return map_rc(rc); }
void kw_sq_copy_col(sqlite3_stmt *st, int col, char *dst, size_t size) { copy_col(st, col, dst, size); }

void kw_sq_bind_text(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

void kw_sq_bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

void kw_sq_bind_int64_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}
char *kw_sq_dup_col(sqlite3_stmt *st, int col) { return dup_col(st, col); }
int kw_sq_count(sqlite3_stmt *st, int64_t *count)
{
    if (!st) return KW_ERR_DB;
    int rc = step_one(st);
    if (rc) return rc;
    *count = sqlite3_column_int64(st, 0);
    return finish(st, KW_OK);
}

/* ---- schema, transactions, lifecycle ------------------------------------- */

static int migrate(struct sqlite_store *s)
{
    struct conn *c = conn_get(s);
    if (!c) return KW_ERR_DB;
    /* BEGIN IMMEDIATE: two processes starting on one file apply each
     * migration once; the second sees the version the first wrote. */
    int rc = exec_sql(c->db, "BEGIN IMMEDIATE");
    if (rc) return rc;
    rc = exec_sql(c->db, "CREATE TABLE IF NOT EXISTS schema_migrations("
                         "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    int current = 0;
    sqlite3_stmt *st = NULL;
    if (!rc && sqlite3_prepare_v2(c->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                                  -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    for (int v = current + 1; !rc && v <= kw_sqlite_migration_count; v++) {
        rc = exec_sql(c->db, kw_sqlite_migrations[v - 1]);
        if (!rc) {
            char sql[128];
            snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES (%d, %lld)", v,
                     (long long)kw_now());
            rc = exec_sql(c->db, sql);
        }
    }
    if (rc) {
        exec_sql(c->db, "ROLLBACK");
        return rc;
    }
    return exec_sql(c->db, "COMMIT");
}

static void sqlite_close(kw_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        for (int i = 0; i < KW_SQ_USER_COUNT_STMTS; i++) sqlite3_finalize(c->user_stmts[i]);
        for (int i = 0; i < KW_SQ_PKEY_COUNT_STMTS; i++) sqlite3_finalize(c->pkey_stmts[i]);
        for (int i = 0; i < KW_SQ_PSK_COUNT_STMTS; i++) sqlite3_finalize(c->psk_stmts[i]);
        for (int i = 0; i < KW_SQ_FLAG_COUNT_STMTS; i++) sqlite3_finalize(c->flag_stmts[i]);
        for (int i = 0; i < KW_SQ_ACTIVITY_COUNT_STMTS; i++) sqlite3_finalize(c->activity_stmts[i]);
        for (int i = 0; i < KW_SQ_EV_COUNT_STMTS; i++) sqlite3_finalize(c->ev_stmts[i]);
        sqlite3_close(c->db);
        free(c);
    }
    pthread_key_delete(s->tls);
    pthread_mutex_destroy(&s->conns_lock);
    free(s->path);
    free(s);
}

static int sqlite_schema_version(kw_store *base, int *version)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct conn *c = conn_get(s);
    if (!c) return KW_ERR_DB;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT MAX(version) FROM schema_migrations", -1, &st, NULL))
        return KW_ERR_DB;
    int rc = sqlite3_step(st) == SQLITE_ROW ? KW_OK : KW_ERR_DB;
    *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

static int sqlite_begin(kw_store *base)
{
    struct conn *c = conn_get((struct sqlite_store *)base);
    return c ? exec_sql(c->db, "BEGIN IMMEDIATE") : KW_ERR_DB;
}

static int sqlite_commit(kw_store *base)
{
    struct conn *c = conn_get((struct sqlite_store *)base);
    return c ? exec_sql(c->db, "COMMIT") : KW_ERR_DB;
}

static void sqlite_rollback(kw_store *base)
{
    struct conn *c = conn_get((struct sqlite_store *)base);
    if (c) exec_sql(c->db, "ROLLBACK");
}

/* Looks, never opens: a thread without a connection has no transaction. */
static int sqlite_in_transaction(kw_store *base)
{
    struct conn *c = pthread_getspecific(((struct sqlite_store *)base)->tls);
    return c && !sqlite3_get_autocommit(c->db);
}

static const struct kw_store_ops SQLITE_OPS = {
    .name = "sqlite",
    .close = sqlite_close,
    .schema_version = sqlite_schema_version,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .in_transaction = sqlite_in_transaction,
    .user_count = kw_sq_user_count,
    .user_create = kw_sq_user_create,
    .user_get = kw_sq_user_get,
    .user_by_email = kw_sq_user_by_email,
    .user_set_active = kw_sq_user_set_active,
    .org_create = kw_sq_org_create,
    .org_get = kw_sq_org_get,
    .membership_set = kw_sq_membership_set,
    .membership_level = kw_sq_membership_level,
    .user_orgs = kw_sq_user_orgs,
    .project_create = kw_sq_project_create,
    .project_get = kw_sq_project_get,
    .project_by_token = kw_sq_project_by_token,
    .user_projects = kw_sq_user_projects,
    .project_set_token = kw_sq_project_set_token,
    .pkey_insert = kw_sq_pkey_insert,
    .pkey_get = kw_sq_pkey_get,
    .pkey_list = kw_sq_pkey_list,
    .pkey_update = kw_sq_pkey_update,
    .pkey_roll = kw_sq_pkey_roll,
    .pkey_delete = kw_sq_pkey_delete,
    .pkey_by_hash = kw_sq_pkey_by_hash,
    .pkey_touch = kw_sq_pkey_touch,
    .pkey_rehash = kw_sq_pkey_rehash,
    .pkey_legacy_count = kw_sq_pkey_legacy_count,
    .psk_insert = kw_sq_psk_insert,
    .psk_get = kw_sq_psk_get,
    .psk_list = kw_sq_psk_list,
    .psk_count = kw_sq_psk_count,
    .psk_update = kw_sq_psk_update,
    .psk_roll = kw_sq_psk_roll,
    .psk_delete = kw_sq_psk_delete,
    .psk_by_hash = kw_sq_psk_by_hash,
    .psk_touch = kw_sq_psk_touch,
    .flag_insert = kw_sq_flag_insert,
    .flag_get = kw_sq_flag_get,
    .flag_list = kw_sq_flag_list,
    .flag_update = kw_sq_flag_update,
    .activity_insert = kw_sq_activity_insert,
    .activity_list = kw_sq_activity_list,
    .activity_count = kw_sq_activity_count,
    .auth_generation = kw_sq_auth_generation,
    .flags_generation = kw_sq_flags_generation,
    .pkey_auth_by_hash = kw_sq_pkey_auth_by_hash,
    .events_insert = kw_sq_events_insert,
    .events_query = kw_sq_events_query,
    .endpoint_insert = kw_sq_endpoint_insert,
    .endpoint_get = kw_sq_endpoint_get,
    .endpoint_list = kw_sq_endpoint_list,
    .endpoint_count = kw_sq_endpoint_count,
    .endpoint_update = kw_sq_endpoint_update,
    .endpoint_delete = kw_sq_endpoint_delete,
    .key_scopes_used_many = kw_sq_key_scopes_used_many,
    .key_touch_many = kw_sq_key_touch_many,
    .rolled_set = kw_sq_rolled_set,
    .rolled_get = kw_sq_rolled_get,
    .rolled_expiry = kw_sq_rolled_expiry,
    .rolled_live = kw_sq_rolled_live,
    .user_list = kw_sq_user_list,
    .project_list = kw_sq_project_list,
    .import_user = kw_sq_import_user,
    .import_org = kw_sq_import_org,
    .import_project = kw_sq_import_project,
    .import_pkey = kw_sq_import_pkey,
    .import_done = kw_sq_import_done,
    .user_password_get = kw_sq_user_password_get,
    .user_password_set = kw_sq_user_password_set,
    .session_insert = kw_sq_session_insert,
    .session_get = kw_sq_session_get,
    .session_touch = kw_sq_session_touch,
    .session_delete = kw_sq_session_delete,
    .session_delete_user = kw_sq_session_delete_user,
    .invite_insert = kw_sq_invite_insert,
    .invite_by_hash = kw_sq_invite_by_hash,
    .invite_accept = kw_sq_invite_accept,
    .login_failure_add = kw_sq_login_failure_add,
    .login_failure_nth = kw_sq_login_failure_nth,
    .login_failure_clear = kw_sq_login_failure_clear,
    .meta_secret = kw_sq_meta_secret,
};

int kw_store_sqlite_open(const char *path, kw_store **out)
{
    *out = NULL;
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    s->base.ops = &SQLITE_OPS;
    s->path = strdup(path);
    pthread_mutex_init(&s->conns_lock, NULL);
    if (!s->path || pthread_key_create(&s->tls, NULL)) {
        free(s->path);
        free(s);
        return KW_ERR_NOMEM;
    }
    int rc = migrate(s);
    if (rc) {
        sqlite_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return KW_OK;
}
