/* dispatch.c — from a request to a handler, through the policy, once.
 *
 * Order matters and is the same for every route: check the query string
 * (400: see check_query), match the route (404 /
 * 405), parse the JSON body (400), find the credential (Authorization
 * header, then personal_api_key in the query string or body, as PostHog;
 * without one, the console's session cookie with its CSRF check),
 * refuse a key kind the route does not accept before any lookup, verify the
 * key (an expired one is 401 key_expired), take one request from the key's
 * rate limit (429 + Retry-After), apply the route's policy row (scope,
 * project, membership), note the scope the request exercised (memory only,
 * for the key report), and only then run the handler.
 *
 * Routes that take only the project token (phc_: capture, /flags, /decide)
 * read it from the body (as PostHog's SDKs send it) and ignore
 * Authorization altogether: a phx_ or phs_ header neither replaces a
 * missing body token nor is refused for being there.  The one exception is
 * Capture V1, whose body has no token: it is the bearer token there, and
 * only there.  Those routes answer
 * browsers too, so they carry Access-Control-Allow-Origin.  OPTIONS on any
 * known path is 204 with Allow (DRF answers every view). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/metrics.h"

/* The handler of each route id.  A switch without a default, built with
 * -Wswitch made an error right here: a route id added to the table in
 * keyward/policy.h without a handler below fails the build, whatever
 * flags the build uses (tests/check_handler_table.sh proves it). */
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"
static kw_handler handler_of(kw_route_id id)
{
    switch (id) {
    case KW_ROUTE_HEALTH: return kw_h_health;
    case KW_ROUTE_SCHEMA: return kw_h_schema;
    case KW_ROUTE_ME: return kw_h_me;
    case KW_ROUTE_PROJECT_LIST: return kw_h_project_list;
    case KW_ROUTE_PROJECT_GET: return kw_h_project_get;
    case KW_ROUTE_PROJECT_RESET_TOKEN: return kw_h_project_reset_token;
    case KW_ROUTE_PKEY_LIST: return kw_h_pkey_list;
    case KW_ROUTE_PKEY_CREATE: return kw_h_pkey_create;
    case KW_ROUTE_PKEY_CURRENT: return kw_h_pkey_get;
    case KW_ROUTE_PKEY_GET: return kw_h_pkey_get;
    case KW_ROUTE_PKEY_UPDATE: return kw_h_pkey_update;
    case KW_ROUTE_PKEY_DELETE: return kw_h_pkey_delete;
    case KW_ROUTE_PKEY_ROLL: return kw_h_pkey_roll;
    case KW_ROUTE_FLAG_LIST: return kw_h_flag_list;
    case KW_ROUTE_FLAG_CREATE: return kw_h_flag_create;
    case KW_ROUTE_FLAG_GET: return kw_h_flag_get;
    case KW_ROUTE_FLAG_UPDATE: return kw_h_flag_update;
    case KW_ROUTE_FLAG_DELETE: return kw_h_flag_delete;
    case KW_ROUTE_ACTIVITY_LIST: return kw_h_activity_list;
    case KW_ROUTE_PSK_LIST: return kw_h_psk_list;
    case KW_ROUTE_PSK_CREATE: return kw_h_psk_create;
    case KW_ROUTE_PSK_GET: return kw_h_psk_get;
    case KW_ROUTE_PSK_UPDATE: return kw_h_psk_update;
    case KW_ROUTE_PSK_DELETE: return kw_h_psk_delete;
    case KW_ROUTE_PSK_ROLL: return kw_h_psk_roll;
    case KW_ROUTE_FLAG_DEFS_PROJECT: return kw_h_flag_definitions;
    case KW_ROUTE_FLAG_REMOTE_CONFIG: return kw_h_flag_remote_config;
    case KW_ROUTE_FLAG_DEFS_LEGACY: return kw_h_flag_definitions;
    case KW_ROUTE_FLAG_DEFS: return kw_h_flag_definitions;
    case KW_ROUTE_LEAK_REPORT: return kw_h_leak_report;
    case KW_ROUTE_LEAK_VERIFY: return kw_h_leak_verify;
    case KW_ROUTE_USER_UPDATE: return kw_h_user_update;
    case KW_ROUTE_FLAGS_EVAL: return kw_h_flags_eval;
    case KW_ROUTE_DECIDE: return kw_h_decide;
    case KW_ROUTE_CAPTURE_E: return kw_h_capture;
    case KW_ROUTE_CAPTURE_I_V0_E: return kw_h_capture;
    case KW_ROUTE_CAPTURE_BATCH: return kw_h_capture;
    case KW_ROUTE_CAPTURE_CAPTURE: return kw_h_capture;
    case KW_ROUTE_CAPTURE_TRACK: return kw_h_capture;
    case KW_ROUTE_CAPTURE_ENGAGE: return kw_h_capture;
    case KW_ROUTE_ENDPOINT_LIST: return kw_h_endpoint_list;
    case KW_ROUTE_ENDPOINT_CREATE: return kw_h_endpoint_create;
    case KW_ROUTE_ENDPOINT_GET: return kw_h_endpoint_get;
    case KW_ROUTE_ENDPOINT_UPDATE: return kw_h_endpoint_update;
    case KW_ROUTE_ENDPOINT_DELETE: return kw_h_endpoint_delete;
    case KW_ROUTE_ENDPOINT_RUN_GET: return kw_h_endpoint_run;
    case KW_ROUTE_ENDPOINT_RUN_POST: return kw_h_endpoint_run;
    case KW_ROUTE_PKEY_REPORT: return kw_h_pkey_report;
    case KW_ROUTE_KEY_REPORT: return kw_h_key_report;
    case KW_ROUTE_LOGIN: return kw_h_login;
    case KW_ROUTE_LOGOUT: return kw_h_logout;
    case KW_ROUTE_SESSION: return kw_h_session;
    case KW_ROUTE_INVITE_CREATE: return kw_h_invite_create;
    case KW_ROUTE_INVITE_LIST: return kw_h_invite_list;
    case KW_ROUTE_INVITE_DELETE: return kw_h_invite_delete;
    case KW_ROUTE_INVITE_ACCEPT: return kw_h_invite_accept;
    case KW_ROUTE_INVITE_GET: return kw_h_invite_get;
    case KW_ROUTE_CONSOLE: return kw_h_console;
    case KW_ROUTE_CONSOLE_INVITE: return kw_h_console;
    case KW_ROUTE_CONSOLE_ASSET: return kw_h_console_asset;
    case KW_ROUTE_HEALTH_READY: return kw_h_health_ready;
    case KW_ROUTE_ORG_LIST: return kw_h_org_list;
    case KW_ROUTE_ORG_CREATE: return kw_h_org_create;
    case KW_ROUTE_ORG_GET: return kw_h_org_get;
    case KW_ROUTE_ORG_UPDATE: return kw_h_org_update;
    case KW_ROUTE_ORG_DELETE: return kw_h_org_delete;
    case KW_ROUTE_ORG_PROJECT_LIST: return kw_h_org_project_list;
    case KW_ROUTE_ORG_PROJECT_CREATE: return kw_h_project_create;
    case KW_ROUTE_MEMBER_LIST: return kw_h_member_list;
    case KW_ROUTE_MEMBER_UPDATE: return kw_h_member_update;
    case KW_ROUTE_MEMBER_DELETE: return kw_h_member_delete;
    case KW_ROUTE_PROJECT_CREATE: return kw_h_project_create;
    case KW_ROUTE_PROJECT_UPDATE: return kw_h_project_update;
    case KW_ROUTE_PROJECT_DELETE: return kw_h_project_delete;
    case KW_ROUTE_REMOTE_CONFIG: return kw_h_remote_config;
    case KW_ROUTE_REMOTE_CONFIG_JS: return kw_h_remote_config;
    case KW_ROUTE_STATIC_JS: return kw_h_static;
    case KW_ROUTE_STATIC_JS_VERSIONED: return kw_h_static;
    case KW_ROUTE_CAPTURE_V1: return kw_h_capture_v1;
    case KW_ROUTE_CAPTURE_AI: return kw_h_capture;
    case KW_ROUTE_GROUP_TYPES_LIST: return kw_h_group_types_list;
    case KW_ROUTE_GROUP_TYPES_RENAME: return kw_h_group_types_rename;
    case KW_ROUTE_WEBHOOK_LIST: return kw_h_webhook_list;
    case KW_ROUTE_WEBHOOK_CREATE: return kw_h_webhook_create;
    case KW_ROUTE_WEBHOOK_GET: return kw_h_webhook_get;
    case KW_ROUTE_WEBHOOK_UPDATE: return kw_h_webhook_update;
    case KW_ROUTE_WEBHOOK_DELETE: return kw_h_webhook_delete;
    case KW_ROUTE_WEBHOOK_DELIVERIES: return kw_h_webhook_deliveries;
    case KW_ROUTE_WEBHOOK_TEST: return kw_h_webhook_test;
    case KW_ROUTE_COUNT: break;
    }
    return NULL;
}
#pragma GCC diagnostic pop

