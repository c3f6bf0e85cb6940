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
 * missing body token nor is refused for being there.  Those routes answer
 * browsers too, so they carry Access-Control-Allow-Origin.  OPTIONS on any
 * known path is 204 with Allow (DRF answers every view). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "keyward/keyward.h"

static const kw_handler HANDLERS[KW_ROUTE_COUNT] = {
    [KW_ROUTE_HEALTH] = kw_h_health,
    [KW_ROUTE_ME] = kw_h_me,
    [KW_ROUTE_PROJECT_LIST] = kw_h_project_list,
    [KW_ROUTE_PROJECT_GET] = kw_h_project_get,
    [KW_ROUTE_PROJECT_RESET_TOKEN] = kw_h_project_reset_token,
    [KW_ROUTE_PKEY_LIST] = kw_h_pkey_list,
    [KW_ROUTE_PKEY_CREATE] = kw_h_pkey_create,
    [KW_ROUTE_PKEY_CURRENT] = kw_h_pkey_get,
    [KW_ROUTE_PKEY_GET] = kw_h_pkey_get,
    [KW_ROUTE_PKEY_UPDATE] = kw_h_pkey_update,
    [KW_ROUTE_PKEY_DELETE] = kw_h_pkey_delete,
    [KW_ROUTE_PKEY_ROLL] = kw_h_pkey_roll,
    [KW_ROUTE_FLAG_LIST] = kw_h_flag_list,
    [KW_ROUTE_FLAG_CREATE] = kw_h_flag_create,
    [KW_ROUTE_FLAG_GET] = kw_h_flag_get,
    [KW_ROUTE_FLAG_UPDATE] = kw_h_flag_update,
    [KW_ROUTE_FLAG_DELETE] = kw_h_flag_delete,
    [KW_ROUTE_ACTIVITY_LIST] = kw_h_activity_list,
    [KW_ROUTE_PSK_LIST] = kw_h_psk_list,
    [KW_ROUTE_PSK_CREATE] = kw_h_psk_create,
    [KW_ROUTE_PSK_GET] = kw_h_psk_get,
    [KW_ROUTE_PSK_UPDATE] = kw_h_psk_update,
    [KW_ROUTE_PSK_DELETE] = kw_h_psk_delete,
    [KW_ROUTE_PSK_ROLL] = kw_h_psk_roll,
    [KW_ROUTE_FLAG_DEFS_PROJECT] = kw_h_flag_definitions,
    [KW_ROUTE_FLAG_REMOTE_CONFIG] = kw_h_flag_remote_config,
    [KW_ROUTE_FLAG_DEFS_LEGACY] = kw_h_flag_definitions,
    [KW_ROUTE_FLAG_DEFS] = kw_h_flag_definitions,
    [KW_ROUTE_LEAK_REPORT] = kw_h_leak_report,
    [KW_ROUTE_LEAK_VERIFY] = kw_h_leak_verify,
    [KW_ROUTE_USER_UPDATE] = kw_h_user_update,
    [KW_ROUTE_FLAGS_EVAL] = kw_h_flags_eval,
    [KW_ROUTE_DECIDE] = kw_h_decide,
    [KW_ROUTE_CAPTURE_E] = kw_h_capture,
    [KW_ROUTE_CAPTURE_I_V0_E] = kw_h_capture,
    [KW_ROUTE_CAPTURE_BATCH] = kw_h_capture,
    [KW_ROUTE_CAPTURE_CAPTURE] = kw_h_capture,
    [KW_ROUTE_CAPTURE_TRACK] = kw_h_capture,
    [KW_ROUTE_CAPTURE_ENGAGE] = kw_h_capture,
    [KW_ROUTE_ENDPOINT_LIST] = kw_h_endpoint_list,
    [KW_ROUTE_ENDPOINT_CREATE] = kw_h_endpoint_create,
    [KW_ROUTE_ENDPOINT_GET] = kw_h_endpoint_get,
    [KW_ROUTE_ENDPOINT_UPDATE] = kw_h_endpoint_update,
    [KW_ROUTE_ENDPOINT_DELETE] = kw_h_endpoint_delete,
    [KW_ROUTE_ENDPOINT_RUN_GET] = kw_h_endpoint_run,
    [KW_ROUTE_ENDPOINT_RUN_POST] = kw_h_endpoint_run,
    /* key lifecycle (SPEC §6) */
    [KW_ROUTE_PKEY_REPORT] = kw_h_pkey_report,
    [KW_ROUTE_KEY_REPORT] = kw_h_key_report,
    [KW_ROUTE_LOGIN] = kw_h_login,
    [KW_ROUTE_LOGOUT] = kw_h_logout,
    [KW_ROUTE_SESSION] = kw_h_session,
    [KW_ROUTE_INVITE_CREATE] = kw_h_invite_create,
    [KW_ROUTE_INVITE_ACCEPT] = kw_h_invite_accept,
    [KW_ROUTE_INVITE_GET] = kw_h_invite_get,
    [KW_ROUTE_CONSOLE] = kw_h_console,
    [KW_ROUTE_CONSOLE_INVITE] = kw_h_console,
    [KW_ROUTE_CONSOLE_ASSET] = kw_h_console_asset,
};

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

