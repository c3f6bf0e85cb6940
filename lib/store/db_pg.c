/* db_pg.c — the PostgreSQL driver of the database layer (libpq), for
 * several keyward instances sharing one database.
 *
 * Concurrency model: one connection per thread, opened lazily and kept for
 * the thread's life, exactly like the SQLite driver.  We chose that over a
 * shared pool (N connections behind a mutex + condvar) because:
 *   - the HTTP server runs a fixed thread pool, so the connection count is
 *     bounded by threads × instances, the same as a pool sized to the
 *     thread count would be;
 *   - the verification path (key by hash, touch) takes no lock of ours and
 *     never waits for a free connection;
 *   - kw_store_begin/commit/rollback must run on one session; with a
 *     per-thread connection the calling thread owns it, with a pool we would
 *     have to pin a connection to the thread for the transaction anyway.
 * The cost: a short-lived thread costs a connection setup; the thread-exit
 * destructor closes its connection so they do not pile up.
 *
 * Statements of the table are prepared (PQprepare, ?N rewritten to $N) on
 * first use per connection and run with PQexecPrepared and text
 * parameters.  When the server goes away the call fails with
 * KW_ERR_UNAVAILABLE; the next call on that thread sees CONNECTION_BAD,
 * resets the session and prepares statements again.
 *
 * Migrations run in one transaction that first takes
 * pg_advisory_xact_lock(MIGRATION_LOCK): several instances starting at once
 * queue on the lock and the later ones find the schema already current.
 * This is the only file that knows libpq. */
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store/db.h"
#include "store/store_schema.h"

/* Arbitrary, fixed: "kwmg" in ASCII.  Only keyward's migrations take it. */
#define MIGRATION_LOCK 0x6b776d67
#define PG_MAX_PARAMS 32

/* A statement of the table on one connection: its parameters until the
 * first step runs it, then its result and the row the cursor is on. */
struct pg_stmt {
    kw_db_stmt base;
    struct pg_conn *conn;
    int id;          /* in the statement table; -1: ad hoc */
    char *adhoc_sql; /* ad hoc: the rewritten text, freed with the statement */
    int n;           /* parameters bound: the highest index */
    const char *v[PG_MAX_PARAMS];
    char buf[PG_MAX_PARAMS][24];
    PGresult *res;   /* NULL until the first step */
    int row;
};

struct pg_conn {
    PGconn *db;
    struct pg_store *store;
    unsigned char table_prepared[KW_SQL_COUNT];  /* PQprepare done on this session */
    struct pg_stmt stmts[KW_SQL_COUNT];
    struct pg_conn *prev, *next;  /* every connection, for close */
};

struct pg_store {
    kw_store base;
    char *url;
    pthread_key_t tls;
    pthread_mutex_t conns_lock;  /* guards the list only */
    struct pg_conn *conns;
    /* The LISTEN session of kw_store_wait_change: its own connection, never
     * used for queries (a notification arrives only between transactions of
     * its session, so it must not share one with request threads). */
    pthread_mutex_t listen_lock;
    PGconn *listen;
};

#define P(base) ((struct pg_store *)(base))
static const struct kw_db_driver PG_DRIVER;
static int kw_pg_exec(struct pg_conn *c, const char *sql);

/* The library never writes to the terminal: NOTICEs ("relation already
 * exists, skipping") are dropped. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* libpq's words for a session's failure, for the logs. */
static const char *session_words(PGconn *db) { return db ? PQerrorMessage(db) : "no connection"; }

static int kw_pg_error(PGconn *db, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    kw_db_note_error(state ? state : "connection", primary ? primary : session_words(db));
    if (!db || PQstatus(db) == CONNECTION_BAD) return KW_ERR_UNAVAILABLE;
    if (!state) return res ? KW_ERR_DB : KW_ERR_UNAVAILABLE;
    /* Class 23 (integrity constraint): 23505 unique_violation is the case
     * callers act on; foreign-key / not-null violations map the same way
     * because the SQLite backend reports every SQLITE_CONSTRAINT as
     * KW_ERR_EXISTS and both backends must answer alike. */
    if (strncmp(state, "23", 2) == 0) return KW_ERR_EXISTS;
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||  /* connection, shutdown */
        strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||     /* retryable conflicts */
        strcmp(state, "53300") == 0)                                       /* too many connections */
        return KW_ERR_UNAVAILABLE;
    if (strcmp(state, "53200") == 0) return KW_ERR_NOMEM;
    /* query_canceled: keyward cancels nothing, so it is statement_timeout
     * (kw_pg_time_limit). */
    if (strcmp(state, "57014") == 0) return KW_ERR_TIMEOUT;
    return KW_ERR_DB;
}

