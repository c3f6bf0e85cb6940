/* h_leak.c — leak reports (GitHub secret-scanning partner format) and the
 * read-only liveness check `keyward scan --verify` uses.
 *
 * POST /api/secret_scanning/report/ takes [{token, type, url, source}] and
 * answers GitHub's shape, one object per token: {token_hash, token_type,
 * label} with label "true_positive" for a live key (now revoked, or a
 * previous value whose grace window is now ended), "false_positive"
 * otherwise — a current project token included: it is public by design,
 * so it is no leak, and nothing is written for it — plus keyward's
 * "action" (revoked | public | none).  The token is never echoed:
 * token_hash is its hex sha256.  No credential is needed — the reporter
 * presents the token — so the endpoint is rate-limited per client address
 * (429 + Retry-After), keeps what was costly to learn about a token
 * (lib/leak/leak_guard.c), and runs a report that may cost PBKDF2 runs on
 * slow.c's thread, never on a request thread; the owner of a key ({type,
 * id}) is named only to a reporter whose signature was verified.  When
 * the server holds reporter public keys the report must carry a valid
 * Github-Public-Key-Signature over the raw body.
 * POST /api/secret_scanning/verify/ (personal key) answers {token_hash,
 * token_type, live} and changes nothing.  The work is in lib/leak/leak.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/leak.h"
#include "keyward/metrics.h"
#include "keyward/validate.h"

/* An optional string field of an item: absent or null → NULL. */
static int opt_string(const json_t *item, const char *field, size_t max, const char **out,
                      size_t index, kw_problem *p)
{
    json_t *v = json_object_get(item, field);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v) || kw_v_utf8_length(json_string_value(v)) > max) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid", NULL,
                       "Item %zu: \"%s\" must be a string of at most %zu characters.", index, field,
                       max);
        return 1;
    }
    *out = json_string_value(v);
    return 0;
}

/* The body as items; 0, or 1 with *p set (400). */
static int parse_items(const json_t *body, kw_leak_item **out, size_t *n, kw_problem *p)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(body)) {
        kw_problem_set(p, KW_P_VALIDATION, "not_a_list", NULL,
                       "Expected a list of items but got type \"%s\".",
                       body ? kw_v_type_name(body) : "NoneType");
        return 1;
    }
    size_t count = json_array_size(body);
    if (count > KW_LEAK_MAX_ITEMS) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", NULL,
                       "Ensure this field has no more than %d elements.", KW_LEAK_MAX_ITEMS);
        return 1;
    }
    kw_leak_item *items = calloc(count ? count : 1, sizeof *items);
    if (!items) return kw_problem_from_store(p, KW_ERR_NOMEM);
    for (size_t i = 0; i < count; i++) {
        json_t *item = json_array_get(body, i);
        json_t *token = json_object_get(item, "token");
        if (!json_is_object(item) || !json_is_string(token) || json_string_length(token) == 0) {
            kw_problem_set(p, KW_P_VALIDATION, "required", "token",
                           "Item %zu: an object with a non-empty \"token\" string is required.", i);
            free(items);
            return 1;
        }
        items[i].token = json_string_value(token);
        items[i].token_len = json_string_length(token);
        if (opt_string(item, "type", KW_LEAK_FIELD_MAX, &items[i].type, i, p) ||
            opt_string(item, "url", KW_LEAK_URL_MAX, &items[i].url, i, p) ||
            opt_string(item, "source", KW_LEAK_FIELD_MAX, &items[i].source, i, p)) {
            free(items);
            return 1;
        }
    }
    *out = items;
    *n = count;
    return 0;
}

