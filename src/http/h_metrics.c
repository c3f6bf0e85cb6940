/* h_metrics.c — the Prometheus text exposition (format 0.0.4) of the
 * process's counters (lib/util/metrics.c) and of its database state.
 *
 * Served only on the listener `keyward serve --metrics-listen` opens
 * (server.c), never on the API's: what it shows (traffic per route, how
 * many keys fail, whether the database is down) is for the operator's
 * network.  Label values come from fixed tables only — route patterns of
 * the route table, never a request's path — so the series are bounded and
 * need no escaping.  A route and status class that was never seen is left
 * out; the other families list every label value, zeros included. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/metrics.h"
#include "keyward/strbuf.h"

/* The most text a scrape may produce (about 60 KB with every route seen). */
#define METRICS_TEXT_MAX (1 << 20)

_Static_assert(KW_ROUTE_COUNT < KW_M_ROUTE_NONE, "KW_M_ROUTES must exceed the route table");

static const char *const KIND[KW_M_NKIND] = {"personal", "secret", "project"};
static const char *const RESULT[KW_M_NRESULT] = {"ok", "invalid", "expired", "unavailable",
                                                 "busy"};
static const char *const LIMIT[KW_M_NLIMIT] = {"key", "legacy_budget", "leak_report", "login"};
static const char *const LEAK[KW_M_NLEAK] = {"revoked", "public", "none"};
static const char *const DB[KW_M_NDB] = {"unavailable", "error"};
static const char *const WEBHOOK[KW_M_NWEBHOOK] = {"delivered", "retry", "gave_up", "dropped"};

