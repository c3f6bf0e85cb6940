/* http.h — the keyward HTTP layer (internal to the program).
 *
 * The server*.c files own libmicrohttpd (server.c the listeners,
 * server_request.c a request's life, server_response.c its answer,
 * server_hold.c the requests that wait; no other file includes it):
 * server_request.c reads bodies (with the size limit) and hands a
 * kw_http_req to dispatch.c, which matches the route, verifies the
 * credential and applies the policy table once; only then does a handler
 * (h_*.c) run.  Everything else reads the request through kw_req_*
 * (headers, cookies, the query string) and answers through a kw_http_resp,
 * so the HTTP library can change in those files alone.  Every error body
 * is built by kw_resp_problem, in one place, and a handler's failed
 * storage call becomes its problem in one place too (kw_handler's return
 * value, mapped by dispatch.c). */
#ifndef KW_HTTP_H
#define KW_HTTP_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "keyward/auth.h"
#include "keyward/directory.h"
#include "keyward/flagcache.h"
#include "keyward/keyward.h"
#include "keyward/policy.h"
#include "keyward/service.h"
#include "keyward/session.h"
#include "keyward/store.h"
#include "keyward/workq.h"

#define KW_MAX_BODY (1024 * 1024)
/* Query strings (checked once, in dispatch.c, before any route runs): at
 * most this many parameters, each name and each decoded value at most
 * this many bytes, no name twice, no NUL byte; else 400. */
#define KW_QUERY_VALUE_MAX 1024
#define KW_QUERY_PARAMS_MAX 64

typedef struct kw_app {
    kw_store *store;
    kw_verifier *verifier;
    size_t max_body;
    /* Public keys leak reports must be signed with (--leak-report-keys);
     * NULL: reports are accepted unsigned. */
    const struct kw_leak_keys *leak_keys;
    /* The leak-report endpoint's per-address limit and memory of recent
     * answers; NULL: neither (tests, fuzzing). */
    struct kw_leak_guard *leak_guard;
    kw_flagcache *flags;    /* flag definitions per project (execution routes) */
    /* The directory generation the @me cache checks (me_cache.c); NULL:
     * @me is built at every request. */
    kw_directory *directory;
    kw_sessions *sessions;  /* console sign-in; NULL: sessions are not accepted */
    int secure_cookies;     /* mark the session cookie Secure (behind TLS) */
    unsigned conn_timeout;  /* idle seconds before MHD closes a connection; 0: 30 */
    /* Connections served; requests on the ones opened beyond it are answered
     * 503 + Retry-After and the connection closed (0: 1024). */
    unsigned max_connections;
    /* Captured events that may be answered 200 before they are stored
     * (--capture-ack-window); 0: every capture is answered once its events
     * are committed.  Those events are lost if the process dies first. */
    unsigned capture_ack_window;
    /* Wall time an endpoint's run may take, from its arrival (its wait
     * for the query thread included), in ms (--endpoint-timeout); 0: 10 s. */
    int64_t endpoint_timeout_ms;
    /* Endpoint runs taken and not answered yet (h_endpoints.c): at most
     * KW_ENDPOINT_RUNS_MAX, beyond it 503 at once. */
    atomic_uint endpoint_runs;
    /* Where clients reach this server (--public-url), without a trailing
     * slash; NULL: links are relative.  Never the request's Host header,
     * which the client chooses. */
    const char *public_url;
    /* posthog-js's files, loaded at start (--js-dir); NULL: /static/
     * answers a 404 naming the setting. */
    const struct kw_jsfiles *js;
} kw_app;

/* Endpoint runs at once per instance, queued or running on the query
 * thread; more are answered 503 + Retry-After at once. */
#define KW_ENDPOINT_RUNS_MAX 8
#define KW_ENDPOINT_TIMEOUT_MS_DEFAULT 10000

#define KW_PUBLIC_URL_MAX 512
/* Checks a --public-url value and writes it without trailing slashes into
 * out (size ≥ KW_PUBLIC_URL_MAX + 1).  0, or -1 when it is not
 * http(s)://host[:port][/path] without query, fragment, spaces or
 * control characters. */