/* 0 when the report may be processed; otherwise a 401 is in resp. */
static int check_signature(const kw_http_req *req, kw_http_resp *resp)
{
    const kw_leak_keys *keys = req->app->leak_keys;
    if (!keys) return 0;  /* unsigned reports accepted: see docs/security.md */
    const char *kid = kw_req_header(req, "Github-Public-Key-Identifier");
    const char *sig = kw_req_header(req, "Github-Public-Key-Signature");
    if (!kid || !sig || !*kid || !*sig) {
        kw_resp_error(resp, KW_P_NOT_AUTHENTICATED, NULL,
                      "This server accepts signed reports only: the Github-Public-Key-Identifier "
                      "and Github-Public-Key-Signature headers are required.");
        return 1;
    }
    if (kw_leak_signature_verify(keys, kid, sig, req->body ? req->body : "", req->body_len)) {
        kw_resp_error(resp, KW_P_AUTH_FAILED, NULL, "The report's signature is invalid.");
        return 1;
    }
    return 0;
}

/* The largest Retry-After an item asked for (a spent legacy-hash budget). */
static int retry_after(const kw_leak_result *results, size_t n)
{
    int wait = 1;
    for (size_t i = 0; i < n; i++)
        if (results[i].retry_after > wait) wait = results[i].retry_after;
    return wait;
}

static const char *action_of(kw_leak_outcome outcome)
{
    return outcome == KW_LEAK_REVOKED ? "revoked" : outcome == KW_LEAK_PUBLIC ? "public" : "none";
}

/* The answer to processed items: GitHub's shape in report mode (revoke),
 * liveness in check mode; the owners only to a signed report. */
static void answer(kw_http_resp *resp, const kw_leak_item *items, size_t n,
                   const kw_leak_result *results, int failed, const kw_problem *p, int revoke,
                   int signed_report)
{
    if (failed) {
        if (p->kind == KW_P_THROTTLED) {
            kw_metrics_rate_limited(KW_M_LIMIT_LEGACY);
            kw_resp_throttled(resp, retry_after(results, n));
        } else {
            kw_resp_problem(resp, p);
        }
        return;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        const kw_leak_result *r = &results[i];
        json_t *o = json_pack("{s:s, s:s?}", "token_hash", r->token_hash, "token_type",
                              items[i].type);
        if (revoke) {
            kw_metrics_leak_token(r->outcome == KW_LEAK_REVOKED  ? KW_M_LEAK_REVOKED
                                  : r->outcome == KW_LEAK_PUBLIC ? KW_M_LEAK_PUBLIC
                                                                 : KW_M_LEAK_NONE);
            int positive = r->outcome == KW_LEAK_REVOKED;
            json_object_set_new(o, "label", json_string(positive ? "true_positive" : "false_positive"));
            json_object_set_new(o, "action", json_string(action_of(r->outcome)));
            if (!signed_report) {
                json_array_append_new(out, o);
                continue;
            }
            json_t *owner = json_null();
            if (r->owner_user_id)
                owner = json_pack("{s:s, s:I}", "type", "user", "id", (json_int_t)r->owner_user_id);
            else if (r->owner_project_id)
                owner = json_pack("{s:s, s:I}", "type", "project", "id",
                                  (json_int_t)r->owner_project_id);
            json_object_set_new(o, "owner", owner);
        } else {
            json_object_set_new(o, "live", json_boolean(r->outcome == KW_LEAK_LIVE));
        }
        json_array_append_new(out, o);
    }
    kw_resp_json(resp, 200, out);
}

/* A report (or check) processed on slow.c's thread: what it needs, which
 * outlives the request's first dispatch, and its outcome. */
struct leak_job {
    json_t *body;  /* holds the items' strings */
    kw_leak_item *items;
    size_t n;
    kw_leak_result *results;
    int revoke, failed;
    kw_problem problem;
    kw_leak_guard *guard;
    kw_call call;
    kw_principal actor;
    char ip[64];
};

static void leak_work(kw_http_slow *job)
{
    struct leak_job *j = job->ctx;
    j->failed = kw_leak_process_guarded(&j->call, j->guard, j->items, j->n, j->revoke, j->results,
                                        &j->problem);
}

static void leak_release(void *ctx)
{
    struct leak_job *j = ctx;
    json_decref(j->body);
    free(j->items);
    free(j->results);
    free(j);
}