static void head(kw_strbuf *f, const char *name, const char *type, const char *help)
{
    kw_sb_appendf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's lines; `label` is `name="value",` or "". */
static void histogram(kw_strbuf *f, const char *name, const char *label, const kw_m_histogram *h)
{
    uint64_t cumulative = 0;
    for (int b = 0; b < KW_M_NBUCKET; b++) {
        cumulative += h->bucket[b];
        kw_sb_appendf(f, "%s_bucket{%sle=\"%g\"} %llu\n", name, label, kw_metrics_buckets[b],
                (unsigned long long)cumulative);
    }
    cumulative += h->bucket[KW_M_NBUCKET];
    kw_sb_appendf(f, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, label, (unsigned long long)cumulative);
    /* The braces of an empty label set are left out. */
    int n = (int)strlen(label);
    if (n) {
        kw_sb_appendf(f, "%s_sum{%.*s} %.9f\n", name, n - 1, label, (double)h->sum_ns / 1e9);
        kw_sb_appendf(f, "%s_count{%.*s} %llu\n", name, n - 1, label, (unsigned long long)h->count);
    } else {
        kw_sb_appendf(f, "%s_sum %.9f\n%s_count %llu\n", name, (double)h->sum_ns / 1e9, name,
                (unsigned long long)h->count);
    }
}

/* A family with one label over a fixed list of values. */
static void labelled(kw_strbuf *f, const char *name, const char *type, const char *help,
                     const char *label, const char *const *values, const uint64_t *counts, int n)
{
    head(f, name, type, help);
    for (int i = 0; i < n; i++)
        kw_sb_appendf(f, "%s{%s=\"%s\"} %llu\n", name, label, values[i], (unsigned long long)counts[i]);
}

static void verification(kw_strbuf *f, const kw_metrics_snapshot *s)
{
    head(f, "keyward_verifications_total", "counter",
         "Keys verified, by key kind (personal phx_, secret phs_, project phc_) and result.");
    for (int k = 0; k < KW_M_NKIND; k++)
        for (int r = 0; r < KW_M_NRESULT; r++)
            kw_sb_appendf(f, "keyward_verifications_total{kind=\"%s\",result=\"%s\"} %llu\n", KIND[k],
                    RESULT[r], (unsigned long long)s->verifications[k][r]);
    head(f, "keyward_verification_duration_seconds", "histogram",
         "Time to verify a key (cache hit or database lookup), by key kind.");
    for (int k = 0; k < KW_M_NKIND; k++) {
        char label[32];
        snprintf(label, sizeof label, "kind=\"%s\",", KIND[k]);
        histogram(f, "keyward_verification_duration_seconds", label, &s->verify_latency[k]);
    }
    labelled(f, "keyward_verification_cache_hits_total", "counter",
             "Verifications answered from this instance's cache, by key kind.", "kind", KIND,
             s->cache_hits, KW_M_NKIND);
    labelled(f, "keyward_verification_cache_misses_total", "counter",
             "Verifications the cache could not answer (looked up in the database), by key kind.",
             "kind", KIND, s->cache_misses, KW_M_NKIND);
}

static void http(kw_strbuf *f, const kw_metrics_snapshot *s)
{
    size_t n;
    const kw_route *routes = kw_policy_routes(&n);
    head(f, "keyward_http_requests_total", "counter",
         "HTTP requests answered, by route (the route table's method and pattern; "
         "route=\"none\" for requests no route matched) and status class.");
    for (int r = 0; r < KW_M_ROUTES; r++) {
        if (r >= (int)n && r != KW_M_ROUTE_NONE) continue;
        for (int c = 0; c < KW_M_NCLASS; c++) {
            if (!s->http[r][c]) continue;
            kw_sb_appendf(f, "keyward_http_requests_total{method=\"%s\",route=\"%s\",status=\"%dxx\"} %llu\n",
                    r == KW_M_ROUTE_NONE ? "none" : routes[r].method,
                    r == KW_M_ROUTE_NONE ? "none" : routes[r].pattern, c + 1,
                    (unsigned long long)s->http[r][c]);
        }
    }
    head(f, "keyward_http_request_duration_seconds", "histogram",
         "Time from a request's arrival to its answer being queued, all routes.");
    histogram(f, "keyward_http_request_duration_seconds", "", &s->http_latency);
}

static void database(kw_strbuf *f, const kw_metrics_snapshot *s, const kw_app *app)
{
    labelled(f, "keyward_db_errors_total", "counter",
             "Database statements that failed: unavailable (unreachable, busy) or error.", "kind",
             DB, s->db_errors, KW_M_NDB);
    kw_verifier_health h;
    kw_verifier_health_read(app->verifier, &h);
    head(f, "keyward_db_up", "gauge",
         "1 while the database answers this instance's poll (as /_health/ready), else 0.");
    kw_sb_appendf(f, "keyward_db_up{backend=\"%s\"} %d\n", kw_store_backend(app->store), h.db_reachable);
    head(f, "keyward_db_grace_remaining_seconds", "gauge",
         "How much longer keys verified before keep being served from memory if the database "
         "stays unreachable (--degraded-grace less the time since the last good poll).");
    kw_sb_appendf(f, "keyward_db_grace_remaining_seconds %.3f\n", (double)h.grace_remaining_us / 1e6);
}

char *kw_metrics_render(const kw_app *app, size_t *len)
{
    kw_metrics_snapshot *s = malloc(sizeof *s);
    if (!s) return NULL;
    kw_metrics_read(s);
    kw_strbuf sb, *f = &sb;
    kw_sb_init_heap(f, METRICS_TEXT_MAX);
    head(f, "keyward_build_info", "gauge", "The running keyward's version (value always 1).");
    kw_sb_appendf(f, "keyward_build_info{version=\"%s\"} 1\n", KW_VERSION);
    verification(f, s);
    http(f, s);
    labelled(f, "keyward_rate_limited_total", "counter",
             "Requests refused with 429, by which limit: a key's rate limit, the legacy-hash "
             "budget, leak reports from one address, failed sign-ins.",
             "reason", LIMIT, s->rate_limited, KW_M_NLIMIT);
    head(f, "keyward_leak_reports_total", "counter",
         "Leak reports received (POST /api/secret_scanning/report/ past its address limit).");
    kw_sb_appendf(f, "keyward_leak_reports_total %llu\n", (unsigned long long)s->leak_reports);
    labelled(f, "keyward_leak_report_tokens_total", "counter",
             "Tokens named by leak reports, by what was done: revoked, public (a phc_ token), "
             "none (unknown or already revoked).",
             "action", LEAK, s->leak_tokens, KW_M_NLEAK);
    labelled(f, "keyward_webhook_deliveries_total", "counter",
             "Webhook delivery attempts by this instance, by outcome: delivered (2xx), retry "
             "(failed, tried again later), gave_up (failed 24 h after the event); dropped: events "
             "not queued because their webhook already had 1000 to deliver.",
             "outcome", WEBHOOK, s->webhook_attempts, KW_M_NWEBHOOK);
    head(f, "keyward_capture_lost_events_total", "counter",
         "Captured events answered 200 before they were stored (--capture-ack-window) that the "
         "database then refused: lost.  Always 0 without the window.");
    kw_sb_appendf(f, "keyward_capture_lost_events_total %llu\n", (unsigned long long)s->capture_lost);
    head(f, "keyward_webhook_backlog", "gauge",
         "Webhook deliveries waiting (due or scheduled for a retry), all instances, as this "
         "instance's sender last counted them (every few seconds).");
    kw_sb_appendf(f, "keyward_webhook_backlog %llu\n", (unsigned long long)s->webhook_backlog);
    database(f, s, app);
    free(s);
    if (!kw_sb_ok(f)) {
        kw_sb_free(f);
        return NULL;
    }
    *len = kw_sb_len(f);
    return sb.data;  /* the caller's now, as kw_strdupf hands its text over */
}
