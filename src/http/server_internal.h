/* server_internal.h — what server.c, server_request.c, server_response.c,
 * server_hold.c and framing.c share: the server, the per-connection state,
 * and the calls between them.  Only these files see libmicrohttpd. */
#ifndef KW_HTTP_SERVER_INTERNAL_H
#define KW_HTTP_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <stdatomic.h>

#include "http/http.h"

struct kw_server {
    struct MHD_Daemon *daemon;
    kw_app *app;
    unsigned port;
    kw_slow_queue *slow;  /* legacy key checks (slow.c); NULL on the metrics listener */
    kw_slow_queue *queries;  /* endpoint runs (kw_http_slow.query), on a thread of their own */
    kw_capture_group *capture;  /* group commit of captured events; ditto */
    atomic_uint open;           /* connections open now */
    /* Captures taken (stored, queued or held) whose answer is not sent yet,
     * and whether the server is stopping: a stop waits for the first to
     * drain, and from then on refuses captures instead of storing events
     * whose answer might never go out (the SDK would send them again). */
    atomic_uint captures_unsent;
    atomic_bool stopping;
    unsigned max_open;          /* --max-connections: more are answered 503 */
    /* --capture-ack-window: events that may be answered before they are
     * stored; those so answered and not stored yet, and their requests
     * (at most KW_CAPTURE_QUEUE_MAX, an empty one counting as one event);
     * set while the last stored group failed (captures then wait for
     * their outcome again). */
    size_t ack_window;
    _Atomic size_t unstored;
    _Atomic size_t early_requests;
    atomic_bool store_failing;
};

/* Capture requests waiting for the capture group at most; more are shed
 * with 503 + Retry-After.  Each holds a connection, and the server takes
 * at most 2048.  With --capture-ack-window, as many again may be queued
 * already answered, so answering early never takes a waiting request's
 * place (and the queue's memory stays bounded by requests, whatever the
 * window). */
#define KW_CAPTURE_QUEUE_MAX 1024

struct held_capture;

/* A request's body as it arrives. */
struct body {
    char *data;
    size_t len, cap;
    int too_large;
    size_t discarded;  /* bytes read and dropped after the body crossed the limit */
};

/* What a connection must do once its current request is complete: drop
 * the reference that kept a shared response's bytes alive while they were
 * being sent.  One per connection (allocated when it opens, so not per
 * request): MHD runs one request at a time on a connection. */
struct conn_state {
    void (*done)(void *);
    void *done_ctx;
    uint64_t started;  /* the current request's arrival (kw_metrics_clock) */
    int over;          /* opened beyond --max-connections: its requests get 503 */
    kw_http_slow *slow;  /* a finished legacy check for the current request */
    struct held_capture *capture;  /* its stored (or failed) capture */
    int capture_unsent;  /* the current request is counted in captures_unsent */
    /* The last held capture's memory, kept for the connection's next one:
     * an SDK sends its batches on one keep-alive connection, and the
     * answer and principal it holds are kilobytes (a malloc and free of
     * that size per request also made glibc consolidate its free lists). */
    struct held_capture *spare;
    /* The current request's body, its buffer kept for the next request
     * (up to KW_BODY_KEEP bytes): SDKs post on keep-alive connections, and
     * a body buffer allocated and freed per request costs a malloc of 4 KB
     * or more, which makes glibc consolidate its free lists. */
    struct body body;
    /* The last text of the current request in which MHD's %XX decoding
     * made a NUL byte (kw_server_unescape); cleared when a request starts
     * and ends. */
    const char *nul_decoded;
};

#define KW_BODY_KEEP (64u * 1024)

static inline struct conn_state *kw_conn_state(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

/* server_response.c: queues resp on the connection.  kw_server_common_headers
 * adds the headers every response carries (the metrics listener builds its
 * own response and adds them too). */
enum MHD_Result kw_server_send(struct MHD_Connection *conn, kw_http_resp *resp);
void kw_server_common_headers(struct MHD_Response *r);

/* server_request.c: the API listener's libmicrohttpd callbacks, which
 * server.c registers (cls is the kw_server): each step of a request, its
 * completion, and a connection's opening and closing. */
enum MHD_Result kw_server_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls);
size_t kw_server_unescape(void *cls, struct MHD_Connection *conn, char *text);
void kw_server_on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode toe);
void kw_server_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe);

/* The headers that frame a request or name its caller (framing.c): the
 * first Content-Length and Transfer-Encoding (NULL when absent) and how
 * often each, and Authorization, was sent. */
typedef struct kw_framing {
    const char *content_length, *transfer_encoding;
    unsigned n_content_length, n_transfer_encoding, n_authorization;
} kw_framing;
/* Reads them; 1 with a 400 problem when a proxy could read the request
 * otherwise than libmicrohttpd does (repeated Content-Length, Transfer-
 * Encoding or Authorization; a Transfer-Encoding other than chunked, or
 * with a Content-Length), else 0. */
int kw_framing_read(struct MHD_Connection *conn, kw_framing *f, kw_problem *p);

/* server_hold.c: requests suspended while work runs elsewhere.
 * kw_hold_slow: the request needs a legacy key check (req->slow_key):
 * suspended and queued, dispatched again with the answer; -1 when it
 * cannot be (the caller runs the check).  kw_hold_slow_done is slow.c's
 * callback.  kw_hold_capture: the handler staged a capture
 * (req->capture): 0 when the request is held until it is stored (then
 * kw_hold_answer sends the answer), 1 when resp holds the answer now. */
int kw_hold_slow(kw_server *s, struct MHD_Connection *conn, const kw_http_req *req);
void kw_hold_slow_done(kw_http_slow *job);
int kw_hold_capture(kw_server *s, struct MHD_Connection *conn, kw_http_req *req,
                    kw_http_resp *resp, uint64_t t0);
enum MHD_Result kw_hold_answer(kw_app *app, struct MHD_Connection *conn, const char *url,
                               const char *method, struct held_capture *held);
/* At a connection's close: frees its held capture (not sent yet) and its
 * spare one. */
void kw_hold_conn_free(struct conn_state *state);

#endif
