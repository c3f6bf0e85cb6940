/* h_capture.c — POST /e/, /i/v0/e/, /batch/, /capture/, /track/, /engage/,
 * /i/v0/ai/batch/ (posthog-node's AI events: the /batch/ body), and
 * /i/v1/analytics/events (Capture V1: lib/events/capture_v1.c).
 *
 * By the time this runs, dispatch has decoded the body (gzip, gzip-js,
 * form data=base64: body.c) and found the project from the phc_ token in
 * it; lib/events/capture.c validates the events here, and the server's
 * capture group stores them, many requests in one transaction, before the
 * answer is sent (server_hold.c).  The answer is PostHog's: 200 {"status": 1}.
 * The 1 MiB request limit of server_request.c holds here too (PostHog allows
 * 20 MB on /batch/): posthog-node and posthog-python flush far smaller
 * batches by default, and the inflated size of a compressed body is
 * capped separately (KW_MAX_INFLATED). */
#include <pthread.h>
#include <string.h>

#include "http/http.h"

static const char STATUS_OK[] = "{\"status\":1}";
static const char RESULTS_OK[] = "{\"results\":{}}";

/* The two answers, each built once as a ready response with the one
 * header dispatch gives every capture route (CORS: posthog-js sends from
 * web pages), and queued as is on every capture: no response to build,
 * no header copies, per request.  Kept for the life of the process. */
static kw_http_ready *ready_status, *ready_results;
static pthread_once_t ready_once = PTHREAD_ONCE_INIT;

static kw_http_ready *ready_answer(const char *text)
{
    kw_http_resp r;
    kw_http_resp_init(&r);
    kw_resp_header(&r, "Access-Control-Allow-Origin", "*");
    kw_resp_raw(&r, 200, "application/json", text, strlen(text), NULL, NULL);
    return kw_http_ready_new(&r);
}

static void build_ready(void)
{
    ready_status = ready_answer(STATUS_OK);
    ready_results = ready_answer(RESULTS_OK);
}

/* The answer for staged events: server_hold.c stores them (with other
 * requests' in the capture group, or on its own thread) before `ok` is
 * sent, and answers the storage's refusal instead when it fails.  `ok` is
 * static text, sent as the ready response when resp carries just the
 * header that one has (else as bytes with resp's own headers). */
static int answer(kw_http_req *req, kw_http_resp *resp, kw_capture_batch *b, const char *ok)
{
    req->capture = b;
    kw_resp_raw(resp, 200, "application/json", ok, strlen(ok), NULL, NULL);
    pthread_once(&ready_once, build_ready);
    if (resp->n_headers == 1 && strcmp(resp->header_names[0], "Access-Control-Allow-Origin") == 0 &&
        strcmp(resp->header_values[0], "*") == 0)
        resp->shared = ok == STATUS_OK ? ready_status : ready_results;
    return KW_OK;
}

int kw_h_capture(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    kw_capture_batch *b;
    json_t *payload = req->json;
    req->json = NULL;  /* the batch's now: its events point into it */
    if (kw_capture_stage(&req->call, req->principal.project_id, payload, &b, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    return answer(req, resp, b, STATUS_OK);
}

/* Capture V1 answers a per-event map, {"results": {uuid: {"result": …}}};
 * an event it does not name is delivered, so a stored batch is the empty
 * map.  A refused batch is refused whole (400/413 as on /batch/), which
 * posthog-node reports and does not retry. */
int kw_h_capture_v1(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    kw_capture_batch *b;
    json_t *payload = req->json;
    req->json = NULL;
    if (kw_capture_v1_stage(&req->call, req->principal.project_id, payload,
                            kw_req_header(req, "PostHog-Sdk-Info"), &b, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    return answer(req, resp, b, RESULTS_OK);
}
