/* db_pg_session.c — the PostgreSQL driver's sessions: one connection
 * per thread, opened lazily and kept for the thread's life, exactly like
 * the SQLite driver; and how libpq's failures become kw_err.
 *
 * We chose a connection per thread over a shared pool (N connections
 * behind a mutex + condvar) because:
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
 * When the server goes away a call fails with KW_ERR_UNAVAILABLE; the next
 * call on that thread sees CONNECTION_BAD and resets the session (whose
 * prepared statements db_pg.c then prepares again). */
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store/db_pg.h"

/* The library never writes to the terminal: NOTICEs ("relation already
 * exists, skipping") are dropped. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* libpq's words for a session's failure, for the logs. */
static const char *session_words(PGconn *db) { return db ? PQerrorMessage(db) : "no connection"; }

int kw_pg_error(PGconn *db, const PGresult *res)
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
int kw_pg_unreachable(PGconn *db)
{
    kw_db_note_error("connection", session_words(db));
    return KW_ERR_UNAVAILABLE;
}

PGconn *kw_pg_connect(const char *url)
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

int kw_pg_store_init(struct pg_store *s, const char *url)
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

void kw_pg_store_fini(struct pg_store *s)
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

int kw_pg_conn_get(struct pg_store *s, struct pg_conn **out)
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
            if (PQstatus(c->db) != CONNECTION_OK) return kw_pg_unreachable(c->db);
        }
        *out = c;
        return KW_OK;
    }
    c = calloc(1, sizeof *c);
    if (!c) return KW_ERR_NOMEM;
    c->store = s;
    c->db = kw_pg_connect(s->url);
    if (!c->db) {
        free(c);
        return KW_ERR_NOMEM;
    }
    if (PQstatus(c->db) != CONNECTION_OK) {
        int rc = kw_pg_unreachable(c->db);
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
int kw_pg_take_result(PGconn *db, PGresult *res, PGresult **out)
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

int kw_pg_exec(struct pg_conn *c, const char *sql)
{
    PGresult *res = NULL;
    int rc = kw_pg_take_result(c->db, PQexec(c->db, sql), &res);
    PQclear(res);
    return rc;
}
