/* dispatch.c — from a request to a handler, through the policy, once.
 *
 * Order matters and is the same for every route: match the route (404 /
 * 405), parse the JSON body (400), find the credential (Authorization
 * header, then personal_api_key in the query string or body, as PostHog;
 * without one, the console's session cookie with its CSRF check), refuse a
 * key kind the route does not accept before any lookup, verify the key,
 * apply the route's policy row (scope, project, membership), and only then
 * run the handler. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"

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
    [KW_ROUTE_FLAG_DEFS_LEGACY] = kw_h_flag_definitions,
    [KW_ROUTE_FLAG_DEFS] = kw_h_flag_definitions,
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

static int parse_body(kw_http_req *req, kw_http_resp *resp)
{
    if (!req->body_len) return 0;
    json_error_t err;
    req->json = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (req->json) return 0;
    kw_problem p;
    kw_problem_set(&p, KW_P_VALIDATION, "parse_error", NULL, "JSON parse error - %s", err.text);
    kw_resp_problem(resp, &p);
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
    memset(pr, 0, sizeof *pr);
    pr->n_scoped_teams = pr->n_scoped_orgs = -1;
    const kw_route *route = req->match.route;
    if (route->credentials & KW_CRED_NONE) return 0;
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
        result = kw_verify_personal(req->app->verifier, token, len, pr);
    else if (secret && len <= KW_KEY_MAX_LEN)
        result = kw_verify_secret(req->app->verifier, token, len, pr);
    if (result == KW_VERIFY_UNAVAILABLE) {
        kw_resp_error(resp, KW_P_UNAVAILABLE, NULL, "The database is unavailable; retry later.");
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
    return 0;
}

void kw_http_dispatch(kw_http_req *req, kw_http_resp *resp)
{
    switch (kw_policy_match(req->method, req->path, &req->match)) {
    case KW_MATCH_NO_ROUTE:
        kw_resp_error(resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
        return;
    case KW_MATCH_BAD_METHOD: {
        kw_problem p;
        kw_problem_set(&p, KW_P_METHOD, NULL, NULL, "Method \"%s\" not allowed.", req->method);
        kw_resp_problem(resp, &p);
        return;
    }
    case KW_MATCH_OK:
        break;
    }
    if (parse_body(req, resp) || authenticate(req, resp)) return;
    kw_problem p;
    if (kw_policy_check(req->app->store, &req->match, &req->principal, &req->project, &req->level,
                        &p)) {
        kw_resp_problem(resp, &p);
        return;
    }
    req->call.store = req->app->store;
    req->call.actor = &req->principal;
    req->call.ip = req->ip;
    req->call.verifier = req->app->verifier;
    HANDLERS[req->match.route->id](req, resp);
}
