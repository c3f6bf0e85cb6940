/* h_endpoints.c — /api/projects/:id/endpoints/ (CRUD, by name) and
 * …/endpoints/:name/run/.  Rules live in lib/events/endpoint.c; this file
 * translates.  Run takes its variables as a JSON object: in the body
 * ({"variables": {...}}) for POST, in ?variables=<JSON> for GET.
 *
 * A run's query can read every event of the project (anyone holding the
 * public phc_ token can capture hundreds of thousands), so it never runs
 * on a request thread, each of which serves many connections: the request
 * is checked and its variables resolved here, then it is suspended while
 * the query runs on the query thread (server_hold.c), and answered when
 * it is dispatched again.  Each run has a time limit counted from its
 * arrival (--endpoint-timeout), so one waiting behind another gets only
 * what is left, and at most KW_ENDPOINT_RUNS_MAX are taken at once: more
 * are answered 503 at once instead of queueing without bound. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/http.h"
#include "keyward/keyward.h"

struct endpoint_page {
    kw_store *store;
    json_t *list;
};

static int add_endpoint(void *ctx, const kw_endpoint *e)
{
    struct endpoint_page *c = ctx;
    json_array_append_new(c->list, kw_json_endpoint(c->store, e));
    return 0;
}

int kw_h_endpoint_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset, count = 0;
    kw_req_page(req, 100, 1000, &limit, &offset);
    struct endpoint_page c = {req->app->store, json_array()};
    int rc = kw_store_endpoint_count(req->app->store, req->project.id, &count);
    if (!rc) rc = kw_store_endpoint_list(req->app->store, req->project.id, limit, offset, add_endpoint, &c);
    if (rc) {
        json_decref(c.list);
        return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    }
    kw_resp_json(resp, 200, kw_page_json(req, count, limit, offset, c.list));
    return KW_OK;
}

/* The one way the handlers below answer. */
static void respond(kw_http_req *req, kw_http_resp *resp, int failed, int status, kw_endpoint *e,
                    const kw_problem *p)
{
    if (failed) {
        kw_resp_problem(resp, p);
        return;
    }
    kw_resp_json(resp, status, kw_json_endpoint(req->app->store, e));
    kw_endpoint_clear(e);
}

int kw_h_endpoint_create(kw_http_req *req, kw_http_resp *resp)
{
    kw_endpoint e;
    kw_problem p;
    int failed = kw_endpoint_create(&req->call, &req->project, req->json, &e, &p);
    respond(req, resp, failed, 201, &e, &p);
    return KW_OK;
}

int kw_h_endpoint_get(kw_http_req *req, kw_http_resp *resp)
{
    kw_endpoint e;
    kw_problem p;
    int failed = kw_endpoint_load(&req->call, req->project.id, req->match.id, &e, &p);
    respond(req, resp, failed, 200, &e, &p);
    return KW_OK;
}

int kw_h_endpoint_update(kw_http_req *req, kw_http_resp *resp)
{
    kw_endpoint e;
    kw_problem p;
    int failed = kw_endpoint_update(&req->call, &req->project, req->match.id, req->json, &e, &p);
    respond(req, resp, failed, 200, &e, &p);
    return KW_OK;
}

int kw_h_endpoint_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_endpoint_delete(&req->call, &req->project, req->match.id, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
    return KW_OK;
}

/* A run handed to the query thread, and its outcome. */
struct run_job {
    kw_app *app;
    kw_endpoint_job *job;
    struct timespec deadline;  /* CLOCK_MONOTONIC */
    json_t *result;
    int failed;
    kw_problem problem;
};

/* What is left of the run's time, in ms; -1 when none. */
static int64_t time_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ms = (int64_t)(deadline->tv_sec - now.tv_sec) * 1000 +
                 (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? ms : -1;
}

/* On the query thread. */
static void run_work(kw_http_slow *slow)
{
    struct run_job *j = slow->ctx;
    j->failed = kw_endpoint_run_execute(j->app->store, j->job, time_left(&j->deadline), &j->result,
                                        &j->problem);
}

