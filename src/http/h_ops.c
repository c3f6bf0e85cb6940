/* h_ops.c — what operators and load balancers ask of an instance:
 * readiness.  (Liveness is /_health in h_projects.c: a static body that
 * says the process answers, database or not.)
 *
 * Readiness tells the truth about the database without touching it: it
 * reads what the verifier's maintenance thread last learned from its poll
 * of the auth generation (one query every 200 ms per instance, run anyway
 * to follow revocations).  So a load balancer probing every instance many
 * times a second adds no query and takes no lock; a stuck poll (a silent
 * network) counts as unreachable after 2 s even before it fails. */
#include "http/http.h"
#include "keyward/keyward.h"

static double seconds(int64_t us) { return (double)(us / 1000) / 1000.0; }

int kw_h_health_ready(kw_http_req *req, kw_http_resp *resp)
{
    kw_verifier_health h;
    kw_verifier_health_read(req->app->verifier, &h);
    const char *backend = kw_store_backend(req->app->store);
    if (h.db_reachable) {
        kw_resp_json(resp, 200,
                     json_pack("{s:s, s:s, s:s, s:f}", "status", "ok", "database", "ok", "backend",
                               backend, "last_contact_seconds_ago", seconds(h.since_contact_us)));
        return KW_OK;
    }
    /* 503 so that a load balancer routes around this instance; the body
     * says for how long keys verified before are still served from memory
     * (after that every authenticated request answers 503 too). */
    kw_resp_json(resp, 503,
                 json_pack("{s:s, s:s, s:s, s:f, s:f, s:f, s:b}", "status", "degraded", "database",
                           "unreachable", "backend", backend, "unreachable_seconds",
                           seconds(h.down_for_us), "grace_remaining_seconds",
                           seconds(h.grace_remaining_us), "grace_seconds", seconds(h.grace_us),
                           "serving_cached", h.grace_remaining_us > 0));
    kw_resp_header(resp, "Retry-After", "1");
    return KW_OK;
}
