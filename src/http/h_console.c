/* h_console.c — the console's JSON routes: sign in and out, the current
 * session, and organization invitations.
 *
 * Every rule lives in lib/auth/session.c and lib/org/invite.c; these functions
 * translate, and own the one HTTP-only concern: the session cookie.  It is
 * `kw_session=<token>; Path=/; HttpOnly; SameSite=Lax` (+ `Secure` with
 * --secure-cookies, i.e. behind TLS): script cannot read it, and other
 * sites' requests other than top-level navigations do not carry it.
 *
 * Signing in and accepting an invitation take no credential, so the
 * session CSRF check cannot protect them; instead a browser request whose
 * Origin names another host is refused (a login CSRF would sign the victim
 * in to the attacker's account).  Clients that send no Origin (curl,
 * scripts) are not browsers and are not at risk. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/metrics.h"

/* 1 when the Origin header is absent or names this server: the origin of
 * --public-url when it is set, else the host the browser addressed (a
 * browser sets Host itself, so a page elsewhere cannot forge it). */
static int same_origin(const kw_http_req *req)
{
    const char *origin = kw_req_header(req, "Origin");
    if (!origin) return 1;
    const char *base = req->app->public_url;
    if (base) {
        const char *path = strchr(strstr(base, "://") + 3, '/');
        size_t n = path ? (size_t)(path - base) : strlen(base);
        return strlen(origin) == n && strncasecmp(origin, base, n) == 0;
    }
    const char *host = kw_req_header(req, "X-Forwarded-Host");
    if (!host) host = kw_req_header(req, "Host");
    const char *sep = strstr(origin, "://");
    return host && sep && strcasecmp(sep + 3, host) == 0;
}

static void set_cookie(kw_http_req *req, kw_http_resp *resp, const char *token, long max_age)
{
    char cookie[256];
    snprintf(cookie, sizeof cookie, "%s=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%ld%s",
             KW_SESSION_COOKIE, token, max_age, req->app->secure_cookies ? "; Secure" : "");
    kw_resp_header(resp, "Set-Cookie", cookie);
}

/* The answer to a successful sign-in: the cookie and {user, csrf_token}. */
static void signed_in(kw_http_req *req, kw_http_resp *resp, int status, const kw_login *login)
{
    set_cookie(req, resp, login->token, (long)(KW_SESSION_ABSOLUTE / 1000000));
    kw_resp_json(resp, status, json_pack("{s:o, s:s}", "user", kw_json_user_basic(&login->user),
                                         "csrf_token", login->csrf));
}

static void refused(kw_http_resp *resp, const kw_problem *p, int retry_after)
{
    kw_resp_problem(resp, p);
    if (p->kind == KW_P_THROTTLED) {
        kw_metrics_rate_limited(KW_M_LIMIT_LOGIN);
        char secs[16];
        snprintf(secs, sizeof secs, "%d", retry_after);
        kw_resp_header(resp, "Retry-After", secs);
    }
}

static int refuse_cross_origin(const kw_http_req *req, kw_http_resp *resp)
{
    if (same_origin(req)) return 0;
    kw_resp_error(resp, KW_P_PERMISSION, NULL, KW_MSG_CSRF);
    return 1;
}

int kw_h_login(kw_http_req *req, kw_http_resp *resp)
{
    kw_login login;
    kw_problem p;
    int retry_after = 0;
    if (refuse_cross_origin(req, resp)) return KW_OK;
    if (!req->app->sessions) {
        kw_resp_error(resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
        return KW_OK;
    }
    if (kw_session_login(req->app->sessions, req->ip, req->json, &login, &retry_after, &p))
        refused(resp, &p, retry_after);
    else
        signed_in(req, resp, 200, &login);
    memset(login.token, 0, sizeof login.token);
    return KW_OK;
}

int kw_h_logout(kw_http_req *req, kw_http_resp *resp)
{
    int rc = kw_session_logout(req->app->sessions, req->session_token);
    if (rc) return rc;
    set_cookie(req, resp, "", 0);
    kw_resp_json(resp, 204, NULL);
    return KW_OK;
}

int kw_h_session(kw_http_req *req, kw_http_resp *resp)
{
    kw_user user;
    int rc = kw_store_user_get(req->app->store, req->principal.user_id, &user);
    if (rc) return rc;
    char csrf[KW_TOKEN_LEN + 1];
    kw_session_csrf(req->app->sessions, req->session_token, csrf);
    kw_resp_json(resp, 200, json_pack("{s:o, s:s}", "user", kw_json_user_basic(&user),
                                      "csrf_token", csrf));
    return KW_OK;
}

int kw_h_invite_create(kw_http_req *req, kw_http_resp *resp)
{
    kw_invite inv;
    char token[KW_TOKEN_LEN + 1], link[16 + KW_TOKEN_LEN];
    kw_problem p;
    if (kw_invite_create(&req->call, req->match.org, req->level, req->json, &inv, token, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    snprintf(link, sizeof link, "/invite/%s", token);
    kw_resp_json(resp, 201,
                 json_pack("{s:s, s:s, s:i, s:s, s:o, s:o, s:o}", "id", inv.id, "target_email",
                           inv.target_email, "level", inv.level, "link", link, "created_by",
                           kw_json_user_by_id(req->app->store, inv.created_by), "created_at",
                           kw_json_time(inv.created_at), "expires_at", kw_json_time(inv.expires_at)));
    memset(token, 0, sizeof token);
    return KW_OK;
}

/* What the invitation page shows before the person accepts. */
int kw_h_invite_get(kw_http_req *req, kw_http_resp *resp)
{
    kw_invite inv;
    kw_org org;
    kw_problem p;
    if (kw_invite_lookup(req->app->store, req->match.id, &inv, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    int have_org = kw_store_org_get(req->app->store, inv.org_id, &org) == KW_OK;
    kw_user existing;
    int has_account = kw_store_user_by_email(req->app->store, inv.target_email, &existing) == KW_OK;
    kw_resp_json(resp, 200,
                 json_pack("{s:s, s:i, s:s?, s:b, s:o}", "target_email", inv.target_email, "level",
                           inv.level, "organization_name", have_org ? org.name : NULL,
                           "has_account", has_account, "expires_at", kw_json_time(inv.expires_at)));
    return KW_OK;
}

int kw_h_invite_accept(kw_http_req *req, kw_http_resp *resp)
{
    kw_login login;
    kw_problem p;
    int retry_after = 0;
    if (refuse_cross_origin(req, resp)) return KW_OK;
    if (!req->app->sessions) {
        kw_resp_error(resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
        return KW_OK;
    }
    if (kw_invite_accept(req->app->sessions, req->ip, req->json, &login, &retry_after, &p)) {
        refused(resp, &p, retry_after);
    } else {
        /* A new membership: @me answers cached before it are out of date
         * (the session's call has no kw_call of the server's to do it). */
        kw_directory_refresh(req->app->directory);
        signed_in(req, resp, 201, &login);
    }
    memset(login.token, 0, sizeof login.token);
    return KW_OK;
}
