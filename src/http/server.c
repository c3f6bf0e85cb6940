/* server.c — libmicrohttpd glue: listen, read bodies, send responses,
 * and the request accessors (kw_req_header, kw_req_query, …) through which
 * every other file reads a request.  With server_hold.c (requests that
 * wait) and framing.c (requests whose headers a proxy could read otherwise)
 * it is the only file that includes <microhttpd.h>, so the HTTP library is
 * these files' business.
 *
 * MHD runs a fixed pool of threads (one per core) over epoll.  A request
 * without a body needs no per-request state (a static marker stands in);
 * a body is accumulated up to KW_MAX_BODY, and a larger one is answered
 * 413.  The answer must not be lost: an answer sent before the body is read
 * ends the connection (libmicrohttpd takes no answer in the middle of a
 * body), and closing a socket with unread bytes resets it, so a client
 * still writing — Node's fetch, for one — sees ECONNRESET instead, and an
 * SDK that halves its batch on 413 retries the same batch for ever.  So a
 * body over the limit is read and dropped to its end, then answered 413 on
 * a connection that stays open; only a client that waits for "100
 * Continue" (it has sent nothing yet) or announces more than DISCARD_MAX
 * is answered at once.  A chunked body announces no size: past DISCARD_MAX
 * its connection is closed unanswered, so an endless body cannot keep one
 * busy.  Connection
 * limits and timeouts keep slow clients from holding every thread.  A
 * request whose key needs a legacy (pbkdf2) check, and a capture whose
 * events the capture group stores with other requests' in one
 * transaction, are suspended meanwhile (server_hold.c), so neither holds
 * a request thread. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "http/server_internal.h"
#include "keyward/metrics.h"
#include "logger.h"

/* con_cls markers: a request without a body, and one refused with 413
 * before its body was read. */
static char NO_BODY, TOO_LARGE, REFUSED;

/* A body over the limit is read and dropped up to this many bytes (its
 * client then gets the 413 whole) and cut beyond. */
#define DISCARD_FACTOR 32
#define DISCARD_MAX(max_body) \
    ((max_body) > SIZE_MAX / DISCARD_FACTOR ? SIZE_MAX : (max_body) * DISCARD_FACTOR)

/* How long a stop waits for the answers of captures already taken. */
#define STOP_DRAIN_MS 5000

/* Connections accepted beyond --max-connections to be answered 503. */
#define SHED_ROOM 1024u

static void add_common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
}

