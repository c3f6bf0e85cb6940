/* db_pg.c — the PostgreSQL driver of the database layer (libpq), for
 * several keyward instances sharing one database: its statements, its
 * transactions and migrations, and the driver table db.h calls through.
 * Sessions (one per thread) are db_pg_session.c's, change notifications
 * db_pg_listen.c's.
 *
 * Statements of the table are prepared (PQprepare, ?N rewritten to $N) on
 * first use per connection and run with PQexecPrepared and text
 * parameters.  When the server goes away the call fails with
 * KW_ERR_UNAVAILABLE; the next call on that thread sees CONNECTION_BAD,
 * resets the session and prepares statements again.
 *
 * Migrations run in one transaction that first takes
 * pg_advisory_xact_lock(MIGRATION_LOCK): several instances starting at once
 * queue on the lock and the later ones find the schema already current. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store/db_pg.h"
#include "store/store_schema.h"

/* Arbitrary, fixed: "kwmg" in ASCII.  Only keyward's migrations take it. */
#define MIGRATION_LOCK 0x6b776d67

#define P(base) ((struct pg_store *)(base))
static const struct kw_db_driver PG_DRIVER;

/* Inside an explicit transaction a failed statement would abort the whole
 * transaction in PostgreSQL, while in SQLite only the statement is undone
 * and the caller may go on (e.g. treat KW_ERR_EXISTS as "already there")
 * and commit.  To answer alike, each statement run inside a transaction is
 * fenced by a savepoint, rolled back to on failure.  That costs two more
 * round trips per statement, but only in explicit transactions, which
 * keyward uses for rare multi-row writes, never on the verification path. */
static int fence(struct pg_conn *c, int in_tx, int rc)
{
    if (!in_tx) return rc;
    if (rc && PQstatus(c->db) == CONNECTION_OK)
        kw_pg_exec(c, "ROLLBACK TO SAVEPOINT kw_stmt");
    else if (!rc)
        rc = kw_pg_exec(c, "RELEASE SAVEPOINT kw_stmt");
    return rc;
}

static int fence_open(struct pg_conn *c, int *in_tx)
{
    *in_tx = PQtransactionStatus(c->db) == PQTRANS_INTRANS;
    return *in_tx ? kw_pg_exec(c, "SAVEPOINT kw_stmt") : KW_OK;
}

/* ---- the statement half of the driver (db.h) ------------------------------ */

/* ?N → $N outside string literals; the statement table is written for
 * SQLite and PostgreSQL spells parameters with a dollar. */
static char *dollar_params(const char *sql)
{
    size_t n = strlen(sql);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    int quoted = 0;
    for (size_t i = 0; i <= n; i++) {
        if (sql[i] == '\'') quoted = !quoted;
        out[i] = sql[i] == '?' && !quoted ? '$' : sql[i];
    }
    return out;
}

static void stmt_reset(struct pg_stmt *s)
{
    PQclear(s->res);
    s->res = NULL;
    s->row = -1;
    s->n = 0;
    memset(s->v, 0, sizeof s->v);
}

static int kw_pg_prepare(kw_store *b, enum kw_sql_id id, kw_db_stmt **out)
{
    struct pg_conn *c;
    int rc = kw_pg_conn_get((struct pg_store *)b, &c);
    if (rc) return rc;
    struct pg_stmt *s = &c->stmts[id];
    if (!s->base.driver) {
        s->base.driver = &PG_DRIVER;
        s->conn = c;
        s->id = (int)id;
        s->row = -1;
    }
    if (!c->table_prepared[id]) {
        const char *text = kw_sql[id].pg ? kw_sql[id].pg : kw_sql[id].sql;
        char *sql = dollar_params(text), name[16];
        if (!sql) return KW_ERR_NOMEM;
        snprintf(name, sizeof name, "q%d", (int)id);
        /* Prepared outside any savepoint: a PREPARE is not undone by
         * ROLLBACK TO, and it does not fail on data. */
        PGresult *ok = NULL;
        rc = kw_pg_take_result(c->db, PQprepare(c->db, name, sql, 0, NULL), &ok);
        PQclear(ok);
        free(sql);
        if (rc) return rc;
        c->table_prepared[id] = 1;
    }
    stmt_reset(s);
    *out = &s->base;
    return KW_OK;
}