int kw_http_public_url(const char *url, char *out, size_t size);

/* Work too slow for a request thread (PBKDF2 runs): a personal key whose
 * verification needs a legacy (pbkdf2) check, or a handler's own work
 * (`work`, with its `ctx`).  The request is suspended while slow.c runs
 * it, then dispatched again with the job done (kw_http_req.slow). */
typedef struct kw_http_slow {
    kw_workq_link link;  /* first: queued on slow.c's work queue */
    char key[KW_KEY_MAX_LEN + 1];
    size_t len;
    kw_verify_result result;
    kw_principal principal;
    void *owner;  /* server_hold.c's: the suspended connection */
    /* A handler's work instead of the key check; release(ctx) runs when
     * the job is freed (kw_http_slow_free), once the request has been
     * dispatched again with it or has gone. */
    void (*work)(struct kw_http_slow *job);
    /* Set: the work is an endpoint's query, run on the query thread (one
     * of its own, so a long query never delays a legacy key check). */
    int query;
    void (*release)(void *ctx);
    void *ctx;
} kw_http_slow;

/* libmicrohttpd's connection, opaque outside the server*.c files. */
struct MHD_Connection;

typedef struct kw_http_req {
    kw_app *app;
    struct MHD_Connection *conn;  /* read only through kw_req_* (server_request.c) */
    const char *method;
    const char *path;
    const char *body;
    size_t body_len;
    json_t *json;           /* parsed body, or NULL when there is none */
    char ip[64];
    kw_route_match match;
    const char *session_token;  /* the kw_session cookie, when it authenticated the request */
    kw_project project;     /* the route's :project, resolved by the policy */
    int level;              /* caller's membership level in project's org */
    kw_call call;
    /* In: a legacy key check already answered for this request (the
     * request was suspended while it ran).  Out: the key dispatch.c could
     * not verify without one (KW_VERIFY_SLOW); no response was built, and
     * server_request.c runs the check and dispatches the request again. */
    const kw_http_slow *slow;
    const char *slow_key;
    size_t slow_key_len;
    /* Out: a job a handler hands over (its `work` set; no response was
     * built), which server_request.c runs like the key check above. */
    kw_http_slow *slow_job;
    /* Out: a capture handler's staged events, which server_hold.c stores
     * before it sends the answer the handler built. */
    kw_capture_batch *capture;
    /* Last, and not zeroed with the rest (kw_http_req_init): 3 KB that
     * kw_principal_clear makes anonymous. */
    kw_principal principal;
} kw_http_req;

#define KW_RESP_MAX_HEADERS 8

/* A response built once and queued on any number of connections (see
 * kw_http_resp.shared); server_response.c's, opaque elsewhere. */
typedef struct kw_http_ready kw_http_ready;

typedef struct kw_http_resp {
    int status;
    json_t *body;           /* owned; NULL = empty body */
    const char *header_names[KW_RESP_MAX_HEADERS];
    const char *header_values[KW_RESP_MAX_HEADERS];  /* into header_text */
    int n_headers;
    size_t header_used;
    /* A body already serialized — the cached flag definitions, the
     * console's embedded files — sent as is instead of `body`, with
     * Content-Type raw_type.  release(release_ctx) runs once MHD is done
     * with it, or at once if the response cannot be built; NULL release
     * means static data. */
    const char *raw;
    size_t raw_len;
    const char *raw_type;
    void (*release)(void *);
    void *release_ctx;
    /* A ready response shared between requests (see
     * kw_http_ready_new), queued as is instead of building one; its
     * bytes must stay alive until the request is complete, so release
     * then runs at completion.  Used only when the connection can defer
     * that (else raw/body as usual, which must then be set too). */
    const kw_http_ready *shared;
    /* Last, and not zeroed by kw_http_resp_init: copies of header values. */
    char header_text[2048];
} kw_http_resp;

