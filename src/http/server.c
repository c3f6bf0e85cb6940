/* server.c — the listeners on libmicrohttpd: the API server and the
 * metrics listener, started on an address and stopped.
 *
 * MHD runs a fixed pool of threads (one per core) over epoll.  Connection
 * limits and timeouts keep slow clients from holding every thread, and a
 * connection beyond --max-connections is still accepted, to be told 503,
 * up to SHED_ROOM more.  Stopping answers what was already taken before
 * the threads end.  The requests themselves are served by
 * server_request.c and answered through server_response.c; those that
 * wait are suspended by server_hold.c.  With framing.c these are the only
 * files that see libmicrohttpd (through server_internal.h), so the HTTP
 * library is their business. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "http/server_internal.h"

/* How long a stop waits for the answers of captures already taken. */
#define STOP_DRAIN_MS 5000

/* Connections accepted beyond --max-connections to be answered 503. */
#define SHED_ROOM 1024u

/* con_cls marker of the metrics listener: the request has been seen (its
 * body, if any, is dropped). */
static char SEEN;

/* HOST:PORT, [V6]:PORT or :PORT → a sockaddr. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon) return -1;
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) return -1;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1) return -1;
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1) return -1;
        *len = sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (!hl || strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) return -1;
    *len = sizeof *s4;
    return 0;
}

/* The metrics listener (--metrics-listen): GET /metrics and nothing
 * else.  Not the API's dispatch: no credential, no route table — the
 * address it is bound to is its access control, as is usual for Prometheus
 * targets.  A body is read and dropped (never stored). */
static enum MHD_Result on_metrics(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    (void)upload_data;
    kw_app *app = cls;
    if (*con_cls == NULL) {
        *con_cls = &SEEN;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    kw_http_resp resp;
    kw_http_resp_init(&resp);
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (strcmp(url, "/metrics") != 0 && strcmp(url, "/metrics/") != 0) {
        kw_resp_error(&resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
        return kw_server_send(conn, &resp);
    }
    if (!get) {
        kw_problem p;
        kw_problem_set(&p, KW_P_METHOD, NULL, NULL, "Method not allowed.");
        kw_resp_problem(&resp, &p);
        kw_resp_header(&resp, "Allow", "GET, HEAD");
        return kw_server_send(conn, &resp);
    }
    size_t len = 0;
    char *text = kw_metrics_render(app, &len);
    if (!text) return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    kw_server_common_headers(r);
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

/* The API listener (a thread pool over epoll) or the metrics listener
 * (one thread, few connections: a scraper or two). */
static int start(kw_app *app, const char *listen, unsigned threads, int metrics, kw_server **out,
                 char *err, size_t errsz)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_listen(listen, &ss, &sslen)) {
        snprintf(err, errsz, "invalid listen address '%s' (expected HOST:PORT)", listen);
        return -1;
    }
    kw_server *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->app = app;
    /* Beyond max_open, SHED_ROOM more are accepted to be told 503; past
     * that MHD closes new connections at once. */
    s->max_open = app->max_connections ? app->max_connections : 1024;
    s->ack_window = app->capture_ack_window;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO;
    if (!metrics) {
        flags |= MHD_ALLOW_SUSPEND_RESUME;
        kw_call call = {.store = app->store, .verifier = app->verifier, .flags = app->flags};
        if (kw_slow_start(app->verifier, kw_hold_slow_done, &s->slow) ||
            kw_slow_start(app->verifier, kw_hold_slow_done, &s->queries) ||
            kw_capture_group_start(&call, KW_CAPTURE_QUEUE_MAX * (s->ack_window ? 2 : 1),
                                   &s->capture)) {
            snprintf(err, errsz, "cannot start the legacy key check, query and capture threads");
            kw_slow_free(s->slow);
            kw_slow_free(s->queries);
            free(s);
            return -1;
        }
    }
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    unsigned timeout = app->conn_timeout ? app->conn_timeout : 30u;
    if (metrics)
        s->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_metrics, app, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_CONNECTION_TIMEOUT, timeout, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32 * 1024), MHD_OPTION_END);
    else
        s->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, kw_server_on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_THREAD_POOL_SIZE, threads ? threads : 2, MHD_OPTION_CONNECTION_TIMEOUT,
            timeout, MHD_OPTION_CONNECTION_LIMIT, s->max_open + SHED_ROOM,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)(64 * 1024),
            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_NOTIFY_COMPLETED, kw_server_on_completed,
            s, MHD_OPTION_NOTIFY_CONNECTION, kw_server_on_connection, s,
            MHD_OPTION_UNESCAPE_CALLBACK, kw_server_unescape, s, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errsz, "cannot listen on %s (address in use or not permitted)", listen);
        kw_slow_free(s->slow);
        kw_slow_free(s->queries);
        kw_capture_group_free(s->capture);
        free(s);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *out = s;
    return 0;
}

int kw_server_start(kw_app *app, const char *listen, unsigned threads, kw_server **out, char *err,
                    size_t errsz)
{
    return start(app, listen, threads, 0, out, err, errsz);
}

int kw_metrics_server_start(kw_app *app, const char *listen, kw_server **out, char *err,
                            size_t errsz)
{
    return start(app, listen, 1, 1, out, err, errsz);
}

unsigned kw_server_port(const kw_server *s) { return s->port; }

void kw_server_stop(kw_server *s)
{
    if (!s) return;
    /* Captures from now on are refused (503, nothing stored): stopping
     * MHD closes connections whatever they have queued, and a stored
     * capture whose 200 is cut off is sent again by its SDK. */
    atomic_store(&s->stopping, 1);
    /* Suspended requests next: each gets its answer (captured events are
     * stored) and is resumed, so MHD stops with none left suspended.  The
     * queues stay allocated until MHD's threads have ended: a request
     * dispatched meanwhile is refused by them and answered on its own
     * thread (server_hold.c). */
    kw_slow_stop(s->slow);
    kw_slow_stop(s->queries);  /* each queued run within what is left of its time limit */
    kw_capture_group_stop(s->capture);
    /* Then the answers of the captures taken go out, on MHD's threads,
     * while they run: waited for, within a bound (a client that reads
     * nothing must not hold the stop). */
    for (int waited_ms = 0; waited_ms < STOP_DRAIN_MS &&
                            atomic_load(&s->captures_unsent);
         waited_ms += 5)
        nanosleep(&(struct timespec){.tv_nsec = 5 * 1000000}, NULL);
    MHD_stop_daemon(s->daemon);
    kw_slow_free(s->slow);
    kw_slow_free(s->queries);
    kw_capture_group_free(s->capture);
    free(s);
}
