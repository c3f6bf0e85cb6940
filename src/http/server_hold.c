/* server_hold.c — requests that wait while their work runs elsewhere.
 *
 * MHD serves many connections on each of a few threads, so a request must
 * never make its thread wait.  Two kinds of request would: one whose key
 * needs a legacy (pbkdf2) check, which runs on slow.c's thread, and a
 * capture, whose events the capture group stores together with other
 * requests' in one transaction.  Each is suspended
 * (MHD_suspend_connection) while that runs and resumed with the outcome;
 * MHD then calls the request again and server_request.c answers it — the legacy
 * check by dispatching the request again, the capture by sending the
 * answer held here (kw_hold_answer).  Suspended before queued, so a
 * request is never resumed before it is suspended.
 *
 * With --capture-ack-window N, a capture is answered at once, before it is
 * stored, while fewer than N events (and KW_CAPTURE_QUEUE_MAX requests) so
 * answered are still waiting to be stored; past that, and while the last
 * group failed to store, captures
 * wait for their outcome as without the window.  An answered batch may
 * wait up to KW_CAPTURE_GATHER_US for others to share its transaction
 * (nobody is waiting on it).  The window is what a crash can lose; a failure to store such events is logged and counted
 * (keyward_capture_lost_events_total). */
#include <stdlib.h>
#include <string.h>

#include "http/server_internal.h"
#include "keyward/metrics.h"
#include "logger.h"

/* A capture request suspended until its events are stored: its answer,
 * and what the access log needs once it is sent. */
struct held_capture {
    struct MHD_Connection *conn;
    kw_server *server;
    int rc;  /* the store's outcome */
    kw_http_resp resp;
    const kw_route *route;
    char ip[64];
    uint64_t started;
    kw_principal principal;
};

/* A held capture's memory, when its connection closes before it is sent. */
static void hold_free(struct held_capture *held)
{
    if (held) {
        json_decref(held->resp.body);
        if (held->resp.release) held->resp.release(held->resp.release_ctx);
    }
    free(held);
}

/* slow.c's worker finished a job: hand the answer to the request and let
 * MHD call it again.  MHD_resume_connection orders the write before the
 * request thread's read. */
void kw_hold_slow_done(kw_http_slow *job)
{
    struct MHD_Connection *conn = job->owner;
    kw_conn_state(conn)->slow = job;
    MHD_resume_connection(conn);
}

/* The request needs a legacy key check, or its handler handed over a job
 * (req->slow_job): suspend it and queue the job; the request is dispatched
 * again once slow_done resumes it.  Suspended before queued, so it is
 * never resumed first.  -1 when it cannot be (no connection state or
 * memory): the caller runs the job itself. */
int kw_hold_slow(kw_server *s, struct MHD_Connection *conn, const kw_http_req *req)
{
    struct conn_state *state = kw_conn_state(conn);
    if (!state) return -1;
    kw_http_slow *job = req->slow_job;
    if (!job) {
        if (!(job = calloc(1, sizeof *job))) return -1;
        memcpy(job->key, req->slow_key, req->slow_key_len);
        job->len = req->slow_key_len;
    }
    job->owner = conn;
    MHD_suspend_connection(conn);
    if (kw_slow_submit(job->query ? s->queries : s->slow, job)) {  /* stopping: run it here */
        kw_slow_run(s->app->verifier, job);
        kw_hold_slow_done(job);
    }
    return 0;
}

/* A group's outcome says whether the database takes captures again (runs
 * on the group's thread).  Written only on a change: request threads read
 * it on every early answer. */
static void note_outcome(kw_server *s, int rc)
{
    if (atomic_load_explicit(&s->store_failing, memory_order_relaxed) != (rc != KW_OK))
        atomic_store_explicit(&s->store_failing, rc != KW_OK, memory_order_relaxed);
}

/* The capture group stored a held request's events: hand it the outcome
 * and let MHD call it again (runs on the group's thread). */
static void capture_done(kw_capture_batch *b, int rc, void *ctx)
{
    struct held_capture *held = ctx;
    kw_capture_batch_free(b);
    note_outcome(held->server, rc);
    held->rc = rc;
    kw_conn_state(held->conn)->capture = held;
    MHD_resume_connection(held->conn);
}

/* What a batch takes of the window: its events, and an empty batch one,
 * since it still takes a place in the queue. */
static size_t window_cost(const kw_capture_batch *b)
{
    size_t n = kw_capture_batch_size(b);
    return n ? n : 1;
}

/* The capture group stored (or failed to store) events answered before
 * they were stored: they leave the window; a failure loses them, so it is
 * logged and counted where an operator looks. */
static void early_done(kw_capture_batch *b, int rc, void *ctx)
{
    kw_server *s = ctx;
    size_t n = kw_capture_batch_size(b), cost = window_cost(b);
    kw_capture_batch_free(b);
    note_outcome(s, rc);
    atomic_fetch_sub_explicit(&s->unstored, cost, memory_order_relaxed);
    atomic_fetch_sub_explicit(&s->early_requests, 1, memory_order_relaxed);
    if (rc == KW_OK) return;
    kw_metrics_capture_lost(n);
    kw_log_event(KW_LOG_ERROR, "capture_lost", NULL,
                 "%zu captured events answered before they were stored could not be stored: %s",
                 n, kw_strerror(rc));
}

