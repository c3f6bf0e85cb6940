/* store_pg_conn.c — PostgreSQL connections for the libpq backend.
 *
 * Concurrency model: one connection per thread, opened lazily and kept for
 * the thread's life, exactly like the SQLite backend.  We chose that over a
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
 * Statements are prepared (PQprepare) on first use per connection and run
 * with PQexecPrepared and text parameters.  When the server goes away the
 * call fails with KW_ERR_UNAVAILABLE; the next call on that thread sees
 * CONNECTION_BAD, resets the session and prepares statements again. */
#include "store_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

void kw_pg_text(struct pg_params *p, const char *v)
{
    if (p->n < PG_MAX_PARAMS) p->v[p->n++] = v;
}

void kw_pg_text_or_null(struct pg_params *p, const char *v)
{
    kw_pg_text(p, v && *v ? v : NULL);
}

void kw_pg_int(struct pg_params *p, int64_t v)
{
    if (p->n >= PG_MAX_PARAMS) return;
    snprintf(p->buf[p->n], sizeof p->buf[p->n], "%" PRId64, v);
    p->v[p->n] = p->buf[p->n];
    p->n++;
}

void kw_pg_int_or_null(struct pg_params *p, int64_t v)
{
    if (v)
        kw_pg_int(p, v);
    else
        kw_pg_text(p, NULL);
}

void kw_pg_buf_put(struct pg_buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Every element is quoted, so no value needs a case of its own (an empty
 * string, NULL spelled as text, braces, commas); inside the quotes only
 * " and \ are special. */
void kw_pg_array_text(struct pg_buf *b, const char *v, int first)
{
    kw_pg_buf_put(b, first ? "{" : ",", 1);
    kw_pg_buf_put(b, "\"", 1);
    for (const char *s = v ? v : "", *run = s;; s++) {
        if (*s == '"' || *s == '\\' || !*s) {
            kw_pg_buf_put(b, run, (size_t)(s - run));
            if (!*s) break;
            kw_pg_buf_put(b, "\\", 1);
            run = s;
        }
    }
    kw_pg_buf_put(b, "\"", 1);
}

void kw_pg_array_int(struct pg_buf *b, int64_t v, int first)
{
    char num[32];
    int n = snprintf(num, sizeof num, "%s%" PRId64, first ? "{" : ",", v);
    kw_pg_buf_put(b, num, (size_t)n);
}

/* Column readers: NULL reads as 0 / "", as in the SQLite backend. */
int64_t kw_pg_col_int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

int kw_pg_col_bool(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col)[0] == 't';
}

void kw_pg_col_copy(const PGresult *r, int row, int col, char *dst, size_t size)
{
    size_t n = PQgetisnull(r, row, col) ? 0 : (size_t)PQgetlength(r, row, col);
    if (n >= size) n = size - 1;
    if (n) memcpy(dst, PQgetvalue(r, row, col), n);
    dst[n] = '\0';
}

char *kw_pg_col_dup(const PGresult *r, int row, int col)
{
    return strdup(PQgetvalue(r, row, col));
}

/* The library never writes to the terminal: NOTICEs ("relation already
 * exists, skipping") are dropped. */
static void quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int kw_pg_error(PGconn *db, const PGresult *res)
{
    if (!db || PQstatus(db) == CONNECTION_BAD) return KW_ERR_UNAVAILABLE;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
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
    return KW_ERR_DB;
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

int kw_pg_store_init(struct pg_store *s, const char *url, const char *const *sql, int count)
{
    if (count > PG_MAX_STMTS) return KW_ERR_INVALID;
    s->url = strdup(url);
    if (!s->url) return KW_ERR_NOMEM;
    s->sql = sql;
    s->stmt_count = count;
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
        if (PQstatus(c->db) == CONNECTION_BAD) {
            /* The session is gone (server restart, network): reconnect.  Its
             * prepared statements went with it. */
            PQreset(c->db);
            memset(c->prepared, 0, sizeof c->prepared);
            if (PQstatus(c->db) != CONNECTION_OK) return KW_ERR_UNAVAILABLE;
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
        conn_free(c);
        return KW_ERR_UNAVAILABLE;
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

int kw_pg_run(struct pg_store *s, int id, const struct pg_params *p, PGresult **out)
{
    *out = NULL;
    if (id < 0 || id >= s->stmt_count) return KW_ERR_INVALID;
    struct pg_conn *c;
    int in_tx, rc = kw_pg_conn_get(s, &c);
    if (rc) return rc;
    char name[16];
    snprintf(name, sizeof name, "kw%d", id);
    if (!c->prepared[id]) {
        /* Prepared outside the savepoint: a PREPARE is not undone by
         * ROLLBACK TO, and it does not fail on data. */
        PGresult *ok = NULL;
        rc = take_result(c->db, PQprepare(c->db, name, s->sql[id], 0, NULL), &ok);
        PQclear(ok);
        if (rc) return rc;
        c->prepared[id] = 1;
    }
    if ((rc = fence_open(c, &in_tx))) return rc;
    PGresult *res = PQexecPrepared(c->db, name, p ? p->n : 0, p ? p->v : NULL, NULL, NULL, 0);
    rc = fence(c, in_tx, take_result(c->db, res, out));
    if (rc && *out) {
        PQclear(*out);
        *out = NULL;
    }
    return rc;
}

int kw_pg_run_sql(struct pg_store *s, const char *sql, const struct pg_params *p, PGresult **out)
{
    *out = NULL;
    struct pg_conn *c;
    int in_tx, rc = kw_pg_conn_get(s, &c);
    if (rc) return rc;
    if ((rc = fence_open(c, &in_tx))) return rc;
    PGresult *res = PQexecParams(c->db, sql, p ? p->n : 0, NULL, p ? p->v : NULL, NULL, NULL, 0);
    rc = fence(c, in_tx, take_result(c->db, res, out));
    if (rc && *out) {
        PQclear(*out);
        *out = NULL;
    }
    return rc;
}

int kw_pg_exec(struct pg_conn *c, const char *sql)
{
    PGresult *res = NULL;
    int rc = take_result(c->db, PQexec(c->db, sql), &res);
    PQclear(res);
    return rc;
}

/* ---- change notifications (SPEC §9) --------------------------------------
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
    int rc = KW_ERR_UNAVAILABLE;
    if (PQstatus(s->listen) == CONNECTION_OK) {
        PGresult *res = PQexec(s->listen, "LISTEN keyward_auth; LISTEN keyward_flags");
        rc = res && PQresultStatus(res) == PGRES_COMMAND_OK ? KW_OK : kw_pg_error(s->listen, res);
        PQclear(res);
    }
    if (rc) {
        PQfinish(s->listen);
        s->listen = NULL;
    }
    return rc;
}

int kw_pg_wait_change(kw_store *b, int timeout_ms, int *what)
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
        rc = KW_ERR_UNAVAILABLE;
        goto drop;
    }
    int n = poll(&pfd, 1, timeout_ms);
    if (n == 0 || (n < 0 && errno == EINTR)) goto out;
    /* Readable (or hung up): a closed socket makes PQconsumeInput fail. */
    if (n < 0 || !PQconsumeInput(s->listen) || PQstatus(s->listen) != CONNECTION_OK) {
        rc = KW_ERR_UNAVAILABLE;
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