/* A session that cannot be used. */
static int unreachable(PGconn *db)
{
    kw_db_note_error("connection", session_words(db));
    return KW_ERR_UNAVAILABLE;
}

static PGconn *connect_db(const char *url)
{
    /* connect_timeout comes first so a value in the URL overrides it. */
    const char *const keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const vals[] = {"10", "keyward", url, NULL};
    PGconn *db = PQconnectdbParams(keys, vals, 1);
    if (db) PQsetNoticeProcessor(db, quiet_notice, NULL);
    return db;
}

static void conn_free(struct pg_conn *c)
{
    if (c->db) PQfinish(c->db);
    free(c);
}

/* Unlinks and closes a thread's connection when the thread exits. */
static void conn_thread_exit(void *arg)
{
    struct pg_conn *c = arg;
    struct pg_store *s = c->store;
    pthread_mutex_lock(&s->conns_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&s->conns_lock);
    conn_free(c);
}

static int kw_pg_store_init(struct pg_store *s, const char *url)
{
    s->url = strdup(url);
    if (!s->url) return KW_ERR_NOMEM;
    if (pthread_key_create(&s->tls, conn_thread_exit)) {
        free(s->url);
        return KW_ERR_NOMEM;
    }
    pthread_mutex_init(&s->conns_lock, NULL);
    pthread_mutex_init(&s->listen_lock, NULL);
    return KW_OK;
}

static void kw_pg_store_fini(struct pg_store *s)
{
    /* Deleting the key first: no destructor runs after this point. */
    pthread_key_delete(s->tls);
    for (struct pg_conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        conn_free(c);
    }
    s->conns = NULL;
    pthread_mutex_destroy(&s->conns_lock);
    if (s->listen) PQfinish(s->listen);
    s->listen = NULL;
    pthread_mutex_destroy(&s->listen_lock);
    free(s->url);
}

static int kw_pg_conn_get(struct pg_store *s, struct pg_conn **out)
{
    struct pg_conn *c = pthread_getspecific(s->tls);
    if (c) {
        /* An idle session the server has closed (restart, terminated
         * backend, idle timeout) has said so on its socket; reading that
         * now, before a statement is sent, lets it reconnect here instead
         * of failing the caller's statement — without ever re-sending a
         * statement that may have run.  One poll() with no wait. */
        if (PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) == PQTRANS_IDLE) {
            /* The server's last message comes first, the end of the
             * stream on a later read: read until nothing is waiting. */
            struct pollfd pfd = {.fd = PQsocket(c->db), .events = POLLIN};
            for (int i = 0; i < 4 && pfd.fd >= 0 && poll(&pfd, 1, 0) > 0; i++)
                if (!PQconsumeInput(c->db) || PQstatus(c->db) == CONNECTION_BAD) break;
        }
        if (PQstatus(c->db) == CONNECTION_BAD) {
            /* The session is gone (server restart, network): reconnect.  Its
             * prepared statements went with it. */
            PQreset(c->db);
            memset(c->table_prepared, 0, sizeof c->table_prepared);
            if (PQstatus(c->db) != CONNECTION_OK) return unreachable(c->db);
        }
        *out = c;
        return KW_OK;
    }
    c = calloc(1, sizeof *c);
    if (!c) return KW_ERR_NOMEM;
    c->store = s;
    c->db = connect_db(s->url);
    if (!c->db) {
        free(c);
        return KW_ERR_NOMEM;
    }
    if (PQstatus(c->db) != CONNECTION_OK) {
        int rc = unreachable(c->db);
        conn_free(c);
        return rc;
    }
    pthread_mutex_lock(&s->conns_lock);
    c->next = s->conns;
    if (c->next) c->next->prev = c;
    s->conns = c;
    pthread_mutex_unlock(&s->conns_lock);
    pthread_setspecific(s->tls, c);
    *out = c;
    return KW_OK;
}