/* The query string's rules, for every path (known or not) before anything
 * reads it: handlers and the credential lookup read values through
 * kw_req_query, which returns the first of repeated names and stops at a
 * NUL, so a name twice or a NUL byte would make two readers (a proxy, a
 * log, keyward) see different requests; they are refused instead of
 * choosing.  The length cap bounds every buffer a value is copied into. */
struct query_check {
    int n;
    const char *names[KW_QUERY_PARAMS_MAX];
    size_t name_lens[KW_QUERY_PARAMS_MAX];
    const char *code, *bad_name;
    size_t bad_len;
};

static int check_param(void *cls, const char *key, size_t key_size, const char *value,
                       size_t value_size)
{
    struct query_check *qc = cls;
    const char *code = NULL;
    if (qc->n >= KW_QUERY_PARAMS_MAX)
        code = "query_too_many";
    else if (key_size > KW_QUERY_VALUE_MAX || value_size > KW_QUERY_VALUE_MAX)
        code = "query_too_long";
    else if (memchr(key, '\0', key_size) || (value && memchr(value, '\0', value_size)))
        code = "query_invalid";
    for (int i = 0; !code && i < qc->n; i++)
        if (qc->name_lens[i] == key_size && memcmp(qc->names[i], key, key_size) == 0)
            code = "query_repeated";
    if (code) {
        qc->code = code;
        qc->bad_name = key;
        qc->bad_len = key_size;
        return 1;
    }
    qc->names[qc->n] = key;
    qc->name_lens[qc->n++] = key_size;
    return 0;
}

