/* http.h — the keyward HTTP layer (internal to the program).
 *
 * server.c owns libmicrohttpd: it reads bodies (with the size limit) and
 * hands a kw_http_req to dispatch.c, which matches the route, verifies the
 * credential and applies the policy table once; only then does a handler
 * (h_*.c) run.  Handlers fill a kw_http_resp; every error body is built by
 * kw_resp_problem, in one place. */
#ifndef KW_HTTP_H
#define KW_HTTP_H

#include <jansson.h>
#include <microhttpd.h>

#include "keyward/auth.h"
#include "keyward/flagcache.h"
#include "keyward/policy.h"
#include "keyward/service.h"
#include "keyward/session.h"
#include "keyward/store.h"

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
    kw_sessions *sessions;  /* console sign-in; NULL: sessions are not accepted */
    int secure_cookies;     /* mark the session cookie Secure (behind TLS) */
    unsigned conn_timeout;  /* idle seconds before MHD closes a connection; 0: 30 */
    /* Where clients reach this server (--public-url), without a trailing
     * slash; NULL: links are relative.  Never the request's Host header,
     * which the client chooses. */
    const char *public_url;
} kw_app;

#define KW_PUBLIC_URL_MAX 512
/* Checks a --public-url value and writes it without trailing slashes into
 * out (size ≥ KW_PUBLIC_URL_MAX + 1).  0, or -1 when it is not
 * http(s)://host[:port][/path] without query, fragment, spaces or
 * control characters. */
int kw_http_public_url(const char *url, char *out, size_t size);

typedef struct kw_http_req {
    kw_app *app;
    struct MHD_Connection *conn;
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
    /* Last, and not zeroed with the rest (kw_http_req_init): 3 KB that
     * kw_principal_clear makes anonymous. */
    kw_principal principal;
} kw_http_req;

#define KW_RESP_MAX_HEADERS 8

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
     * kw_http_build_response), queued as is instead of building one; its
     * bytes must stay alive until the request is complete, so release
     * then runs at completion.  Used only when the connection can defer
     * that (else raw/body as usual, which must then be set too). */
    struct MHD_Response *shared;
    /* Last, and not zeroed by kw_http_resp_init: copies of header values. */
    char header_text[2048];
} kw_http_resp;

typedef void (*kw_handler)(kw_http_req *req, kw_http_resp *resp);

/* dispatch.c */
void kw_http_dispatch(kw_http_req *req, kw_http_resp *resp);

/* respond.c */
/* Request and response set up for one request.  They live on the stack of
 * every request, so only what must start zeroed is zeroed (~1 KB of the
 * 6 KB; the rest is written before it is read). */
void kw_http_req_init(kw_http_req *req);
void kw_http_resp_init(kw_http_resp *resp);
void kw_resp_json(kw_http_resp *resp, int status, json_t *body);  /* steals body */
void kw_resp_problem(kw_http_resp *resp, const kw_problem *problem);
void kw_resp_error(kw_http_resp *resp, kw_problem_kind kind, const char *attr, const char *detail);
void kw_resp_header(kw_http_resp *resp, const char *name, const char *value);
/* 429 in DRF's words with Retry-After: `seconds` (≥ 1). */
void kw_resp_throttled(kw_http_resp *resp, int seconds);
/* A pre-serialized body of Content-Type `type` (see kw_http_resp.raw). */
void kw_resp_raw(kw_http_resp *resp, int status, const char *type, const char *data, size_t len,
                 void (*release)(void *), void *release_ctx);
const char *kw_req_query(const kw_http_req *req, const char *name);
/* The link to this path with the given query ("limit=…&offset=…"): on
 * app->public_url when set, else relative (path and query only). */
json_t *kw_req_url(const kw_http_req *req, const char *query);
/* limit/offset pagination, DRF's shape {count, next, previous, results}. */
void kw_req_page(const kw_http_req *req, int64_t default_limit, int64_t max_limit,
                 int64_t *limit, int64_t *offset);
json_t *kw_page_json(const kw_http_req *req, int64_t count, int64_t limit, int64_t offset,
                     json_t *results);

/* serialize.c — PostHog's JSON shapes. */
json_t *kw_json_time(kw_time t);
json_t *kw_json_user_basic(const kw_user *user);
json_t *kw_json_user_by_id(kw_store *store, int64_t user_id);
json_t *kw_json_project(const kw_project *project, const kw_org *org);
json_t *kw_json_pkey(kw_store *store, const kw_pkey *key, const char *value);
json_t *kw_json_flag(kw_store *store, const kw_flag *flag);
json_t *kw_json_psk(kw_store *store, const kw_psk *key, const char *value);

