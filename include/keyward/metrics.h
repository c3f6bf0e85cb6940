/* metrics.h — the process's counters, for the Prometheus endpoint.
 *
 * Counting sits on the hot path (every request, every verification), so
 * it takes no lock and allocates nothing: counters live in a fixed number
 * of static shards, each thread adds to its own shard with a relaxed
 * atomic add (threads share a shard only when there are more threads than
 * shards), and a scrape sums the shards.  A scrape therefore sees each
 * counter at some recent value, never a torn one; counters only grow.
 *
 * The counters are process-wide state on purpose (one set per process, as
 * Prometheus expects of a target): the database drivers count failures
 * deep below any context a request carries, and threading a metrics
 * pointer through every store call would cost every caller for no gain.
 *
 * This is the bottom layer (util): it knows no HTTP and no key type, only
 * the small enumerations below, which the layers above map to.  The
 * exposition text is written by the program (src/http/h_metrics.c). */
#ifndef KEYWARD_METRICS_H
#define KEYWARD_METRICS_H

#include <stdint.h>

/* Key kinds verified (label kind). */
enum kw_m_kind { KW_M_PERSONAL, KW_M_SECRET, KW_M_PROJECT, KW_M_NKIND };
/* Verification results (label result). */
enum kw_m_result {
    KW_M_OK,
    KW_M_INVALID,
    KW_M_EXPIRED,
    KW_M_UNAVAILABLE,
    KW_M_BUSY,
    KW_M_NRESULT
};
/* Why a request was refused with 429 (label reason). */
enum kw_m_limit {
    KW_M_LIMIT_KEY,         /* the key's rate_limit_per_minute */
    KW_M_LIMIT_LEGACY,      /* the legacy (pbkdf2) verification budget */
    KW_M_LIMIT_LEAK,        /* leak reports from one address */
    KW_M_LIMIT_LOGIN,       /* failed sign-ins (account or address) */
    KW_M_NLIMIT
};
/* What a leak report did to each token it named (label action). */
enum kw_m_leak { KW_M_LEAK_REVOKED, KW_M_LEAK_PUBLIC, KW_M_LEAK_NONE, KW_M_NLEAK };
/* Webhook delivery attempts (label outcome): delivered, failed and to be
 * retried, failed for the last time; and events never queued because
 * their webhook had KW_WEBHOOK_PENDING_MAX rows to deliver. */
enum kw_m_webhook {
    KW_M_WEBHOOK_DELIVERED,
    KW_M_WEBHOOK_RETRY,
    KW_M_WEBHOOK_GAVE_UP,
    KW_M_WEBHOOK_DROPPED,
    KW_M_NWEBHOOK
};
/* Database failures (label kind): unreachable / busy, or any other. */
enum kw_m_db { KW_M_DB_UNAVAILABLE, KW_M_DB_ERROR, KW_M_NDB };

/* Route slots for HTTP requests: the route table's ids, and one slot for
 * requests that matched no route.  Larger than the table (checked where
 * the ids are known, src/http). */
#define KW_M_ROUTES 128
#define KW_M_ROUTE_NONE (KW_M_ROUTES - 1)
/* Status classes 1xx … 5xx. */
#define KW_M_NCLASS 5

/* Latency histogram buckets, upper bounds in seconds (+Inf implied):
 * a cache hit is a few µs, a PostgreSQL probe a few hundred. */
#define KW_M_NBUCKET 14
extern const double kw_metrics_buckets[KW_M_NBUCKET];

/* A monotonic clock in nanoseconds, for latencies. */
uint64_t kw_metrics_clock(void);

void kw_metrics_verification(enum kw_m_kind kind, enum kw_m_result result, uint64_t ns);
void kw_metrics_cache(enum kw_m_kind kind, int hit);
/* route: an id < KW_M_ROUTE_NONE, or KW_M_ROUTE_NONE; status: the HTTP
 * status (outside 100-599 counts as 5xx). */
void kw_metrics_http(int route, int status, uint64_t ns);
void kw_metrics_rate_limited(enum kw_m_limit why);
void kw_metrics_leak_report(void);
void kw_metrics_leak_token(enum kw_m_leak action);
void kw_metrics_db_error(enum kw_m_db kind);
void kw_metrics_webhook(enum kw_m_webhook outcome);
/* Captured events answered before they were stored (--capture-ack-window)
 * whose storing then failed: lost. */
void kw_metrics_capture_lost(uint64_t events);
/* The outbox rows still to deliver, as last counted by this process's
 * sender (a gauge, set rather than added: read as is, not summed). */
void kw_metrics_webhook_backlog(uint64_t rows);

/* The sum over every shard at one moment. */
typedef struct kw_m_histogram {
    uint64_t bucket[KW_M_NBUCKET + 1];  /* per bucket (not cumulative); last: +Inf */
    uint64_t count;
    uint64_t sum_ns;
} kw_m_histogram;

typedef struct kw_metrics_snapshot {
    uint64_t verifications[KW_M_NKIND][KW_M_NRESULT];
    kw_m_histogram verify_latency[KW_M_NKIND];
    uint64_t cache_hits[KW_M_NKIND], cache_misses[KW_M_NKIND];
    uint64_t http[KW_M_ROUTES][KW_M_NCLASS];
    kw_m_histogram http_latency;
    uint64_t rate_limited[KW_M_NLIMIT];
    uint64_t leak_reports;
    uint64_t leak_tokens[KW_M_NLEAK];
    uint64_t db_errors[KW_M_NDB];
    uint64_t webhook_attempts[KW_M_NWEBHOOK];
    uint64_t capture_lost;  /* events answered 200 that the database then refused */
    uint64_t webhook_backlog;  /* the gauge: never added to in a shard */
} kw_metrics_snapshot;

void kw_metrics_read(kw_metrics_snapshot *out);

#endif
