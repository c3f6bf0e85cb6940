/* server.c — libmicrohttpd glue: listen, read bodies, send responses.
 *
 * MHD runs a fixed pool of threads (one per core) over epoll.  A request
 * without a body needs no per-request state (a static marker stands in);
 * a body is accumulated up to KW_MAX_BODY and anything
 * larger is answered 413 as soon as Content-Length says so (or as soon as a
 * chunked body crosses the limit), without reading the rest.  Connection
 * limits and timeouts keep slow clients from holding every thread. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http/http.h"

struct kw_server {
    struct MHD_Daemon *daemon;
    kw_app *app;
    unsigned port;
};

struct body {
    char *data;
    size_t len, cap;
    int too_large;
};

/* con_cls markers: a request without a body, and one refused with 413
 * before its body was read. */
static char NO_BODY, TOO_LARGE;

static void add_common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
}

/* What a connection must do once its current request is complete: drop
 * the reference that kept a shared response's bytes alive while they were
 * being sent.  One per connection (allocated when it opens, so not per
 * request): MHD runs one request at a time on a connection. */
struct conn_state {
    void (*done)(void *);
    void *done_ctx;
};

static struct conn_state *conn_state_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

struct MHD_Response *kw_http_build_response(kw_http_resp *resp)
{
    char *text = NULL;
    size_t len = 0;
    if (resp->body) {
        text = json_dumps(resp->body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        json_decref(resp->body);
        resp->body = NULL;
        if (!text) {
            text = strdup("{\"type\":\"server_error\",\"code\":\"error\",\"detail\":\"A server error "
                          "occurred.\",\"attr\":null}");
            resp->status = 500;
        }
        len = text ? strlen(text) : 0;
    }
    struct MHD_Response *r;
    if (resp->raw) {
        /* Zero-copy: a cached, reference-counted set that MHD releases
         * after the last byte is sent, or static data (release NULL). */
        r = resp->release ? MHD_create_response_from_buffer_with_free_callback_cls(
                                resp->raw_len, (void *)resp->raw, resp->release, resp->release_ctx)
                          : MHD_create_response_from_buffer(resp->raw_len, (void *)resp->raw,
                                                            MHD_RESPMEM_PERSISTENT);
        if (!r && resp->release) resp->release(resp->release_ctx);
        resp->release = NULL;  /* MHD's now, or done */
        if (!r) return NULL;
    } else {
        r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(text);
            return NULL;
        }
    }
    add_common_headers(r);
    if (resp->raw)
        MHD_add_response_header(r, "Content-Type", resp->raw_type ? resp->raw_type : "application/json");
    else if (text)
        MHD_add_response_header(r, "Content-Type", "application/json");
    int has_cache_control = 0;
    for (int i = 0; i < resp->n_headers; i++) {
        MHD_add_response_header(r, resp->header_names[i], resp->header_values[i]);
        if (strcmp(resp->header_names[i], "Cache-Control") == 0) has_cache_control = 1;
    }
    if (!has_cache_control) MHD_add_response_header(r, "Cache-Control", "no-store");
    return r;
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, kw_http_resp *resp)
{
    struct conn_state *state = resp->shared ? conn_state_of(conn) : NULL;
    if (state) {
        enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, resp->shared);
        json_decref(resp->body);
        if (ret == MHD_YES) {
            state->done = resp->release;
            state->done_ctx = resp->release_ctx;
        } else if (resp->release) {
            resp->release(resp->release_ctx);
        }
        return ret;
    }
    /* Not shared: what keeps the bytes alive goes with the response built
     * from them; without bytes (a 304) nothing needs it any longer. */
    if (!resp->raw && resp->release) {
        resp->release(resp->release_ctx);
        resp->release = NULL;
    }
    struct MHD_Response *r = kw_http_build_response(resp);
    if (!r) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void client_ip(struct MHD_Connection *conn, char *out, size_t size)
{
    out[0] = '\0';
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!info || !info->client_addr) return;
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET && size >= INET_ADDRSTRLEN) {
        /* Dotted quad by hand: inet_ntop formats through sprintf, which
         * showed in the profile of every request. */
        const unsigned char *b = (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
        char *o = out;
        for (int i = 0; i < 4; i++) {
            unsigned v = b[i];
            if (v >= 100) *o++ = (char)('0' + v / 100);
            if (v >= 10) *o++ = (char)('0' + v / 10 % 10);
            *o++ = (char)('0' + v % 10);
            *o++ = i < 3 ? '.' : '\0';
        }
    } else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out, (socklen_t)size);
}