/* Once the request has been answered (or has gone): the run's place is
 * free again. */
static void run_release(void *ctx)
{
    struct run_job *j = ctx;
    atomic_fetch_sub(&j->app->endpoint_runs, 1);
    kw_endpoint_job_free(j->job);
    json_decref(j->result);
    free(j);
}

/* Takes one of the KW_ENDPOINT_RUNS_MAX places and hands the run over
 * (req->slow_job): 0, or 1 with the refusal in *p. */
static int hand_over(kw_http_req *req, kw_endpoint_job *job, kw_problem *p)
{
    kw_app *app = req->app;
    if (atomic_fetch_add(&app->endpoint_runs, 1) >= KW_ENDPOINT_RUNS_MAX) {
        atomic_fetch_sub(&app->endpoint_runs, 1);
        kw_endpoint_job_free(job);
        kw_problem_set(p, KW_P_UNAVAILABLE, NULL, NULL,
                       "Too many endpoint runs are in progress on this server; retry shortly.");
        return 1;
    }
    struct run_job *j = calloc(1, sizeof *j);
    kw_http_slow *slow = calloc(1, sizeof *slow);
    if (!j || !slow) {
        free(j);
        free(slow);
        atomic_fetch_sub(&app->endpoint_runs, 1);
        kw_endpoint_job_free(job);
        kw_problem_from_store(p, KW_ERR_NOMEM);
        return 1;
    }
    int64_t ms = app->endpoint_timeout_ms > 0 ? app->endpoint_timeout_ms
                                              : KW_ENDPOINT_TIMEOUT_MS_DEFAULT;
    clock_gettime(CLOCK_MONOTONIC, &j->deadline);
    j->deadline.tv_sec += (time_t)(ms / 1000);
    j->deadline.tv_nsec += (long)(ms % 1000) * 1000000;
    if (j->deadline.tv_nsec >= 1000000000) {
        j->deadline.tv_sec++;
        j->deadline.tv_nsec -= 1000000000;
    }
    j->app = app;
    j->job = job;
    slow->work = run_work;
    slow->release = run_release;
    slow->ctx = j;
    slow->query = 1;
    req->slow_job = slow;
    return 0;
}

int kw_h_endpoint_run(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (req->slow && req->slow->work == run_work) {  /* back from the query thread */
        struct run_job *j = req->slow->ctx;
        if (j->failed) {
            kw_resp_problem(resp, &j->problem);
        } else {
            kw_resp_json(resp, 200, j->result);
            j->result = NULL;
        }
        return KW_OK;
    }
    json_t *owned = NULL;
    const json_t *variables = NULL;
    if (strcmp(req->method, "POST") == 0) {
        if (req->json && !json_is_object(req->json)) {
            kw_problem_set(&p, KW_P_VALIDATION, "invalid", "non_field_errors",
                           "Invalid data. Expected a dictionary.");
            kw_resp_problem(resp, &p);
            return KW_OK;
        }
        variables = req->json ? json_object_get(req->json, "variables") : NULL;
        if (json_is_null(variables)) variables = NULL;
    } else {
        const char *q = kw_req_query(req, "variables");
        if (q && *q) {
            json_error_t err;
            owned = json_loads(q, 0, &err);
            if (!owned) {
                kw_problem_set(&p, KW_P_VALIDATION, "invalid_input", "variables",
                               "variables must be a JSON object: %s", err.text);
                kw_resp_problem(resp, &p);
                return KW_OK;
            }
            variables = owned;
        }
    }
    kw_endpoint_job *job;
    if (kw_endpoint_run_prepare(&req->call, &req->project, req->match.id, variables, &job, &p) ||
        hand_over(req, job, &p))
        kw_resp_problem(resp, &p);  /* else no answer yet: dispatched again once it ran */
    json_decref(owned);
    return KW_OK;
}