static int check_query(kw_http_req *req, kw_http_resp *resp)
{
    struct query_check qc;
    qc.n = 0;
    qc.code = NULL;
    kw_req_query_each(req, check_param, &qc);
    if (!qc.code) return 0;
    /* The name is echoed (attr, detail) only when it is short printable
     * ASCII: it is attacker text and the body must stay valid JSON. */
    const char *attr = qc.bad_name;
    int printable = qc.bad_len <= 64;
    for (size_t i = 0; printable && i < qc.bad_len; i++)
        printable = qc.bad_name[i] >= 0x20 && qc.bad_name[i] < 0x7f && qc.bad_name[i] != '"';
    if (!printable || strcmp(qc.code, "query_too_many") == 0) attr = NULL;
    kw_problem p;
    if (strcmp(qc.code, "query_too_many") == 0)
        kw_problem_set(&p, KW_P_VALIDATION, qc.code, NULL, "More than %d query parameters.",
                       KW_QUERY_PARAMS_MAX);
    else if (strcmp(qc.code, "query_too_long") == 0)
        kw_problem_set(&p, KW_P_VALIDATION, qc.code, attr,
                       "Query parameter names and values are limited to %d bytes.",
                       KW_QUERY_VALUE_MAX);
    else if (strcmp(qc.code, "query_repeated") == 0)
        kw_problem_set(&p, KW_P_VALIDATION, qc.code, attr,
                       "Query parameter \"%s\" is given more than once.", attr ? attr : "?");
    else
        kw_problem_set(&p, KW_P_VALIDATION, qc.code, attr,
                       "Query parameters may not contain a NUL byte.");
    kw_resp_problem(resp, &p);
    return 1;
}