/* The job this request is dispatched again with, when it is a leak job. */
static const struct leak_job *done_job(const kw_http_req *req)
{
    return req->slow && req->slow->work == leak_work ? req->slow->ctx : NULL;
}

/* Whether the items may cost PBKDF2 runs: a legacy-length phx_ may be an
 * imported PostHog key stored in a pbkdf2 form, whose forms are computed
 * (two runs, about half a second).  Such a report runs on slow.c's thread,
 * as a legacy key check does, so that it never stalls the other
 * connections of the request's thread. */
static int may_need_pbkdf2(const kw_leak_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kw_key_info info;
        if (items[i].token_len <= KW_KEY_MAX_LEN &&
            kw_key_classify(items[i].token, items[i].token_len, &info) != KW_FORMAT_INVALID &&
            info.kind == KW_KEY_PERSONAL && info.format == KW_FORMAT_LEGACY)
            return 1;
    }
    return 0;
}

/* Hands the items over to slow.c's thread (req->slow_job): 1 when handed
 * over (no response is built: the request is dispatched again with the
 * job done), 0 without the memory to (processed here then). */
static int hand_over(kw_http_req *req, kw_leak_item *items, size_t n, kw_leak_result *results,
                     int revoke)
{
    struct leak_job *j = calloc(1, sizeof *j);
    kw_http_slow *job = calloc(1, sizeof *job);
    if (!j || !job) {
        free(j);
        free(job);
        return 0;
    }
    j->body = json_incref(req->json);
    j->items = items;
    j->n = n;
    j->results = results;
    j->revoke = revoke;
    j->guard = revoke ? req->app->leak_guard : NULL;
    j->actor = req->principal;
    snprintf(j->ip, sizeof j->ip, "%s", req->ip);
    j->call = req->call;
    j->call.actor = &j->actor;
    j->call.ip = j->ip;
    job->work = leak_work;
    job->release = leak_release;
    job->ctx = j;
    req->slow_job = job;
    return 1;
}

/* revoke: report mode; signed: the reporter's signature was verified (the
 * only caller of report mode who may learn who held a key). */
static int run(kw_http_req *req, kw_http_resp *resp, int revoke, int signed_report)
{
    const struct leak_job *done = done_job(req);
    if (done) {
        answer(resp, done->items, done->n, done->results, done->failed, &done->problem, revoke,
               signed_report);
        return KW_OK;
    }
    kw_leak_item *items;
    size_t n;
    kw_problem p;
    if (parse_items(req->json, &items, &n, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    kw_leak_result *results = calloc(n ? n : 1, sizeof *results);
    if (!results) {
        free(items);
        return KW_ERR_NOMEM;
    }
    if (may_need_pbkdf2(items, n) && hand_over(req, items, n, results, revoke)) return KW_OK;
    int failed = kw_leak_process_guarded(&req->call, revoke ? req->app->leak_guard : NULL, items,
                                         n, revoke, results, &p);
    answer(resp, items, n, results, failed, &p, revoke, signed_report);
    free(results);
    free(items);
    return KW_OK;
}

int kw_h_leak_report(kw_http_req *req, kw_http_resp *resp)
{
    /* Admitted, counted and its signature checked once: not again when
     * it comes back with its work done on slow.c's thread. */
    if (done_job(req)) return run(req, resp, 1, req->app->leak_keys != NULL);
    int wait = kw_leak_guard_admit(req->app->leak_guard, req->ip, kw_now());
    if (wait) {
        kw_metrics_rate_limited(KW_M_LIMIT_LEAK);
        kw_resp_throttled(resp, wait);
        return KW_OK;
    }
    kw_metrics_leak_report();
    if (check_signature(req, resp)) return KW_OK;
    return run(req, resp, 1, req->app->leak_keys != NULL);
}

int kw_h_leak_verify(kw_http_req *req, kw_http_resp *resp) { return run(req, resp, 0, 0); }