const char *kw_req_header(const kw_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *kw_req_cookie(const kw_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

const char *kw_req_query(const kw_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_walk {
    kw_query_visit visit;
    void *ctx;
};

static enum MHD_Result query_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    struct query_walk *w = cls;
    return w->visit(w->ctx, key, key_size, value, value_size) ? MHD_NO : MHD_YES;
}

void kw_req_query_each(const kw_http_req *req, kw_query_visit visit, void *ctx)
{
    struct query_walk w = {visit, ctx};
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, query_param, &w);
}

static struct MHD_Response *build_response(kw_http_resp *resp)
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

/* A kw_http_ready is an MHD response under a name of keyward's own. */
kw_http_ready *kw_http_ready_new(kw_http_resp *resp)
{
    return (kw_http_ready *)build_response(resp);
}

void kw_http_ready_free(kw_http_ready *ready)
{
    if (ready) MHD_destroy_response((struct MHD_Response *)ready);
}

enum MHD_Result kw_server_send(struct MHD_Connection *conn, kw_http_resp *resp)
{
    struct conn_state *state = resp->shared ? kw_conn_state(conn) : NULL;
    if (state) {
        enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status,
                                                 (struct MHD_Response *)resp->shared);
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
    struct MHD_Response *r = build_response(resp);
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

/* Nanoseconds since the connection's current request arrived. */
static uint64_t elapsed(struct MHD_Connection *conn, uint64_t fallback)
{
    struct conn_state *state = kw_conn_state(conn);
    uint64_t start = state && state->started ? state->started : fallback;
    return kw_metrics_clock() - start;
}

/* One pass of the request through dispatch.c, with `slow` the answer of
 * its legacy key check when one ran. */
static void dispatch_once(kw_server *s, struct MHD_Connection *conn, const char *url,
                          const char *method, const char *body, size_t body_len,
                          const kw_http_slow *slow, kw_http_req *req, kw_http_resp *resp)
{
    kw_app *app = s->app;
    kw_http_req_init(req);
    req->app = app;
    req->conn = conn;
    req->method = method;
    req->path = url;
    req->body = body;
    req->body_len = body_len;
    req->slow = slow;
    client_ip(conn, req->ip, sizeof req->ip);
    kw_http_resp_init(resp);
    kw_http_dispatch(req, resp);
    json_decref(req->json);
    req->json = NULL;
    if (kw_store_in_transaction(app->store)) {
        /* A handler's error path forgot its transaction.  Roll it back so
         * the lock and the snapshot go with this request, and say so: it
         * is a bug (an abort under the fuzzer, so that one is found).  The
         * route's pattern, not the path, which could hold anything. */
        kw_log_event(KW_LOG_ERROR, "bug",
                     json_pack("{s:s}", "route", req->match.route ? req->match.route->pattern : ""),
                     "BUG: %s %s left a store transaction open; rolled back",
                     req->match.route ? req->match.route->method : "-",
                     req->match.route ? req->match.route->pattern : "(no route)");
        kw_store_rollback(app->store);
#ifdef KW_FUZZING
        abort();
#endif
    }
}

static enum MHD_Result run(kw_server *s, struct MHD_Connection *conn, const char *url,
                           const char *method, const char *body, size_t body_len)
{
    kw_app *app = s->app;
    struct conn_state *state = kw_conn_state(conn);
    /* The request's start, read when its first callback came. */
    uint64_t t0 = state && state->started ? state->started : kw_metrics_clock();
    kw_http_req req;
    kw_http_resp resp;
    if (state && state->capture) {
        struct held_capture *held = state->capture;
        state->capture = NULL;
        return kw_hold_answer(app, conn, url, method, held);
    }
    kw_http_slow *slow = state ? state->slow : NULL;
    if (state) state->slow = NULL;
    dispatch_once(s, conn, url, method, body, body_len, slow, &req, &resp);
    kw_http_slow_free(slow);
    if (req.slow_key || req.slow_job) {
        if (!kw_hold_slow(s, conn, &req)) return MHD_YES;
        /* Could not suspend: the job runs on this thread. */
        kw_http_slow here = {0}, *job = req.slow_job ? req.slow_job : &here;
        if (job == &here) {
            memcpy(here.key, req.slow_key, req.slow_key_len);
            here.len = req.slow_key_len;
        }
        kw_slow_run(app->verifier, job);
        dispatch_once(s, conn, url, method, body, body_len, job, &req, &resp);
        if (job != &here) kw_http_slow_free(job);
    }
    if (req.capture && !kw_hold_capture(s, conn, &req, &resp, t0)) return MHD_YES;
    kw_http_done done = {method, url, req.ip, req.match.route, &req.principal, resp.status,
                         kw_metrics_clock() - t0};
    kw_http_observe(app, &done);
    return kw_server_send(conn, &resp);
}

/* A request answered before its body is read with problem p (413 for a
 * body over the limit, 503 for a connection beyond --max-connections, 400
 * for ambiguous framing); `close` ends the connection after the answer, so
 * the client's retry opens a new one (503) or no byte of an ambiguous body
 * is ever read as the next request (400). */
static enum MHD_Result refuse_early(kw_server *s, struct MHD_Connection *conn, const char *url,
                                    const char *method, const kw_problem *p, int close)
{
    kw_app *app = s->app;
    kw_http_resp resp;
    kw_http_resp_init(&resp);
    kw_resp_problem(&resp, p);
    if (close) kw_resp_header(&resp, "Connection", "close");
    kw_route_match m;
    char ip[64];
    client_ip(conn, ip, sizeof ip);
    kw_http_done done = {method, url, ip,
                         kw_policy_match(method, url, &m) == KW_MATCH_OK ? m.route : NULL, NULL,
                         resp.status, elapsed(conn, kw_metrics_clock())};
    kw_http_observe(app, &done);
    return kw_server_send(conn, &resp);
}

static enum MHD_Result refuse_too_large(kw_server *s, struct MHD_Connection *conn,
                                        const char *url, const char *method)
{
    kw_problem p;
    kw_problem_set(&p, KW_P_TOO_LARGE, NULL, NULL, "Request body is larger than %zu bytes.",
                   s->app->max_body);
    return refuse_early(s, conn, url, method, &p, 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    kw_server *s = cls;
    kw_app *app = s->app;
    if (*con_cls == NULL) {
        struct conn_state *state = kw_conn_state(conn);
        if (state) state->started = kw_metrics_clock();
        kw_problem p;
        if (state && state->over) {
            *con_cls = &REFUSED;
            kw_problem_set(&p, KW_P_UNAVAILABLE, NULL, NULL,
                           "The server has more connections than it serves (%u); retry shortly.",
                           s->max_open);
            return refuse_early(s, conn, url, method, &p, 1);
        }
        kw_framing f;
        if (kw_framing_read(conn, &f, &p)) {
            *con_cls = &REFUSED;
            return refuse_early(s, conn, url, method, &p, 1);
        }
        const char *cl = f.content_length, *te = f.transfer_encoding;
        unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
        if (announced > app->max_body) {
            /* Looked up only for a body over the limit: every capture has a body. */
            const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
            if (announced > DISCARD_MAX(app->max_body) ||
                (expect && strcasecmp(expect, "100-continue") == 0)) {
                *con_cls = &TOO_LARGE;
                return refuse_too_large(s, conn, url, method);
            }
        }
        /* Answering only on the next callback, once MHD has read the whole
         * request, keeps the connection alive; a marker, not an allocation,
         * stands for "no body". */
        if (announced == 0 && !te) {
            *con_cls = &NO_BODY;
            return MHD_YES;
        }
        struct body *b = state ? &state->body : calloc(1, sizeof *b);
        if (!b) return MHD_NO;
        b->len = 0;
        b->too_large = announced > app->max_body;  /* read and dropped, then 413 */
        b->discarded = 0;
        *con_cls = b;
        return MHD_YES;
    }
    if (*con_cls == &NO_BODY) {
        *upload_data_size = 0;
        return run(s, conn, url, method, NULL, 0);
    }
    if (*con_cls == &TOO_LARGE || *con_cls == &REFUSED) return MHD_YES;  /* already answered */
    struct body *b = *con_cls;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (b->len + n > app->max_body) b->too_large = 1;
        if (b->too_large) {
            b->discarded += n;
            return b->discarded > DISCARD_MAX(app->max_body) ? MHD_NO : MHD_YES;
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
    if (b->too_large) return refuse_too_large(s, conn, url, method);
    return run(s, conn, url, method, b->data, b->len);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    kw_server *s = cls;
    (void)toe;
    struct conn_state *state = kw_conn_state(conn);
    if (state && state->done) {
        state->done(state->done_ctx);
        state->done = NULL;
    }
    if (state && state->capture_unsent) {
        state->capture_unsent = 0;
        atomic_fetch_sub_explicit(&s->captures_unsent, 1, memory_order_release);
    }
    if (*con_cls && *con_cls != &NO_BODY && *con_cls != &TOO_LARGE && *con_cls != &REFUSED) {
        struct body *b = *con_cls;
        if (state && b == &state->body) {
            if (b->cap > KW_BODY_KEEP) {  /* a big body's buffer is not kept while idle */
                free(b->data);
                b->data = NULL;
                b->cap = 0;
            }
        } else {
            free(b->data);
            free(b);
        }
    }
    *con_cls = NULL;
}

/* Connections are counted as they open and close; one that opens beyond
 * --max-connections is marked, and its requests are answered 503 at once
 * (refuse_early) instead of taking a share of the threads from the
 * connections within the limit. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    kw_server *s = cls;
    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_state *state = calloc(1, sizeof *state);  /* NULL: nothing is shared */
        unsigned open = atomic_fetch_add(&s->open, 1) + 1;
        if (state) state->over = open > s->max_open;
        *socket_context = state;
    } else {
        atomic_fetch_sub(&s->open, 1);
        struct conn_state *state = *socket_context;
        if (state && state->done) state->done(state->done_ctx);  /* not completed */
        if (state) {
            free(state->body.data);
            kw_http_slow_free(state->slow);
            kw_hold_conn_free(state);
        }
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
        *con_cls = &NO_BODY;
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
    add_common_headers(r);
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
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_THREAD_POOL_SIZE, threads ? threads : 2, MHD_OPTION_CONNECTION_TIMEOUT,
            timeout, MHD_OPTION_CONNECTION_LIMIT, s->max_open + SHED_ROOM,
            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)(64 * 1024),
            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
            s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_END);
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
