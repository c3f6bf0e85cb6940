/* verifier_internal.h — the verifier's state, shared by its two halves
 * (internal): verify.c answers presented keys on request threads;
 * verifier.c owns the threads and the lifecycle that keep its cache, touch
 * ring and counters current.
 *
 * Key lifecycle: the verifier also holds this instance's rate limiter and
 * scope-usage table (one of each per process, like the cache). */
#ifndef KW_VERIFIER_INTERNAL_H
#define KW_VERIFIER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "keyward/auth.h"
#include "keyward/ratelimit.h"
#include "keyward/usage.h"
#include "keyward/vcache.h"
#include "auth/budget.h"
#include "auth/follow.h"

#define TOUCH_INTERVAL_US ((int64_t)3600 * 1000000)
/* Room for a burst of first uses while the drain catches up: about 200 KB. */
#define TOUCH_RING 4096
/* Touches taken off the ring per store call. */
#define TOUCH_BATCH 256
/* How often the maintenance thread reads the store's auth generation: the
 * bound on how long a revocation made by another process or instance can
 * go unnoticed by this one's cache. */
#define GENERATION_POLL_MS 200
#define CACHE_SLOTS (64 * 1024)
/* Even an untouched entry is re-read from the store after this long. */
#define CACHE_TTL_US ((int64_t)300 * 1000000)
#define RATE_SLOTS (64 * 1024)
#define USAGE_SLOTS (16 * 1024)
/* Scope usage reaches the store within this long (the report flushes
 * first, so it never waits for it). */
#define USAGE_FLUSH_MS 10000

struct kw_verifier {
    kw_store *store;
    kw_vcache *cache;
    kw_ratelimit *rate;
    kw_usage *usage;
    kw_budget *legacy_budget;  /* pbkdf2 checks of unknown legacy-length keys */
    _Atomic int64_t legacy_rows;
    _Atomic int64_t legacy_checked_at;  /* when legacy_rows was last read */
    _Atomic int64_t rolled_rows;        /* live previous values of rolled keys */
    _Atomic int64_t rolled_checked_at;  /* when rolled_rows was last read; 0 = re-read */
    kw_follow auth_log;                 /* where this cache is in the auth change log */
    _Atomic int64_t last_poll_ok;       /* last time the auth generation was read */
    /* When the first of the failed polls since the last good one failed;
     * 0 while the store answers (see kw_verifier_health). */
    _Atomic int64_t db_down_since;
    /* Told when db_down_since goes from 0 to set and back (see
     * kw_verifier_watch_db); static storage, set once. */
    _Atomic(const kw_db_watch *) db_watch;
    pthread_mutex_t lock;  /* guards the touch ring only */
    pthread_cond_t wake;
    /* Pending last_used_at writes: key id, kind (personal or secret: two
     * tables) and the time of use. */
    char ring[TOUCH_RING][KW_ID_LEN + 1];
    kw_key_kind ring_kind[TOUCH_RING];
    int64_t ring_time[TOUCH_RING];
    unsigned head, tail;
    int stopping;
    /* Rate-limit refusals to announce (kw_verifier_rate_notices); guarded
     * by lock, taken only on a key's first refusal in a minute. */
    kw_rate_notice notices[KW_RATE_NOTICES];
    size_t n_notices;
    uint64_t notices_dropped;
    void (*poll_hook)(void *);  /* guarded by lock; see kw_verifier_on_poll */
    void *poll_ctx;
    pthread_t thread;
    /* The notification listener (PostgreSQL): its own thread, so the touch
     * ring's condition variable and the database socket need no common
     * wait.  listen_wake interrupts its back-off sleep on free. */
    pthread_t listener;
    int has_listener;
    pthread_cond_t listen_wake;
    _Atomic int64_t grace_us;  /* see DEGRADED_GRACE_US */
    _Atomic uint64_t notifications;  /* for tests and the bench: how many woke us */
};

/* When the store cannot be reached, keys verified before the outage keep
 * working from the cache for this long after the last successful poll —
 * the bounded window in which a revocation made elsewhere could go unseen.
 * After it, cached answers are refused too and requests get 503. */
#define DEGRADED_GRACE_US ((int64_t)30 * 1000000)
/* A store whose last good poll is older than this is reported
 * unreachable even when no poll has failed yet: a poll stuck on a
 * silent network (10 poll periods). */
#define DB_STALE_US ((int64_t)2 * 1000000)
/* The listener's wait per call: the bound on how long kw_verifier_free
 * waits for it (a wait is not interruptible).  A timeout costs no query. */
#define LISTEN_WAIT_MS 100
/* Back-off between attempts to re-establish the notification session while
 * the database is unreachable (the 200 ms poll covers the gap). */
#define LISTEN_RETRY_MS 500

/* Queues a last_used_at write; 0 when the ring is full and it was
 * dropped, so the caller must not record the key as touched (its next
 * request then tries again). */
int kw_verifier_touch_later(kw_verifier *v, kw_key_kind kind, const char *id, int64_t now);

#endif