static int kw_pg_prepare_sql(kw_store *b, const char *text, kw_db_stmt **out)
{
    struct pg_conn *c;
    int rc = kw_pg_conn_get((struct pg_store *)b, &c);
    if (rc) return rc;
    struct pg_stmt *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    s->adhoc_sql = dollar_params(text);
    if (!s->adhoc_sql) {
        free(s);
        return KW_ERR_NOMEM;
    }
    s->base.driver = &PG_DRIVER;
    s->conn = c;
    s->id = -1;
    s->row = -1;
    *out = &s->base;
    return KW_OK;
}

static void kw_pg_bind_text(kw_db_stmt *st, int i, const char *v)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    if (i < 1 || i > PG_MAX_PARAMS) return;
    s->v[i - 1] = v;
    if (i > s->n) s->n = i;
}

static void kw_pg_bind_int(kw_db_stmt *st, int i, int64_t v)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    if (i < 1 || i > PG_MAX_PARAMS) return;
    snprintf(s->buf[i - 1], sizeof s->buf[i - 1], "%" PRId64, v);
    kw_pg_bind_text(st, i, s->buf[i - 1]);
}

static int kw_pg_step(kw_db_stmt *st)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    if (!s->res) {
        struct pg_conn *c = s->conn;
        int in_tx, rc = fence_open(c, &in_tx);
        if (rc) return rc;
        PGresult *res;
        if (s->id >= 0) {
            char name[16];
            snprintf(name, sizeof name, "q%d", s->id);
            res = PQexecPrepared(c->db, name, s->n, s->v, NULL, NULL, 0);
        } else {
            res = PQexecParams(c->db, s->adhoc_sql, s->n, NULL, s->v, NULL, NULL, 0);
        }
        rc = fence(c, in_tx, kw_pg_take_result(c->db, res, &s->res));
        if (rc) {
            PQclear(s->res);
            s->res = NULL;
            return rc;
        }
        s->row = -1;
    }
    s->row++;
    return s->row < PQntuples(s->res) ? KW_DB_ROW : KW_OK;
}

const char *kw_pg_col_text_of(kw_db_stmt *st, int col)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    return PQgetvalue(s->res, s->row, col);
}

static int64_t kw_pg_col_int_of(kw_db_stmt *st, int col)
{
    const char *v = kw_pg_col_text_of(st, col);
    if (v[0] == 't' && !v[1]) return 1;  /* a boolean column */
    return strtoll(v, NULL, 10);
}

static int kw_pg_col_null_of(kw_db_stmt *st, int col)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    return PQgetisnull(s->res, s->row, col);
}

static int64_t kw_pg_changes(kw_db_stmt *st)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    return s->res ? strtoll(PQcmdTuples(s->res), NULL, 10) : 0;
}

static void kw_pg_finish(kw_db_stmt *st)
{
    struct pg_stmt *s = (struct pg_stmt *)st;
    stmt_reset(s);
    if (s->id < 0) {
        free(s->adhoc_sql);
        free(s);
    }
}


/* The session's statement_timeout, for one caller's bounded statements;
 * RESET gives back whatever the URL or the role set.  The value is a
 * parameter like any other. */
static int kw_pg_time_limit(kw_store *b, int64_t ms)
{
    struct pg_conn *c;
    int rc = kw_pg_conn_get(P(b), &c);
    if (rc) return rc;
    if (ms <= 0) return kw_pg_exec(c, "RESET statement_timeout");
    char text[24];
    const char *values[1] = {text};
    snprintf(text, sizeof text, "%" PRId64, ms);
    PGresult *res = NULL;
    rc = kw_pg_take_result(c->db,
                           PQexecParams(c->db, "SELECT set_config('statement_timeout', $1, false)",
                                        1, NULL, values, NULL, NULL, 0),
                           &res);
    PQclear(res);
    return rc;
}

