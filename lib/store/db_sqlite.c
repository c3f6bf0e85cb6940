/* db_sqlite.c — the SQLite driver of the database layer (the default
 * store: embedded, one file).
 *
 * Concurrency model: one connection per thread, opened lazily and kept for
 * the thread's life (the HTTP server uses a fixed thread pool), each with
 * its own cache of prepared statements.  The database runs in WAL mode, so
 * readers never block on the writer and the verification path takes no
 * lock of ours at all; writers queue on SQLite's own lock (busy_timeout).
 * Multi-row writes use BEGIN IMMEDIATE so the write lock is taken up front
 * instead of failing half-way on an upgrade.
 *
 * This is the only file that knows sqlite3: connections, the statement
 * cache, stepping and columns, error mapping, transactions and the
 * migrations.  The stored objects are written once against db.h. */
#include "store/db.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyward/keyward.h"
#include "store/store_schema.h"

/* A statement of the table, prepared on one thread's connection. */
struct sq_stmt {
    kw_db_stmt base;
    sqlite3_stmt *st;
    int adhoc;  /* prepared for one call: finalized, not reset, by finish */
};

struct conn {
    sqlite3 *db;
    int64_t deadline_ns;  /* CLOCK_MONOTONIC; set while a time limit is (sqlite_time_limit) */
    struct sq_stmt stmts[KW_SQL_COUNT];  /* indexed by statement id, prepared on first use */
    struct conn *next;  /* every connection, for close */
};

struct sqlite_store {
    kw_store base;
    char *path;
    pthread_key_t tls;
    pthread_mutex_t conns_lock;  /* guards the list only; taken once per thread */
    struct conn *conns;
};

/* Maps a result code; a failure is noted in SQLite's words (db may be
 * NULL: the code's own text then). */
static int map_rc(sqlite3 *db, int rc)
{
    int primary = rc & 0xff;
    if (primary == SQLITE_OK || primary == SQLITE_DONE || primary == SQLITE_ROW) return KW_OK;
    kw_db_note_error(sqlite3_errstr(rc), db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    switch (primary) {
    case SQLITE_CONSTRAINT: return KW_ERR_EXISTS;
    case SQLITE_NOMEM: return KW_ERR_NOMEM;
    case SQLITE_BUSY: case SQLITE_LOCKED: return KW_ERR_UNAVAILABLE;
    case SQLITE_INTERRUPT: return KW_ERR_TIMEOUT;  /* only the time limit interrupts */
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

static int exec_sql(sqlite3 *db, const char *sql)
{
    return map_rc(db, sqlite3_exec(db, sql, NULL, NULL, NULL));
}

#define S(base) ((struct sqlite_store *)(base))

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
        for (int i = 0; i < KW_SQL_COUNT; i++) sqlite3_finalize(c->stmts[i].st);
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


/* ---- time limit ------------------------------------------------------------ */

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* SQLite calls this every PROGRESS_STEPS virtual-machine instructions of
 * the statement being stepped; non-zero interrupts it (SQLITE_INTERRUPT).
 * 1000 instructions take microseconds, so the deadline is met closely and
 * the clock is read rarely enough not to show. */
#define PROGRESS_STEPS 1000
static int past_deadline(void *arg)
{
    const struct conn *c = arg;
    return monotonic_ns() >= c->deadline_ns;
}

/* Installed only while a caller's bounded work runs, and removed after:
 * the store's own statements (a verification, a capture) never pay for it
 * and are never interrupted. */
static int sqlite_time_limit(kw_store *base, int64_t ms)
{
    struct conn *c = conn_get(S(base));
    if (!c) return KW_ERR_UNAVAILABLE;
    if (ms <= 0) {
        sqlite3_progress_handler(c->db, 0, NULL, NULL);
        return KW_OK;
    }
    c->deadline_ns = monotonic_ns() + ms * 1000000;
    sqlite3_progress_handler(c->db, PROGRESS_STEPS, past_deadline, c);
    return KW_OK;
}

/* ---- the driver (db.h) ----------------------------------------------------- */

static const struct kw_db_driver SQLITE_DRIVER;
#define SQ(st) (((struct sq_stmt *)(st))->st)

static int sq_prepare(kw_store *base, enum kw_sql_id id, kw_db_stmt **out)
{
    struct conn *c = conn_get(S(base));
    if (!c) return KW_ERR_UNAVAILABLE;
    struct sq_stmt *s = &c->stmts[id];
    if (!s->st) {
        int rc = sqlite3_prepare_v3(c->db, kw_sql[id].sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL);
        if (rc != SQLITE_OK) return map_rc(c->db, rc);
        s->base.driver = &SQLITE_DRIVER;
    }
    *out = &s->base;
    return KW_OK;
}

static int sq_prepare_sql(kw_store *base, const char *sql, kw_db_stmt **out)
{
    struct conn *c = conn_get(S(base));
    if (!c) return KW_ERR_UNAVAILABLE;
    struct sq_stmt *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &s->st, NULL);
    if (rc != SQLITE_OK) {
        free(s);
        return map_rc(c->db, rc);
    }
    s->base.driver = &SQLITE_DRIVER;
    s->adhoc = 1;
    *out = &s->base;
    return KW_OK;
}

static void sq_bind_text(kw_db_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(SQ(st), i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(SQ(st), i);
}

static void sq_bind_int(kw_db_stmt *st, int i, int64_t v) { sqlite3_bind_int64(SQ(st), i, v); }

static int sq_step(kw_db_stmt *st)
{
    int rc = sqlite3_step(SQ(st));
    if (rc == SQLITE_ROW) return KW_DB_ROW;
    if (rc == SQLITE_DONE) return KW_OK;
    return map_rc(sqlite3_db_handle(SQ(st)), rc);
}

static const char *sq_col_text(kw_db_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(SQ(st), col);
    return v ? (const char *)v : "";
}

static int64_t sq_col_int(kw_db_stmt *st, int col) { return sqlite3_column_int64(SQ(st), col); }
static int sq_col_null(kw_db_stmt *st, int col) { return sqlite3_column_type(SQ(st), col) == SQLITE_NULL; }
static int64_t sq_changes(kw_db_stmt *st) { return sqlite3_changes(sqlite3_db_handle(SQ(st))); }

static void sq_finish(kw_db_stmt *st)
{
    struct sq_stmt *s = (struct sq_stmt *)st;
    if (s->adhoc) {
        sqlite3_finalize(s->st);
        free(s);
        return;
    }
    sqlite3_reset(s->st);
    sqlite3_clear_bindings(s->st);
}

static const struct kw_db_driver SQLITE_DRIVER = {
    .name = "sqlite",
    .dialect = KW_DB_SQLITE,
    .close = sqlite_close,
    .prepare = sq_prepare,
    .prepare_sql = sq_prepare_sql,
    .bind_text = sq_bind_text,
    .bind_int = sq_bind_int,
    .step = sq_step,
    .col_text = sq_col_text,
    .col_int = sq_col_int,
    .col_null = sq_col_null,
    .changes = sq_changes,
    .finish = sq_finish,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .in_transaction = sqlite_in_transaction,
    .schema_version = sqlite_schema_version,
    .wait_change = NULL,
    .time_limit = sqlite_time_limit,
};

int kw_db_sqlite_open(const char *path, kw_store **out)
{
    *out = NULL;
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    s->base.driver = &SQLITE_DRIVER;
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