static enum MHD_Result check_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
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
        return MHD_NO;
    }
    qc->names[qc->n] = key;
    qc->name_lens[qc->n++] = key_size;
    return MHD_YES;
}

static int check_query(kw_http_req *req, kw_http_resp *resp)
{
    struct query_check qc;
    qc.n = 0;
    qc.code = NULL;
    MHD_get_connection_values_n(req->conn, MHD_GET_ARGUMENT_KIND, check_param, &qc);
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
    const char *auth = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Authorization");
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

/* A phc_ route: the token comes from the body only (PostHog's texts), as
 * the SDKs put it (kw_payload_token: token, api_key, $token, or in the
 * first event), never from Authorization.  Verified through the cache. */
static int authenticate_project(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    const char *token = kw_payload_token(req->json);
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

/* OPTIONS on a known path: 204 with the methods it serves. */
static void options(kw_http_req *req, kw_http_resp *resp)
{
    char allow[64];
    kw_policy_allow(req->path, allow, sizeof allow);
    kw_resp_json(resp, 204, NULL);
    kw_resp_header(resp, "Allow", allow);
    kw_route_match m;
    if (kw_policy_match("POST", req->path, &m) == KW_MATCH_OK &&
        (m.route->credentials & KW_CRED_PROJECT)) {
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
    int wait = kw_verifier_rate_take(req->app->verifier, &req->principal);
    if (!wait) return 0;
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
    const char *token = MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, KW_SESSION_COOKIE);
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
                            MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-CSRFToken"))) {
        kw_resp_error(resp, KW_P_PERMISSION, NULL, KW_MSG_CSRF);
        return 1;
    }
    return 0;
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
    /* phs_ is read from the Authorization header only (SPEC §4). */
    int secret = kind == KW_KEY_SECRET && source == KW_SRC_HEADER;
    if (kind == KW_KEY_PERSONAL && len <= KW_KEY_MAX_LEN)
        result = kw_verify_personal_from(req->app->verifier, token, len, req->ip, pr);
    else if (secret && len <= KW_KEY_MAX_LEN)
        result = kw_verify_secret(req->app->verifier, token, len, pr);
    if (result == KW_VERIFY_EXPIRED) {
        kw_resp_error(resp, KW_P_KEY_EXPIRED, NULL, "API key has expired.");
        return 1;
    }
    if (result == KW_VERIFY_UNAVAILABLE) {
        kw_resp_error(resp, KW_P_UNAVAILABLE, NULL, "The database is unavailable; retry later.");
        return 1;
    }
    if (result == KW_VERIFY_BUSY) {  /* legacy-hash budget spent: fast, retryable */
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
    if (req->match.route->credentials & KW_CRED_PROJECT)
        kw_resp_header(resp, "Access-Control-Allow-Origin", "*");
    if (parse_body(req, resp) || authenticate(req, resp)) return;
    kw_problem p;
    if (kw_policy_check(req->app->store, &req->match, &req->principal, &req->project, &req->level,
                        &p)) {
        kw_resp_problem(resp, &p);
        return;
    }
    kw_verifier_note_scope(req->app->verifier, &req->principal, req->match.route->scope);
    req->call.store = req->app->store;
    req->call.actor = &req->principal;
    req->call.ip = req->ip;
    req->call.verifier = req->app->verifier;
    req->call.flags = req->app->flags;
    HANDLERS[req->match.route->id](req, resp);
}
