/* h_capture.c — POST /e/, /i/v0/e/, /batch/, /capture/, /track/, /engage/.
 *
 * By the time this runs, dispatch has decoded the body (gzip, gzip-js,
 * form data=base64: body.c) and found the project from the phc_ token in
 * it; lib/capture.c validates and stores the events.  The answer is
 * PostHog's: 200 {"status": 1}.  The 1 MiB request limit of server.c holds
 * here too (PostHog allows 20 MB on /batch/): posthog-node and
 * posthog-python flush far smaller batches by default, and the inflated
 * size of a compressed body is capped separately (KW_MAX_INFLATED). */
#include "http/http.h"

void kw_h_capture(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    size_t stored;
    if (kw_capture(&req->call, req->principal.project_id, req->json, &stored, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 200, json_pack("{s:i}", "status", 1));
}