/* The presented credential, or NULL. */
static const char *find_credential(const kw_http_req *req, kw_cred_source *source)
{
    const char *auth = kw_req_header(req, "Authorization");
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
        *source = KW_SRC_HEADER;
        const char *token = auth + 7;
        while (*token == ' ') token++;
        return token;
    }
    const char *q = kw_req_query(req, "personal_api_key");
    if (q) {
        *source = KW_SRC_QUERY;
        return q;
    }
    json_t *b = req->json ? json_object_get(req->json, "personal_api_key") : NULL;
    if (json_is_string(b)) {
        *source = KW_SRC_BODY;
        return json_string_value(b);
    }
    return NULL;
}

/* Every body goes through kw_body_decode (gzip, form data=).  SDK routes
 * (those a phc_ token calls) answer a bad body with PostHog's capture
 * texts; admin routes with DRF's parse error and refuse duplicate keys. */
static int parse_body(kw_http_req *req, kw_http_resp *resp)
{
    if (!req->body_len) return 0;
    kw_problem p;
    const char *body;
    size_t len;
    if (kw_body_decode(req, &body, &len, &p)) {
        kw_resp_problem(resp, &p);
        return 1;
    }
    int sdk = (req->match.route->credentials & KW_CRED_PROJECT) != 0;
    json_error_t err;
    req->json = json_loadb(body, len, sdk ? 0 : JSON_REJECT_DUPLICATES, &err);
    kw_body_free(req, body);
    if (req->json) return 0;
    if (sdk)
        kw_problem_set(&p, KW_P_VALIDATION, "invalid_payload", NULL,
                       "Malformed request data: Invalid JSON: %s", err.text);
    else
        kw_problem_set(&p, KW_P_VALIDATION, "parse_error", NULL, "JSON parse error - %s", err.text);
    kw_resp_problem(resp, &p);
    return 1;
}

/* The phc_ token of a phc_ route: from the body, as the SDKs put it
 * (kw_payload_token: token, api_key, $token, or in the first event) —
 * except on Capture V1, which sends it as a bearer token and has none in
 * its body. */
static const char *project_token(const kw_http_req *req)
{
    if (req->match.route->id != KW_ROUTE_CAPTURE_V1) return kw_payload_token(req->json);
    const char *auth = kw_req_header(req, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) return NULL;
    auth += 7;
    while (*auth == ' ') auth++;
    return *auth ? auth : NULL;
}

/* A phc_ route: the token from where its SDKs send it (PostHog's texts),
 * verified through the cache. */
static int authenticate_project(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    const char *token = project_token(req);
    if (!token) {
        kw_problem_set(&p, KW_P_AUTH_FAILED, "missing_api_key", NULL,
                       "API key not provided. You can find your project API key in PostHog project "
                       "settings.");
        kw_resp_problem(resp, &p);
        return 1;
    }
    size_t len = strnlen(token, KW_KEY_MAX_LEN + 1);
    kw_verify_result result = KW_VERIFY_INVALID;
    if (len <= KW_KEY_MAX_LEN)
        result = kw_verify_project(req->app->verifier, token, len, &req->principal);
    if (result == KW_VERIFY_UNAVAILABLE) {
        kw_resp_error(resp, KW_P_UNAVAILABLE, NULL, "The database is unavailable; retry later.");
        return 1;
    }
    if (result != KW_VERIFY_OK) {
        kw_problem_set(&p, KW_P_AUTH_FAILED, "invalid_api_key", NULL, KW_MSG_PROJECT_TOKEN_INVALID);
        kw_resp_problem(resp, &p);
        return 1;
    }
    req->principal.source = KW_SRC_BODY;
    return 0;
}

/* Routes any web page may call (CORS, any origin): those a phc_ token
 * calls, and the files and remote config posthog-js loads from a page of
 * the app's own origin.  None of them reads a cookie, so "*" lends a
 * page nothing it could not fetch itself. */
static int browser_route(const kw_route *route)
{
    return (route->credentials & KW_CRED_PROJECT) || route->id == KW_ROUTE_REMOTE_CONFIG ||
           route->id == KW_ROUTE_REMOTE_CONFIG_JS || route->id == KW_ROUTE_STATIC_JS ||
           route->id == KW_ROUTE_STATIC_JS_VERSIONED;
}