static enum MHD_Result run(kw_app *app, struct MHD_Connection *conn, const char *url,
                           const char *method, const char *body, size_t body_len)
{
    kw_http_req req;
    kw_http_req_init(&req);
    req.app = app;
    req.conn = conn;
    req.method = method;
    req.path = url;
    req.body = body;
    req.body_len = body_len;
    client_ip(conn, req.ip, sizeof req.ip);
    kw_http_resp resp;
    kw_http_resp_init(&resp);
    kw_http_dispatch(&req, &resp);
    json_decref(req.json);
    if (kw_store_in_transaction(app->store)) {
        /* A handler's error path forgot its transaction.  Roll it back so
         * the lock and the snapshot go with this request, and say so: it
         * is a bug (an abort under the fuzzer, so that one is found).  The
         * route's pattern, not the path, which could hold anything. */
        fprintf(stderr, "keyward: BUG: %s %s left a store transaction open; rolled back\n",
                method, req.match.route ? req.match.route->pattern : "(no route)");
        kw_store_rollback(app->store);
#ifdef KW_FUZZING
        abort();
#endif
    }
    return send_resp(conn, &resp);
}

static enum MHD_Result too_large(struct MHD_Connection *conn, size_t limit)
{
    kw_http_resp resp;
    kw_http_resp_init(&resp);
    kw_problem p;
    kw_problem_set(&p, KW_P_TOO_LARGE, NULL, NULL, "Request body is larger than %zu bytes.", limit);
    kw_resp_problem(&resp, &p);
    return send_resp(conn, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    kw_app *app = cls;
    if (*con_cls == NULL) {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
        if (cl && strtoull(cl, NULL, 10) > app->max_body) {
            *con_cls = &TOO_LARGE;
            return too_large(conn, app->max_body);
        }
        /* Answering only on the next callback, once MHD has read the whole
         * request, keeps the connection alive; a marker, not an allocation,
         * stands for "no body". */
        if ((!cl || strtoull(cl, NULL, 10) == 0) && !te) {
            *con_cls = &NO_BODY;
            return MHD_YES;
        }
        struct body *b = calloc(1, sizeof *b);
        if (!b) return MHD_NO;
        *con_cls = b;
        return MHD_YES;
    }
    if (*con_cls == &NO_BODY) {
        *upload_data_size = 0;
        return run(app, conn, url, method, NULL, 0);
    }
    if (*con_cls == &TOO_LARGE) return MHD_YES;  /* 413 already queued */
    struct body *b = *con_cls;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (b->too_large) return MHD_YES;
        if (b->len + n > app->max_body) {
            b->too_large = 1;
            return MHD_YES;
        }
        if (b->len + n > b->cap) {
            size_t cap = b->cap ? b->cap : 4096;
            while (cap < b->len + n) cap *= 2;
            if (cap > app->max_body) cap = app->max_body;
            char *data = realloc(b->data, cap);
            if (!data) return MHD_NO;
            b->data = data;
            b->cap = cap;
        }
        memcpy(b->data + b->len, upload_data, n);
        b->len += n;
        return MHD_YES;
    }
    if (b->too_large) return too_large(conn, app->max_body);
    return run(app, conn, url, method, b->data, b->len);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    struct conn_state *state = conn_state_of(conn);
    if (state && state->done) {
        state->done(state->done_ctx);
        state->done = NULL;
    }
    if (*con_cls && *con_cls != &NO_BODY && *con_cls != &TOO_LARGE) {
        struct body *b = *con_cls;
        free(b->data);
        free(b);
    }
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(struct conn_state));  /* NULL: nothing is shared */
    } else {
        struct conn_state *state = *socket_context;
        if (state && state->done) state->done(state->done_ctx);  /* not completed */
        free(state);
        *socket_context = NULL;
    }
}

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

int kw_server_start(kw_app *app, const char *listen, unsigned threads, kw_server **out, char *err,
                    size_t errsz)
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
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, app, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads ? threads : 2, MHD_OPTION_CONNECTION_TIMEOUT,
        app->conn_timeout ? app->conn_timeout : 30u, MHD_OPTION_CONNECTION_LIMIT, (unsigned)2048, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)512, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errsz, "cannot listen on %s (address in use or not permitted)", listen);
        free(s);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    *out = s;
    return 0;
}

unsigned kw_server_port(const kw_server *s) { return s->port; }

void kw_server_stop(kw_server *s)
{
    if (!s) return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
