/* dispatch.c — from a request to a handler, through the policy, once.
 *
 * Order matters and is the same for every route: match the route (404 /
 * 405), parse the JSON body (400), find the credential (Authorization
 * header, then personal_api_key in the query string or body, as PostHog),
 * refuse a key kind the route does not accept before any lookup, verify the
 * key (an expired one is 401 key_expired), take one request from the key's
 * rate limit (429 + Retry-After), apply the route's policy row (scope,
 * project, membership), note the scope the request exercised (memory only,
 * for the key report), and only then run the handler. */
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
    /* key lifecycle (SPEC §6) */
    [KW_ROUTE_PKEY_REPORT] = kw_h_pkey_report,
    [KW_ROUTE_KEY_REPORT] = kw_h_key_report,
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

/* The key's rate limit, on every route it reaches: DRF's 429 text and
 * Retry-After (whole seconds until a token is back). */
static int throttle(kw_http_req *req, kw_http_resp *resp)
{
    int wait = kw_verifier_rate_take(req->app->verifier, &req->principal);
    if (!wait) return 0;
    kw_problem p;
    kw_problem_set(&p, KW_P_THROTTLED, NULL, NULL,
                   "Request was throttled. Expected available in %d second%s.", wait,
                   wait == 1 ? "" : "s");
    kw_resp_problem(resp, &p);
    char seconds[16];
    snprintf(seconds, sizeof seconds, "%d", wait);
    kw_resp_header(resp, "Retry-After", seconds);
    return 1;
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
    if (!token) return 0;  /* the policy answers "not provided" */
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
    if (result == KW_VERIFY_EXPIRED) {
        kw_resp_error(resp, KW_P_KEY_EXPIRED, NULL, "API key has expired.");
        return 1;
    }
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
    return throttle(req, resp);
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
    kw_verifier_note_scope(req->app->verifier, &req->principal, req->match.route->scope);
    req->call.store = req->app->store;
    req->call.actor = &req->principal;
    req->call.ip = req->ip;
    req->call.verifier = req->app->verifier;
    HANDLERS[req->match.route->id](req, resp);
}
