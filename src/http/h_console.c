/* h_console.c — the console's JSON routes: sign in and out, the current
 * session, and organization invitations (create, list, revoke, look up,
 * accept).
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
 * scripts) are not browsers and are not at risk.
 *
 * Both run their password hash on slow.c's thread, one at a time, under
 * the sessions' hash budget (lib/auth/session.c): sign-in traffic never
 * holds a request thread. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A sign-in or an invitation acceptance, run on slow.c's thread: each
 * costs an argon2id hash (~40 ms), which on a request thread would stall
 * every other connection that thread serves — key verification included.
 * What it needs outlives the request's first dispatch; so does its
 * outcome, which the second dispatch answers. */
struct login_job {
    json_t *body;
    kw_sessions *sessions;
    char ip[64];
    int accept;  /* an invitation acceptance, else a sign-in */
    int failed, retry_after;
    kw_problem problem;
    kw_login login;
};

static void login_work(kw_http_slow *job)
{
    struct login_job *j = job->ctx;
    j->failed = j->accept ? kw_invite_accept(j->sessions, j->ip, j->body, &j->login,
                                             &j->retry_after, &j->problem)
                          : kw_session_login(j->sessions, j->ip, j->body, &j->login,
                                             &j->retry_after, &j->problem);
}

static void login_release(void *ctx)
{
    struct login_job *j = ctx;
    json_decref(j->body);
    OPENSSL_cleanse(&j->login, sizeof j->login);
    free(j);
}

static const struct login_job *done_login(const kw_http_req *req)
{
    return req->slow && req->slow->work == login_work ? req->slow->ctx : NULL;
}

static void answer_login(kw_http_req *req, kw_http_resp *resp, const struct login_job *j)
{
    if (j->failed) {
        refused(resp, &j->problem, j->retry_after);
        return;
    }
    /* A new membership: @me answers cached before it are out of date (the
     * session's call has no kw_call of the server's to do it). */
    if (j->accept) kw_directory_refresh(req->app->directory);
    signed_in(req, resp, j->accept ? 201 : 200, &j->login);
}

/* Both routes: refused at once what would be refused anyway (another
 * origin, the hash budget spent), else handed over to slow.c's thread —
 * or, without the memory to, run here. */
static int sign_in(kw_http_req *req, kw_http_resp *resp, int accept)
{
    const struct login_job *done = done_login(req);
    if (done) {
        answer_login(req, resp, done);
        return KW_OK;
    }
    if (refuse_cross_origin(req, resp)) return KW_OK;
    if (!req->app->sessions) {
        kw_resp_error(resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
        return KW_OK;
    }
    kw_problem p;
    int retry_after = 0;
    if (kw_session_hash_admissible(req->app->sessions, req->ip, &retry_after, &p)) {
        refused(resp, &p, retry_after);
        return KW_OK;
    }
    struct login_job *j = calloc(1, sizeof *j);
    kw_http_slow *job = j ? calloc(1, sizeof *job) : NULL;
    if (!j) return KW_ERR_NOMEM;
    j->body = json_incref(req->json);
    j->sessions = req->app->sessions;
    j->accept = accept;
    snprintf(j->ip, sizeof j->ip, "%s", req->ip);
    if (!job) {
        kw_http_slow here = {.ctx = j};
        login_work(&here);
        answer_login(req, resp, j);
        login_release(j);
        return KW_OK;
    }
    job->work = login_work;
    job->release = login_release;
    job->ctx = j;
    req->slow_job = job;
    return KW_OK;
}

int kw_h_login(kw_http_req *req, kw_http_resp *resp) { return sign_in(req, resp, 0); }

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

/* A pending invitation as the list shows it: never its link (the token
 * is shown once, to its creator). */
static json_t *invite_json(kw_store *store, const kw_invite *inv)
{
    return json_pack("{s:s, s:s, s:i, s:o, s:o, s:o, s:b}", "id", inv->id, "target_email",
                     inv->target_email, "level", inv->level, "created_by",
                     kw_json_user_by_id(store, inv->created_by), "created_at",
                     kw_json_time(inv->created_at), "expires_at", kw_json_time(inv->expires_at),
                     "is_expired", 0);
}

struct invite_page {
    kw_store *store;
    json_t *list;
};

static int add_invite(void *ctx, const kw_invite *inv)
{
    struct invite_page *page = ctx;
    json_t *o = invite_json(page->store, inv);
    return o && !json_array_append_new(page->list, o) ? 0 : KW_ERR_NOMEM;
}

int kw_h_invite_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset, count;
    kw_req_page(req, 100, 1000, &limit, &offset);
    struct invite_page page = {req->app->store, json_array()};
    if (!page.list) return KW_ERR_NOMEM;
    kw_time now = kw_now();
    int rc = kw_store_invite_count(req->app->store, req->match.org, now, &count);
    if (!rc) rc = kw_store_invite_list(req->app->store, req->match.org, now, limit, offset,
                                       add_invite, &page);
    if (rc) {
        json_decref(page.list);
        return rc;
    }
    kw_resp_json(resp, 200, kw_page_json(req, count, limit, offset, page.list));
    return KW_OK;
}

int kw_h_invite_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_invite_revoke(&req->call, req->match.org, req->match.id, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
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

int kw_h_invite_accept(kw_http_req *req, kw_http_resp *resp) { return sign_in(req, resp, 1); }
