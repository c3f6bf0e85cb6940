/* db_pg.h — what the PostgreSQL driver's files share (internal to
 * lib/store/): its store, its per-thread sessions and its statements, and
 * the calls between db_pg.c (the statements, transactions, migrations and
 * the driver table), db_pg_session.c (connections and libpq's errors) and
 * db_pg_listen.c (change notifications).  These files, and no other, know
 * libpq: everything else in lib/store/ is written against db.h. */
#ifndef KW_DB_PG_H
#define KW_DB_PG_H

#include <libpq-fe.h>
#include <pthread.h>

#include "store/db.h"

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

/* db_pg_session.c.  kw_pg_store_init / kw_pg_store_fini: the store's
 * url, thread key and locks (fini also closes every session left).
 * kw_pg_conn_get: the calling thread's session, opened on first use and
 * reset when the server has dropped it.  kw_pg_connect: a new session
 * (connect_timeout 10 s unless the URL says otherwise, NOTICEs dropped);
 * NULL only when out of memory. */
int kw_pg_store_init(struct pg_store *s, const char *url);
void kw_pg_store_fini(struct pg_store *s);
int kw_pg_conn_get(struct pg_store *s, struct pg_conn **out);
PGconn *kw_pg_connect(const char *url);

/* Maps a failure (the session's, or res's SQLSTATE) to a kw_err and notes
 * it for kw_store_last_error; kw_pg_unreachable does the same for a
 * session that cannot be used (KW_ERR_UNAVAILABLE). */
int kw_pg_error(PGconn *db, const PGresult *res);
int kw_pg_unreachable(PGconn *db);
/* Keeps a successful result in *out; maps and frees a failed one. */
int kw_pg_take_result(PGconn *db, PGresult *res, PGresult **out);
/* Runs SQL text without parameters and drops its result. */
int kw_pg_exec(struct pg_conn *c, const char *sql);

/* db_pg_listen.c: the driver's wait_change (LISTEN/NOTIFY). */
int kw_pg_wait_change(kw_store *b, int timeout_ms, int *what);

#endif
