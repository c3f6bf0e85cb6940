/* server_request.c — one request's life in libmicrohttpd's callbacks:
 * its connection counted as it opens, its body read, its dispatch and its
 * answer, and what it held freed once it is complete; with the accessors
 * (kw_req_header, kw_req_query, …) through which every other file reads a
 * request.
 *
 * A request without a body needs no per-request state (a static marker
 * stands in); a body is accumulated up to KW_MAX_BODY, and a larger one is
 * answered 413.  The answer must not be lost: an answer sent before the
 * body is read ends the connection (libmicrohttpd takes no answer in the
 * middle of a body), and closing a socket with unread bytes resets it, so
 * a client still writing — Node's fetch, for one — sees ECONNRESET
 * instead, and an SDK that halves its batch on 413 retries the same batch
 * for ever.  So a body over the limit is read and dropped to its end, then
 * answered 413 on a connection that stays open; only a client that waits
 * for "100 Continue" (it has sent nothing yet) or announces more than
 * DISCARD_MAX is answered at once.  A chunked body announces no size: past
 * DISCARD_MAX its connection is closed unanswered, so an endless body
 * cannot keep one busy.  A request whose key needs a legacy (pbkdf2)
 * check, and a capture whose events the capture group stores with other
 * requests' in one transaction, are suspended meanwhile (server_hold.c),
 * so neither holds a request thread. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

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

/* libmicrohttpd decodes %XX in the path and in the query's names and
 * values, then hands the path over as a C string: a %00 in it would cut it
 * short, so that DELETE /api/personal_api_keys/ID%00/roll/ deleted the key,
 * and a proxy in front (or a log) would judge a different request than
 * keyward routes.  The decoding stays MHD's; a text in which it made a NUL
 * is remembered, and a path that is that text is refused.  (The query's
 * values come with their lengths, and check_query refuses a NUL in them.) */
size_t kw_server_unescape(void *cls, struct MHD_Connection *conn, char *text)
{
    (void)cls;
    size_t n = MHD_http_unescape(text);
    if (memchr(text, '\0', n)) {
        struct conn_state *state = kw_conn_state(conn);
        if (state) state->nul_decoded = text;
    }
    return n;
}

enum MHD_Result kw_server_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
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
        if (state && state->nul_decoded) {
            int in_path = state->nul_decoded == url;
            state->nul_decoded = NULL;
            if (in_path) {
                *con_cls = &REFUSED;
                kw_problem_set(&p, KW_P_VALIDATION, "path_invalid", NULL,
                               "The path may not contain a NUL byte (%%00).");
                return refuse_early(s, conn, url, method, &p, 1);
            }
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

void kw_server_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode toe)
{
    kw_server *s = cls;
    (void)toe;
    struct conn_state *state = kw_conn_state(conn);
    if (state) state->nul_decoded = NULL;
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
void kw_server_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
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