/* OPTIONS on a known path: 204 with the methods it serves. */
static void options(kw_http_req *req, kw_http_resp *resp)
{
    char allow[64];
    kw_policy_allow(req->path, allow, sizeof allow);
    kw_resp_json(resp, 204, NULL);
    kw_resp_header(resp, "Allow", allow);
    kw_route_match m;
    if ((kw_policy_match("POST", req->path, &m) == KW_MATCH_OK && browser_route(m.route)) ||
        (kw_policy_match("GET", req->path, &m) == KW_MATCH_OK && browser_route(m.route))) {
        kw_resp_header(resp, "Access-Control-Allow-Origin", "*");
        kw_resp_header(resp, "Access-Control-Allow-Methods", allow);
        kw_resp_header(resp, "Access-Control-Allow-Headers", "Content-Type, Content-Encoding");
        kw_resp_header(resp, "Access-Control-Max-Age", "86400");
    }
}

/* The key's rate limit, on every route it reaches: DRF's 429 text and
 * Retry-After (whole seconds until a token is back). */
static int throttle(kw_http_req *req, kw_http_resp *resp)
{
    /* Dispatched again with its handler's slow work done: the first pass
     * took this request's unit. */
    if (req->slow && req->slow->work) return 0;
    int wait = kw_verifier_rate_take_at(req->app->verifier, &req->principal, kw_req_now(req));
    if (!wait) return 0;
    kw_metrics_rate_limited(KW_M_LIMIT_KEY);
    kw_resp_throttled(resp, wait);
    return 1;
}

static int is_safe_method(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0;
}

/* A browser's session: the kw_session cookie, on routes that take one.
 * An unknown, expired or deactivated user's session is as good as none
 * (the policy then answers "not provided").  A write with a session must
 * carry the session's CSRF token in X-CSRFToken (Django's header), since
 * the browser attaches the cookie to requests other sites make it send. */
static int authenticate_session(kw_http_req *req, kw_http_resp *resp)
{
    const char *token = kw_req_cookie(req, KW_SESSION_COOKIE);
    if (!token || !req->app->sessions || !(req->match.route->credentials & KW_CRED_SESSION))
        return 0;
    kw_verify_result r = kw_session_resolve(req->app->sessions, token, &req->principal);
    if (r == KW_VERIFY_UNAVAILABLE) {
        kw_resp_error(resp, KW_P_UNAVAILABLE, NULL, "The database is unavailable; retry later.");
        return 1;
    }
    if (r != KW_VERIFY_OK) return 0;
    req->session_token = token;
    if (!is_safe_method(req->method) &&
        !kw_session_csrf_ok(req->app->sessions, token,
                            kw_req_header(req, "X-CSRFToken"))) {
        kw_resp_error(resp, KW_P_PERMISSION, NULL, KW_MSG_CSRF);
        return 1;
    }
    return 0;
}

/* A personal key: the answer of a legacy check run while this request was
 * suspended, or the verification up to that check.  KW_VERIFY_SLOW names
 * the key for server_request.c, which runs the check off this thread. */
static kw_verify_result verify_personal(kw_http_req *req, const char *token, size_t len,
                                        kw_principal *pr)
{
    const kw_http_slow *slow = req->slow;
    if (slow && slow->len == len && memcmp(slow->key, token, len) == 0) {
        *pr = slow->principal;
        pr->verified_at = 0;  /* verified a while ago: later checks read the clock */
        return slow->result;
    }
    kw_verify_result r = kw_verify_personal_begin(req->app->verifier, token, len, req->ip, pr);
    if (r == KW_VERIFY_SLOW) {
        req->slow_key = token;
        req->slow_key_len = len;
    }
    return r;
}