/* handlers, one per route id */
void kw_h_health(kw_http_req *, kw_http_resp *);
void kw_h_me(kw_http_req *, kw_http_resp *);
void kw_h_project_list(kw_http_req *, kw_http_resp *);
void kw_h_project_get(kw_http_req *, kw_http_resp *);
void kw_h_project_reset_token(kw_http_req *, kw_http_resp *);
void kw_h_pkey_list(kw_http_req *, kw_http_resp *);
void kw_h_pkey_create(kw_http_req *, kw_http_resp *);
void kw_h_pkey_get(kw_http_req *, kw_http_resp *);
void kw_h_pkey_update(kw_http_req *, kw_http_resp *);
void kw_h_pkey_delete(kw_http_req *, kw_http_resp *);
void kw_h_pkey_roll(kw_http_req *, kw_http_resp *);
void kw_h_flag_list(kw_http_req *, kw_http_resp *);
void kw_h_flag_create(kw_http_req *, kw_http_resp *);
void kw_h_flag_get(kw_http_req *, kw_http_resp *);
void kw_h_flag_update(kw_http_req *, kw_http_resp *);
void kw_h_flag_delete(kw_http_req *, kw_http_resp *);
void kw_h_activity_list(kw_http_req *, kw_http_resp *);
void kw_h_flag_definitions(kw_http_req *, kw_http_resp *);
void kw_h_flag_remote_config(kw_http_req *, kw_http_resp *);
void kw_h_psk_list(kw_http_req *, kw_http_resp *);
void kw_h_psk_create(kw_http_req *, kw_http_resp *);
void kw_h_psk_get(kw_http_req *, kw_http_resp *);
void kw_h_psk_update(kw_http_req *, kw_http_resp *);
void kw_h_psk_delete(kw_http_req *, kw_http_resp *);
void kw_h_psk_roll(kw_http_req *, kw_http_resp *);
void kw_h_leak_report(kw_http_req *, kw_http_resp *);
void kw_h_leak_verify(kw_http_req *, kw_http_resp *);
void kw_h_user_update(kw_http_req *, kw_http_resp *);

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
void kw_h_flags_eval(kw_http_req *, kw_http_resp *);
void kw_h_decide(kw_http_req *, kw_http_resp *);

/* capture and endpoints (issue 4) */
json_t *kw_json_endpoint(kw_store *store, const kw_endpoint *endpoint);
void kw_h_capture(kw_http_req *, kw_http_resp *);
void kw_h_endpoint_list(kw_http_req *, kw_http_resp *);
void kw_h_endpoint_create(kw_http_req *, kw_http_resp *);
void kw_h_endpoint_get(kw_http_req *, kw_http_resp *);
void kw_h_endpoint_update(kw_http_req *, kw_http_resp *);
void kw_h_endpoint_delete(kw_http_req *, kw_http_resp *);
void kw_h_endpoint_run(kw_http_req *, kw_http_resp *);
/* key lifecycle (SPEC §6): h_report.c */
void kw_h_pkey_report(kw_http_req *, kw_http_resp *);
void kw_h_key_report(kw_http_req *, kw_http_resp *);

/* console: sign-in, invitations, the embedded pages (h_console.c,
 * h_console_files.c) */
void kw_h_login(kw_http_req *, kw_http_resp *);
void kw_h_logout(kw_http_req *, kw_http_resp *);
void kw_h_session(kw_http_req *, kw_http_resp *);
void kw_h_invite_create(kw_http_req *, kw_http_resp *);
void kw_h_invite_accept(kw_http_req *, kw_http_resp *);
void kw_h_invite_get(kw_http_req *, kw_http_resp *);
void kw_h_console(kw_http_req *, kw_http_resp *);
void kw_h_console_asset(kw_http_req *, kw_http_resp *);
#define KW_SESSION_COOKIE "kw_session"

/* server.c */
typedef struct kw_server kw_server;
/* The MHD response send_resp would build for *resp (consumes its body;
 * raw bytes with a release are then MHD's to release), for callers that
 * keep one ready and share it (kw_http_resp.shared).  NULL when out of
 * memory. */
struct MHD_Response *kw_http_build_response(kw_http_resp *resp);
int kw_server_start(kw_app *app, const char *listen, unsigned threads, kw_server **out,
                    char *err, size_t errsz);
void kw_server_stop(kw_server *server);
/* The port actually bound (useful with port 0). */
unsigned kw_server_port(const kw_server *server);

#endif
