/* db_pg_listen.c — change notifications on PostgreSQL: every instance
 * hears every write.
 *
 * The schema's triggers NOTIFY keyward_auth / keyward_flags in the writing
 * transaction; PostgreSQL delivers them at commit to every session that
 * LISTENs.  One dedicated session per store listens; a wait is poll() on
 * its socket, then PQconsumeInput + PQnotifies.  When the session breaks
 * (server restart, network), the next wait reconnects and LISTENs again and
 * reports KW_CHANGE_ALL: whatever was notified in between is lost, so the
 * caller must re-read the generations.  The payload (the new generation) is
 * not trusted or parsed: the caller reads the generation itself. */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store/db_pg.h"

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
    s->listen = kw_pg_connect(s->url);
    if (!s->listen) return KW_ERR_NOMEM;
    int rc;
    if (PQstatus(s->listen) == CONNECTION_OK) {
        PGresult *res = PQexec(s->listen, "LISTEN keyward_auth; LISTEN keyward_flags");
        rc = res && PQresultStatus(res) == PGRES_COMMAND_OK ? KW_OK : kw_pg_error(s->listen, res);
        PQclear(res);
    } else {
        rc = kw_pg_unreachable(s->listen);
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
        rc = kw_pg_unreachable(s->listen);
        goto drop;
    }
    int n = poll(&pfd, 1, timeout_ms);
    if (n == 0 || (n < 0 && errno == EINTR)) goto out;
    /* Readable (or hung up): a closed socket makes PQconsumeInput fail. */
    if (n < 0 || !PQconsumeInput(s->listen) || PQstatus(s->listen) != CONNECTION_OK) {
        rc = kw_pg_unreachable(s->listen);
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