/* A route's handler.  It answers through resp and returns KW_OK, or
 * returns the kw_err of the library call that failed without answering:
 * dispatch.c turns that into the problem (kw_problem_from_store: 503 with
 * Retry-After when the database is unreachable, 404 for KW_ERR_NOTFOUND,
 * else 500), once for every route, so no handler picks a status for a
 * storage failure. */
typedef int (*kw_handler)(kw_http_req *req, kw_http_resp *resp);

/* dispatch.c */
void kw_http_dispatch(kw_http_req *req, kw_http_resp *resp);

/* respond.c */
/* Request and response set up for one request.  They live on the stack of
 * every request, so only what must start zeroed is zeroed (~1 KB of the
 * 6 KB; the rest is written before it is read). */
void kw_http_req_init(kw_http_req *req);
void kw_http_resp_init(kw_http_resp *resp);
void kw_resp_json(kw_http_resp *resp, int status, json_t *body);  /* steals body */
/* Moves an answer (status, body or pre-serialized body, headers) into dst,
 * which it initialises; src keeps no body. */
void kw_http_resp_move(kw_http_resp *dst, kw_http_resp *src);
void kw_resp_problem(kw_http_resp *resp, const kw_problem *problem);
void kw_resp_error(kw_http_resp *resp, kw_problem_kind kind, const char *attr, const char *detail);
void kw_resp_header(kw_http_resp *resp, const char *name, const char *value);
/* 429 in DRF's words with Retry-After: `seconds` (≥ 1). */
void kw_resp_throttled(kw_http_resp *resp, int seconds);
/* A pre-serialized body of Content-Type `type` (see kw_http_resp.raw). */
void kw_resp_raw(kw_http_resp *resp, int status, const char *type, const char *data, size_t len,
                 void (*release)(void *), void *release_ctx);
/* The link to this path with the given query ("limit=…&offset=…"): on
 * app->public_url when set, else relative (path and query only). */
json_t *kw_req_url(const kw_http_req *req, const char *query);
/* limit/offset pagination, DRF's shape {count, next, previous, results}. */
void kw_req_page(const kw_http_req *req, int64_t default_limit, int64_t max_limit,
                 int64_t *limit, int64_t *offset);
json_t *kw_page_json(const kw_http_req *req, int64_t count, int64_t limit, int64_t offset,
                     json_t *results);

/* me_cache.c — GET /api/users/@me/ from memory (see the file).
 * kw_me_cache_answer: 1 when it answered from a current entry, else 0.
 * On a miss: kw_me_cache_generation (read before the rows) and then
 * kw_me_cache_send, which answers `me` (stolen) and keeps it when it
 * may. */
int kw_me_cache_answer(kw_http_req *req, kw_http_resp *resp);
int64_t kw_me_cache_generation(kw_http_req *req);
void kw_me_cache_send(kw_http_req *req, kw_http_resp *resp, int64_t generation, json_t *me);

/* serialize.c — PostHog's JSON shapes. */
json_t *kw_json_time(kw_time t);
json_t *kw_json_user_basic(const kw_user *user);
json_t *kw_json_user_by_id(kw_store *store, int64_t user_id);
json_t *kw_json_project(const kw_project *project, const kw_org *org);
json_t *kw_json_pkey(kw_store *store, const kw_pkey *key, const char *value);
json_t *kw_json_flag(kw_store *store, const kw_flag *flag);
json_t *kw_json_psk(kw_store *store, const kw_psk *key, const char *value);