static int authenticate(kw_http_req *req, kw_http_resp *resp)
{
    kw_principal *pr = &req->principal;
    kw_principal_clear(pr);
    const kw_route *route = req->match.route;
    if (route->credentials & KW_CRED_NONE) return 0;
    if (route->credentials == KW_CRED_PROJECT) return authenticate_project(req, resp);
    kw_cred_source source = KW_SRC_HEADER;
    const char *token = find_credential(req, &source);
    /* No key: a console session, or the policy answers "not provided". */
    if (!token) return authenticate_session(req, resp);
    size_t len = strnlen(token, KW_KEY_MAX_LEN + 1);
    kw_key_kind kind = kw_key_kind_of(token, len);
    kw_problem p;
    if (kw_policy_refuse_kind(route, kind, source, &p)) {
        kw_resp_problem(resp, &p);
        return 1;
    }
    kw_verify_result result = KW_VERIFY_INVALID;
    /* phs_ is accepted from the Authorization header only, as PostHog
     * does: one in the query string or the body is not looked up. */
    int secret = kind == KW_KEY_SECRET && source == KW_SRC_HEADER;
    if (kind == KW_KEY_PERSONAL && len <= KW_KEY_MAX_LEN)
        result = verify_personal(req, token, len, pr);
    else if (secret && len <= KW_KEY_MAX_LEN)
        result = kw_verify_secret(req->app->verifier, token, len, pr);
    if (result == KW_VERIFY_SLOW) return 1;  /* no answer yet: server_request.c resumes it */
    if (result == KW_VERIFY_EXPIRED) {
        kw_resp_error(resp, KW_P_KEY_EXPIRED, NULL, "API key has expired.");
        return 1;
    }
    if (result == KW_VERIFY_UNAVAILABLE) {
        kw_resp_error(resp, KW_P_UNAVAILABLE, NULL, "The database is unavailable; retry later.");
        return 1;
    }
    if (result == KW_VERIFY_BUSY) {  /* legacy-hash budget spent: fast, retryable */
        kw_metrics_rate_limited(KW_M_LIMIT_LEGACY);
        kw_resp_throttled(resp, pr->retry_after);
        return 1;
    }
    if (result != KW_VERIFY_OK) {
        if (secret)
            kw_problem_set(&p, KW_P_AUTH_FAILED, NULL, NULL, KW_MSG_SECRET_INVALID);
        else
            kw_policy_invalid_personal(source, &p);
        kw_resp_problem(resp, &p);
        return 1;
    }
    pr->source = source;
    return throttle(req, resp);
}

void kw_http_dispatch(kw_http_req *req, kw_http_resp *resp)
{
    if (check_query(req, resp)) return;
    switch (kw_policy_match(req->method, req->path, &req->match)) {
    case KW_MATCH_NO_ROUTE:
        kw_resp_error(resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
        return;
    case KW_MATCH_BAD_METHOD: {
        if (strcmp(req->method, "OPTIONS") == 0) {
            options(req, resp);
            return;
        }
        kw_problem p;
        kw_problem_set(&p, KW_P_METHOD, NULL, NULL, "Method \"%s\" not allowed.", req->method);
        kw_resp_problem(resp, &p);
        char allow[64];
        kw_policy_allow(req->path, allow, sizeof allow);
        kw_resp_header(resp, "Allow", allow);
        return;
    }
    case KW_MATCH_OK:
        break;
    }
    if (browser_route(req->match.route)) kw_resp_header(resp, "Access-Control-Allow-Origin", "*");
    if (parse_body(req, resp) || authenticate(req, resp)) return;
    kw_problem p;
    if (kw_policy_check(req->app->store, req->app->directory, &req->match, &req->principal,
                        &req->project, &req->level, &p)) {
        kw_resp_problem(resp, &p);
        return;
    }
    int object;
    kw_scope_action action;
    if (kw_policy_route_scope(req->match.route, &object, &action) == KW_OK)
        kw_verifier_note_scope(req->app->verifier, &req->principal, object, action);
    req->call.store = req->app->store;
    req->call.actor = &req->principal;
    req->call.ip = req->ip;
    req->call.verifier = req->app->verifier;
    req->call.flags = req->app->flags;
    req->call.directory = req->app->directory;
    int rc = handler_of(req->match.route->id)(req, resp);
    /* The one place a handler's failed call becomes an answer. */
    if (rc && kw_problem_from_store(&p, rc)) kw_resp_problem(resp, &p);
}