/* ---- schema, transactions, lifecycle ------------------------------------- */

static int pg_schema_version(kw_store *b, int *version)
{
    kw_db_stmt *st;
    int64_t v = 0;
    int rc = kw_pg_prepare(b, KW_SQL_SCHEMA_VERSION, &st);
    if (!rc) rc = kw_db_int_result(st, &v);
    *version = (int)v;
    return rc;
}

static int migrate(struct pg_store *s)
{
    struct pg_conn *c;
    int rc = kw_pg_conn_get(s, &c);
    if (rc) return rc;
    char sql[160];
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d)", MIGRATION_LOCK);
    rc = kw_pg_exec(c, sql);
    if (rc) {
        kw_pg_exec(c, "ROLLBACK");
        return rc;
    }
    rc = kw_pg_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations("
                       "version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
    int current = 0;
    if (!rc) rc = pg_schema_version(&s->base, &current);
    for (int v = current + 1; !rc && v <= kw_pg_migration_count; v++) {
        rc = kw_pg_exec(c, kw_pg_migrations[v - 1]);
        kw_db_stmt *st;
        if (!rc) rc = kw_pg_prepare_sql(&s->base, "INSERT INTO schema_migrations(version, applied_at) "
                                                  "VALUES (?1, ?2)", &st);
        if (rc) break;
        kw_db_int(st, 1, v);
        kw_db_int(st, 2, kw_now());
        rc = kw_db_exec(st, 1);
    }
    if (rc) {
        kw_pg_exec(c, "ROLLBACK");
        return rc;
    }
    return kw_pg_exec(c, "COMMIT");
}

static int pg_begin(kw_store *b)
{
    struct pg_conn *c;
    int rc = kw_pg_conn_get(P(b), &c);
    return rc ? rc : kw_pg_exec(c, "BEGIN");
}

static int pg_commit(kw_store *b)
{
    struct pg_conn *c;
    int rc = kw_pg_conn_get(P(b), &c);
    if (rc) return rc;
    /* COMMIT of a transaction that saw an error "succeeds" as a ROLLBACK;
     * report it as the failure it is. */
    if (PQtransactionStatus(c->db) == PQTRANS_INERROR) {
        kw_pg_exec(c, "ROLLBACK");
        return KW_ERR_DB;
    }
    return kw_pg_exec(c, "COMMIT");
}

static void pg_rollback(kw_store *b)
{
    struct pg_conn *c;
    if (kw_pg_conn_get(P(b), &c) == KW_OK) kw_pg_exec(c, "ROLLBACK");
}

/* Looks, never connects: it runs after every request, and must not try to
 * reach a database that is down (a lost session has no transaction left). */
static int pg_in_transaction(kw_store *b)
{
    struct pg_conn *c = pthread_getspecific(P(b)->tls);
    return c && PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE;
}

static void pg_close(kw_store *b)
{
    kw_pg_store_fini(P(b));
    free(b);
}


static const struct kw_db_driver PG_DRIVER = {
    .name = "postgresql",
    .dialect = KW_DB_POSTGRES,
    .close = pg_close,
    .prepare = kw_pg_prepare,
    .prepare_sql = kw_pg_prepare_sql,
    .bind_text = kw_pg_bind_text,
    .bind_int = kw_pg_bind_int,
    .step = kw_pg_step,
    .col_text = kw_pg_col_text_of,
    .col_int = kw_pg_col_int_of,
    .col_null = kw_pg_col_null_of,
    .changes = kw_pg_changes,
    .finish = kw_pg_finish,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_transaction = pg_in_transaction,
    .schema_version = pg_schema_version,
    .wait_change = kw_pg_wait_change,
    .time_limit = kw_pg_time_limit,
};

int kw_db_postgres_open(const char *url, kw_store **out)
{
    *out = NULL;
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    s->base.driver = &PG_DRIVER;
    int rc = kw_pg_store_init(s, url);
    if (rc) {
        free(s);
        return rc;
    }
    rc = migrate(s);
    if (rc) {
        pg_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return KW_OK;
}
