/* metrics.c — lock-free counters in per-thread shards (see metrics.h).
 *
 * A shard is the snapshot's layout made of atomics: a counter's place in
 * kw_metrics_snapshot is its place in every shard, so reading is one
 * element-wise sum.  Shards are cache-line aligned, so threads counting in
 * different shards do not contend for a line; each thread picks its shard
 * once (round robin) and keeps it in a thread-local. */
#include "keyward/metrics.h"

#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#define SHARDS 16
#define WORDS (sizeof(kw_metrics_snapshot) / sizeof(uint64_t))
_Static_assert(sizeof(kw_metrics_snapshot) % sizeof(uint64_t) == 0, "a snapshot is all counters");

struct shard {
    _Alignas(64) _Atomic uint64_t v[WORDS];
};
static struct shard shards[SHARDS];
static atomic_uint next_shard;
static _Thread_local int my_shard = -1;

const double kw_metrics_buckets[KW_M_NBUCKET] = {0.000005, 0.00001, 0.000025, 0.00005, 0.0001,
                                                 0.00025,  0.0005,  0.001,    0.0025,  0.005,
                                                 0.01,     0.025,   0.1,      1.0};
static const uint64_t BUCKET_NS[KW_M_NBUCKET] = {5000,    10000,   25000,    50000,    100000,
                                                 250000,  500000,  1000000,  2500000,  5000000,
                                                 10000000, 25000000, 100000000, 1000000000};

#define SLOT(field) (offsetof(kw_metrics_snapshot, field) / sizeof(uint64_t))

static inline void add(size_t slot, uint64_t n)
{
    if (my_shard < 0) my_shard = (int)(atomic_fetch_add(&next_shard, 1) % SHARDS);
    atomic_fetch_add_explicit(&shards[my_shard].v[slot], n, memory_order_relaxed);
}

uint64_t kw_metrics_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A histogram at slot `base` (a kw_m_histogram's first word). */
static void observe(size_t base, uint64_t ns)
{
    size_t b = 0;
    while (b < KW_M_NBUCKET && ns > BUCKET_NS[b]) b++;
    add(base + offsetof(kw_m_histogram, bucket) / sizeof(uint64_t) + b, 1);
    add(base + offsetof(kw_m_histogram, count) / sizeof(uint64_t), 1);
    add(base + offsetof(kw_m_histogram, sum_ns) / sizeof(uint64_t), ns);
}

#define HIST_WORDS (sizeof(kw_m_histogram) / sizeof(uint64_t))

void kw_metrics_verification(enum kw_m_kind kind, enum kw_m_result result, uint64_t ns)
{
    if ((unsigned)kind >= KW_M_NKIND || (unsigned)result >= KW_M_NRESULT) return;
    add(SLOT(verifications) + (size_t)kind * KW_M_NRESULT + result, 1);
    observe(SLOT(verify_latency) + (size_t)kind * HIST_WORDS, ns);
}

void kw_metrics_cache(enum kw_m_kind kind, int hit)
{
    if ((unsigned)kind >= KW_M_NKIND) return;
    add((hit ? SLOT(cache_hits) : SLOT(cache_misses)) + kind, 1);
}

void kw_metrics_http(int route, int status, uint64_t ns)
{
    if (route < 0 || route >= KW_M_ROUTES) route = KW_M_ROUTE_NONE;
    int cls = status >= 100 && status <= 599 ? status / 100 - 1 : 4;
    add(SLOT(http) + (size_t)route * KW_M_NCLASS + (size_t)cls, 1);
    observe(SLOT(http_latency), ns);
}

void kw_metrics_rate_limited(enum kw_m_limit why)
{
    if ((unsigned)why < KW_M_NLIMIT) add(SLOT(rate_limited) + why, 1);
}

void kw_metrics_leak_report(void) { add(SLOT(leak_reports), 1); }

void kw_metrics_leak_token(enum kw_m_leak action)
{
    if ((unsigned)action < KW_M_NLEAK) add(SLOT(leak_tokens) + action, 1);
}

void kw_metrics_db_error(enum kw_m_db kind)
{
    if ((unsigned)kind < KW_M_NDB) add(SLOT(db_errors) + kind, 1);
}

void kw_metrics_webhook(enum kw_m_webhook outcome)
{
    if ((unsigned)outcome < KW_M_NWEBHOOK) add(SLOT(webhook_attempts) + outcome, 1);
}

void kw_metrics_capture_lost(uint64_t events) { add(SLOT(capture_lost), events); }

static _Atomic uint64_t webhook_backlog;

void kw_metrics_webhook_backlog(uint64_t rows)
{
    atomic_store_explicit(&webhook_backlog, rows, memory_order_relaxed);
}

void kw_metrics_read(kw_metrics_snapshot *out)
{
    uint64_t *sum = (uint64_t *)out;
    memset(out, 0, sizeof *out);
    for (size_t s = 0; s < SHARDS; s++)
        for (size_t i = 0; i < WORDS; i++)
            sum[i] += atomic_load_explicit(&shards[s].v[i], memory_order_relaxed);
    out->webhook_backlog = atomic_load_explicit(&webhook_backlog, memory_order_relaxed);
}