/* Queues b to be stored after its request is answered, when the window
 * has room for its events and the database took the last group: 1 when
 * queued (the caller sends the 200 now), 0 when the request must wait for
 * its outcome (a full queue or a stopping group is then answered there). */
static int queue_early(kw_server *s, kw_capture_batch *b)
{
    size_t n = window_cost(b);
    if (!s->ack_window || atomic_load_explicit(&s->store_failing, memory_order_relaxed)) return 0;
    size_t now = atomic_load_explicit(&s->unstored, memory_order_relaxed);
    do {
        if (n > s->ack_window - now) return 0;  /* now <= window: never wraps */
    } while (!atomic_compare_exchange_weak_explicit(&s->unstored, &now, now + n,
                                                    memory_order_relaxed, memory_order_relaxed));
    if (atomic_fetch_add_explicit(&s->early_requests, 1, memory_order_relaxed) <
            KW_CAPTURE_QUEUE_MAX &&
        kw_capture_group_submit_answered(s->capture, b, early_done, s) == KW_OK)
        return 1;
    atomic_fetch_sub_explicit(&s->early_requests, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&s->unstored, n, memory_order_relaxed);
    return 0;
}

/* Stores a staged capture on the request's own thread (no capture group,
 * or it is stopping) and frees it: a kw_err. */
static int store_here(kw_http_req *req, kw_capture_batch *b)
{
    int rc = kw_capture_store(&req->call, b);
    kw_capture_batch_free(b);
    return rc;
}

/* The handler staged a capture: suspend the request until the capture
 * group has stored it, then answer (kw_hold_answer).  Suspended before
 * queued, so it is never resumed first; a batch the group refuses is
 * answered the same way, through a resume of its own: 503 while the
 * group's queue is full (excess load is shed, not queued without bound),
 * else stored here.  0 when held; 1 when answered in resp at once
 * (stored here, or queued within the --capture-ack-window). */
int kw_hold_capture(kw_server *s, struct MHD_Connection *conn, kw_http_req *req,
                    kw_http_resp *resp, uint64_t t0)
{
    kw_capture_batch *b = req->capture;
    req->capture = NULL;
    struct conn_state *state = kw_conn_state(conn);
    /* Counted before stopping is read, and the stop sets stopping before
     * it reads the count (both sequentially consistent): either the stop
     * waits for this capture's answer, or this capture sees the stop. */
    if (state && !state->capture_unsent) {  /* until on_completed: its answer went out */
        state->capture_unsent = 1;
        atomic_fetch_add(&s->captures_unsent, 1);
    }
    if (atomic_load(&s->stopping)) {
        kw_capture_batch_free(b);  /* not stored: its answer could be cut off */
        kw_problem p;
        kw_problem_set(&p, KW_P_UNAVAILABLE, NULL, NULL, "The server is stopping; retry shortly.");
        kw_resp_problem(resp, &p);  /* replaces the 200 the handler left */
        return 1;
    }
    if (s->capture && queue_early(s, b)) return 1;
    struct held_capture *held = NULL;
    if (state && s->capture) {
        held = state->spare ? state->spare : malloc(sizeof *held);
        state->spare = NULL;
    }
    if (!held) {
        kw_problem p;
        int rc = store_here(req, b);
        if (rc && kw_capture_problem(&p, rc)) kw_resp_problem(resp, &p);
        return 1;
    }
    held->conn = conn;
    held->server = s;
    held->route = req->match.route;
    memcpy(held->ip, req->ip, sizeof held->ip);
    held->started = state->started ? state->started : t0;
    memcpy(&held->principal, &req->principal, sizeof held->principal);
    kw_http_resp_move(&held->resp, resp);
    MHD_suspend_connection(conn);
    int rc = kw_capture_group_submit(s->capture, b, capture_done, held);
    if (rc == KW_OK) return 0;  /* capture_done resumes it */
    if (rc == KW_ERR_UNAVAILABLE) rc = store_here(req, b);
    else kw_capture_batch_free(b);
    held->rc = rc;
    state->capture = held;
    MHD_resume_connection(conn);
    return 0;
}

/* A held capture request, resumed: send its answer, or the refusal with
 * the same headers (CORS). */
enum MHD_Result kw_hold_answer(kw_app *app, struct MHD_Connection *conn, const char *url,
                               const char *method, struct held_capture *held)
{
    kw_problem p;
    int refused = held->rc == KW_ERR_LIMIT;
    if (refused)
        kw_problem_set(&p, KW_P_UNAVAILABLE, NULL, NULL,
                       "Too many events are waiting to be stored; retry shortly.");
    if (refused || (held->rc && kw_capture_problem(&p, held->rc)))
        kw_resp_problem(&held->resp, &p);
    kw_http_done done = {method, url, held->ip, held->route, &held->principal,
                         held->resp.status, kw_metrics_clock() - held->started};
    kw_http_observe(app, &done);
    enum MHD_Result ret = kw_server_send(conn, &held->resp);
    struct conn_state *state = kw_conn_state(conn);
    if (state && !state->spare) state->spare = held;
    else free(held);
    return ret;
}

void kw_hold_conn_free(struct conn_state *state)
{
    hold_free(state->capture);
    state->capture = NULL;
    free(state->spare);
    state->spare = NULL;
}