/* handlers, one per route id */
int kw_h_health(kw_http_req *, kw_http_resp *);
int kw_h_me(kw_http_req *, kw_http_resp *);
int kw_h_project_list(kw_http_req *, kw_http_resp *);
int kw_h_project_get(kw_http_req *, kw_http_resp *);
int kw_h_project_reset_token(kw_http_req *, kw_http_resp *);
int kw_h_pkey_list(kw_http_req *, kw_http_resp *);
int kw_h_pkey_create(kw_http_req *, kw_http_resp *);
int kw_h_pkey_get(kw_http_req *, kw_http_resp *);
int kw_h_pkey_update(kw_http_req *, kw_http_resp *);
int kw_h_pkey_delete(kw_http_req *, kw_http_resp *);
int kw_h_pkey_roll(kw_http_req *, kw_http_resp *);
int kw_h_flag_list(kw_http_req *, kw_http_resp *);
int kw_h_flag_create(kw_http_req *, kw_http_resp *);
int kw_h_flag_get(kw_http_req *, kw_http_resp *);
int kw_h_flag_update(kw_http_req *, kw_http_resp *);
int kw_h_flag_delete(kw_http_req *, kw_http_resp *);
int kw_h_activity_list(kw_http_req *, kw_http_resp *);
int kw_h_flag_definitions(kw_http_req *, kw_http_resp *);
int kw_h_flag_remote_config(kw_http_req *, kw_http_resp *);
int kw_h_psk_list(kw_http_req *, kw_http_resp *);
int kw_h_psk_create(kw_http_req *, kw_http_resp *);
int kw_h_psk_get(kw_http_req *, kw_http_resp *);
int kw_h_psk_update(kw_http_req *, kw_http_resp *);
int kw_h_psk_delete(kw_http_req *, kw_http_resp *);
int kw_h_psk_roll(kw_http_req *, kw_http_resp *);
int kw_h_leak_report(kw_http_req *, kw_http_resp *);
int kw_h_leak_verify(kw_http_req *, kw_http_resp *);
int kw_h_user_update(kw_http_req *, kw_http_resp *);

/* body.c — request body decoding, shared by every route that takes a
 * body.  A gzip body (Content-Encoding: gzip, ?compression=gzip / gzip-js,
 * or the gzip magic bytes, as PostHog's SDKs send) is inflated, at most
 * KW_MAX_INFLATED bytes (more → 413); a form body's `data` field (JSON or
 * base64 of JSON, posthog-js) is unwrapped; otherwise the body is returned
 * as is, without a copy.  *out is req->body or a heap buffer the caller
 * frees with kw_body_free.  On failure 1 with *problem set (400
 * invalid_payload, 413). */
#define KW_MAX_INFLATED (10 * 1024 * 1024)
int kw_body_decode(const kw_http_req *req, const char **out, size_t *len, kw_problem *problem);
void kw_body_free(const kw_http_req *req, const char *out);

/* Execution routes: remote flag evaluation (h_flags_eval.c). */
int kw_h_flags_eval(kw_http_req *, kw_http_resp *);
int kw_h_decide(kw_http_req *, kw_http_resp *);

/* capture (phc_ in the body) and endpoints (named queries over captured
 * events) */
json_t *kw_json_endpoint(kw_store *store, const kw_endpoint *endpoint);
int kw_h_capture(kw_http_req *, kw_http_resp *);
int kw_h_capture_v1(kw_http_req *, kw_http_resp *);
int kw_h_endpoint_list(kw_http_req *, kw_http_resp *);
int kw_h_endpoint_create(kw_http_req *, kw_http_resp *);
int kw_h_endpoint_get(kw_http_req *, kw_http_resp *);
int kw_h_endpoint_update(kw_http_req *, kw_http_resp *);
int kw_h_endpoint_delete(kw_http_req *, kw_http_resp *);
int kw_h_endpoint_run(kw_http_req *, kw_http_resp *);
/* the key reports (h_report.c) */
int kw_h_pkey_report(kw_http_req *, kw_http_resp *);
int kw_h_key_report(kw_http_req *, kw_http_resp *);

/* console: sign-in, invitations, the embedded pages (h_console.c,
 * h_console_files.c) */