/* Keeps a successful result; maps and frees a failed one. */
static int take_result(PGconn *db, PGresult *res, PGresult **out)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *out = res;
        return KW_OK;
    }
    int rc = kw_pg_error(db, res);
    PQclear(res);
    return rc;
}

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

static int kw_pg_exec(struct pg_conn *c, const char *sql)
{
    PGresult *res = NULL;
    int rc = take_result(c->db, PQexec(c->db, sql), &res);
    PQclear(res);
    return rc;
}

/* ---- change notifications: every instance hears every write --------------
 * The schema's triggers NOTIFY keyward_auth / keyward_flags in the writing
 * transaction; PostgreSQL delivers them at commit to every session that
 * LISTENs.  One dedicated session per store listens; a wait is poll() on
 * its socket, then PQconsumeInput + PQnotifies.  When the session breaks
 * (server restart, network), the next wait reconnects and LISTENs again and
 * reports KW_CHANGE_ALL: whatever was notified in between is lost, so the
 * caller must re-read the generations.  The payload (the new generation) is
 * not trusted or parsed: the caller reads the generation itself. */

static int notified(PGconn *db)
{
    int what = 0;
    PGnotify *n;
    while ((n = PQnotifies(db))) {
        if (strcmp(n->relname, "keyward_auth") == 0) what |= KW_CHANGE_AUTH;
        else if (strcmp(n->relname, "keyward_flags") == 0) what |= KW_CHANGE_FLAGS;
        PQfreemem(n);
    }
    return what;
}

static int listen_open(struct pg_store *s)
{
    if (s->listen) PQfinish(s->listen);
    s->listen = connect_db(s->url);
    if (!s->listen) return KW_ERR_NOMEM;
    int rc;
    if (PQstatus(s->listen) == CONNECTION_OK) {
        PGresult *res = PQexec(s->listen, "LISTEN keyward_auth; LISTEN keyward_flags");
        rc = res && PQresultStatus(res) == PGRES_COMMAND_OK ? KW_OK : kw_pg_error(s->listen, res);
        PQclear(res);
    } else {
        rc = unreachable(s->listen);
    }
    if (rc) {
        PQfinish(s->listen);
        s->listen = NULL;
    }
    return rc;
}

static int kw_pg_wait_change(kw_store *b, int timeout_ms, int *what)
{
    struct pg_store *s = (struct pg_store *)b;
    int rc = KW_OK;
    *what = 0;
    pthread_mutex_lock(&s->listen_lock);
    if (!s->listen || PQstatus(s->listen) != CONNECTION_OK) {
        rc = listen_open(s);
        if (!rc) *what = KW_CHANGE_ALL;  /* anything may have happened meanwhile */
        goto out;
    }
    if ((*what = notified(s->listen))) goto out;  /* already buffered */
    struct pollfd pfd = {.fd = PQsocket(s->listen), .events = POLLIN};
    if (pfd.fd < 0) {
        rc = unreachable(s->listen);
        goto drop;
    }
    int n = poll(&pfd, 1, timeout_ms);
    if (n == 0 || (n < 0 && errno == EINTR)) goto out;
    /* Readable (or hung up): a closed socket makes PQconsumeInput fail. */
    if (n < 0 || !PQconsumeInput(s->listen) || PQstatus(s->listen) != CONNECTION_OK) {
        rc = unreachable(s->listen);
        goto drop;
    }
    *what = notified(s->listen);
    goto out;
drop:
    PQfinish(s->listen);
    s->listen = NULL;
out:
    pthread_mutex_unlock(&s->listen_lock);
    return rc;
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
        rc = take_result(c->db, PQprepare(c->db, name, sql, 0, NULL), &ok);
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
        rc = fence(c, in_tx, take_result(c->db, res, &s->res));
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
    rc = take_result(c->db, PQexecParams(c->db, "SELECT set_config('statement_timeout', $1, false)",
                                         1, NULL, values, NULL, NULL, 0), &res);
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