int kw_h_login(kw_http_req *, kw_http_resp *);
int kw_h_logout(kw_http_req *, kw_http_resp *);
int kw_h_session(kw_http_req *, kw_http_resp *);
int kw_h_invite_create(kw_http_req *, kw_http_resp *);
int kw_h_invite_list(kw_http_req *, kw_http_resp *);
int kw_h_invite_delete(kw_http_req *, kw_http_resp *);
int kw_h_invite_accept(kw_http_req *, kw_http_resp *);
int kw_h_invite_get(kw_http_req *, kw_http_resp *);
int kw_h_console(kw_http_req *, kw_http_resp *);
int kw_h_console_asset(kw_http_req *, kw_http_resp *);
#define KW_SESSION_COOKIE "kw_session"

/* operations: readiness (h_ops.c) */
int kw_h_health_ready(kw_http_req *, kw_http_resp *);
/* openapi.c: the OpenAPI 3.1 document, generated from the route table
 * (servers: public_url, else "/"), and GET /api/schema/ serving it. */
json_t *kw_openapi_document(const char *public_url);
int kw_h_schema(kw_http_req *, kw_http_resp *);
/* The Prometheus text of the process's counters (h_metrics.c): a heap
 * string of *len bytes the caller frees, or NULL when out of memory. */
char *kw_metrics_render(const kw_app *app, size_t *len);

/* access.c — what every answered request leaves behind: its count and
 * latency in the metrics and, with --log-format, its access line. */
typedef struct kw_http_done {
    const char *method;
    const char *path;              /* raw: never logged as is */
    const char *ip;
    const kw_route *route;         /* NULL: no route matched */
    const kw_principal *principal; /* NULL: not authenticated */
    int status;
    uint64_t ns;                   /* arrival to answer */
} kw_http_done;
void kw_http_observe(const kw_app *app, const kw_http_done *done);
/* organizations, their projects and members (h_orgs.c, h_members.c) */
int kw_h_org_list(kw_http_req *, kw_http_resp *);
int kw_h_org_create(kw_http_req *, kw_http_resp *);
int kw_h_org_get(kw_http_req *, kw_http_resp *);
int kw_h_org_update(kw_http_req *, kw_http_resp *);
int kw_h_org_delete(kw_http_req *, kw_http_resp *);
int kw_h_org_project_list(kw_http_req *, kw_http_resp *);
int kw_h_project_create(kw_http_req *, kw_http_resp *);
int kw_h_project_update(kw_http_req *, kw_http_resp *);
int kw_h_project_delete(kw_http_req *, kw_http_resp *);
int kw_h_member_list(kw_http_req *, kw_http_resp *);
int kw_h_member_update(kw_http_req *, kw_http_resp *);
int kw_h_member_delete(kw_http_req *, kw_http_resp *);
/* PostHog's SDKs beyond flags and capture: a project's settings, the
 * remote config posthog-js loads at init (h_remote_config.c). */
int kw_h_remote_config(kw_http_req *, kw_http_resp *);
/* a project's group types (h_group_types.c) */
int kw_h_group_types_list(kw_http_req *, kw_http_resp *);
int kw_h_group_types_rename(kw_http_req *, kw_http_resp *);
/* an organization's webhooks and their delivery log (h_webhooks.c) */
int kw_h_webhook_list(kw_http_req *, kw_http_resp *);
int kw_h_webhook_create(kw_http_req *, kw_http_resp *);
int kw_h_webhook_get(kw_http_req *, kw_http_resp *);
int kw_h_webhook_update(kw_http_req *, kw_http_resp *);
int kw_h_webhook_delete(kw_http_req *, kw_http_resp *);
int kw_h_webhook_deliveries(kw_http_req *, kw_http_resp *);
int kw_h_webhook_test(kw_http_req *, kw_http_resp *);
/* The project's browser SDK settings added to its JSON (PostHog's team
 * fields); KW_OK or the store's error. */
int kw_json_project_settings(kw_store *store, int64_t project_id, json_t *obj);

/* h_static.c — posthog-js's files (GET /static/:name), read once from
 * the folder the operator names (its dist/); only a fixed list of names is
 * served.  kw_jsfiles_load fails (err set) when the folder has no array.js
 * or a file cannot be read. */
typedef struct kw_jsfiles kw_jsfiles;
int kw_jsfiles_load(const char *dir, kw_jsfiles **out, char *err, size_t errsz);
void kw_jsfiles_free(kw_jsfiles *js);
int kw_h_static(kw_http_req *, kw_http_resp *);

/* cacheable.c — an answer a browser may keep: kw_etag_of writes
 * W/"<32 hex of sha256(data)>"; kw_resp_cacheable sends data (type, with
 * ETag and Cache-Control) or, when If-None-Match names the ETag, a 304
 * (release then runs at once). */
#define KW_ETAG_MAX 48
void kw_etag_of(const char *data, size_t len, char out[KW_ETAG_MAX]);
/* Whether an If-None-Match header (NULL: none) names etag: "*", or a list
 * of entity tags one of which is etag. */
int kw_etag_none_match(const char *header, const char *etag);
void kw_resp_cacheable(const kw_http_req *req, kw_http_resp *resp, const char *type,
                       const char *data, size_t len, const char *etag, const char *cache_control,
                       void (*release)(void *), void *release_ctx);

/* slow.c — one thread that runs those checks in order and hands each
 * finished job to done(), which resumes its request. */
typedef struct kw_slow_queue kw_slow_queue;
int kw_slow_start(kw_verifier *verifier, void (*done)(kw_http_slow *job), kw_slow_queue **out);
/* Queues a job (its key and len set, or its work); -1 once stopping: run
 * it yourself, with kw_slow_run. */
int kw_slow_submit(kw_slow_queue *q, kw_http_slow *job);
/* Runs a job on the calling thread: its work, else its key check. */
void kw_slow_run(kw_verifier *verifier, kw_http_slow *job);
/* Frees a job and releases its work's context.  NULL is a no-op. */
void kw_http_slow_free(kw_http_slow *job);
/* Answers what is queued, then ends the thread.  NULL is a no-op. */
void kw_slow_stop(kw_slow_queue *q);
/* After the server's threads have ended (a request may still submit, and
 * be refused, until then): frees the queue, stopping it first if needed. */
void kw_slow_free(kw_slow_queue *q);

/* The server*.c files — the only users of libmicrohttpd. */
typedef struct kw_server kw_server;
/* The request's header `name` (case-insensitive), cookie `name`, or first
 * query parameter `name` (decoded; stops at a NUL byte): NULL when absent. */
const char *kw_req_header(const kw_http_req *req, const char *name);
/* The time this request was verified at (one clock reading serves the
 * verification, the rate limit and the caches), else the clock now. */
static inline int64_t kw_req_now(const kw_http_req *req)
{
    return req->principal.verified_at ? req->principal.verified_at : kw_now();
}
const char *kw_req_cookie(const kw_http_req *req, const char *name);
const char *kw_req_query(const kw_http_req *req, const char *name);
/* Calls visit for each query parameter in order, with the decoded name
 * and value and their lengths (value NULL for a bare name), until visit
 * returns nonzero. */
typedef int (*kw_query_visit)(void *ctx, const char *name, size_t name_len, const char *value,
                              size_t value_len);
void kw_req_query_each(const kw_http_req *req, kw_query_visit visit, void *ctx);
/* The response that sending *resp would build (consumes its body; raw
 * bytes with a release are then the response's to release), kept ready
 * to share (kw_http_resp.shared).  NULL when out of memory. */
kw_http_ready *kw_http_ready_new(kw_http_resp *resp);
void kw_http_ready_free(kw_http_ready *ready);
int kw_server_start(kw_app *app, const char *listen, unsigned threads, kw_server **out,
                    char *err, size_t errsz);
/* The metrics listener (--metrics-listen): serves GET /metrics only. */
int kw_metrics_server_start(kw_app *app, const char *listen, kw_server **out, char *err,
                            size_t errsz);
void kw_server_stop(kw_server *server);
/* The port actually bound (useful with port 0). */
unsigned kw_server_port(const kw_server *server);

#endif
