/* verifier.c — the verifier's threads and lifecycle.
 *
 * Cached answers are forgotten per key: the store logs what each write
 * changed (a key, a user's keys, a project's token and secret keys), and
 * the verifier follows that log (follow.c) — at once after a local write
 * (kw_verifier_invalidate) and within GENERATION_POLL_MS of a write by
 * another process or instance (the maintenance thread polls the auth
 * generation and reads the log only when it moved).  An unrelated write
 * never drops a key's entry, so a key verified shortly before the store
 * goes down keeps its degraded-mode grace.  Everything is dropped only
 * when the log cannot tell what changed (see follow.h).
 *
 * last_used_at: PostHog writes it on use, at most hourly.  A request never
 * waits for that write: it is handed to the maintenance thread through a
 * ring (TOUCH_RING entries), which writes up to TOUCH_BATCH of them per
 * statement (kw_store_key_touch_many: one round trip per key kind on
 * PostgreSQL, one transaction on SQLite), so a burst of first uses drains
 * quickly.  If the ring is still full the touch is dropped, which bounds
 * memory and never blocks — but then the key is NOT recorded as touched
 * (the cache keeps its old last_used), so its next request queues the
 * touch again instead of waiting an hour: admins read last_used_at to find
 * unused keys, and a used key must not stay "never used".
 *
 * Scope usage is merged into the store by the maintenance thread every
 * USAGE_FLUSH_MS and once more on free.
 *
 * Cross-instance invalidation: on PostgreSQL a listener thread waits for
 * the schema's NOTIFY and catches up with the log at once (milliseconds);
 * the 200 ms poll remains, as the fallback while the notification session
 * is down and the only mechanism on SQLite.  A lost notification loses
 * nothing: the next poll reads every change since the last one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyward/keyward.h"
#include "auth/verifier_internal.h"

/* One change from the store's log: forget what it names. */
static void forget_change(void *ctx, const kw_change *ch)
{
    kw_verifier *v = ctx;
    if (!strcmp(ch->kind, "personal") || !strcmp(ch->kind, "secret"))
        kw_vcache_forget_key(v->cache, ch->ref);
    else if (!strcmp(ch->kind, "user"))
        kw_vcache_forget_user(v->cache, strtoll(ch->ref, NULL, 10));
    else if (!strcmp(ch->kind, "project"))
        kw_vcache_forget_project(v->cache, strtoll(ch->ref, NULL, 10));
    else
        kw_vcache_bump(v->cache);  /* a kind this version does not know */
}

static void forget_all(void *ctx) { kw_vcache_bump(((kw_verifier *)ctx)->cache); }

static const kw_follow_ops AUTH_LOG = {forget_change, forget_all};

/* Records whether the last poll reached the store; the first failure after
 * a success (and the first success after failures) is told to the watch,
 * once: the exchange picks one thread when several poll at once. */
static void note_db_state(kw_verifier *v, int ok)
{
    int64_t since;
    if (ok) {
        since = atomic_exchange(&v->db_down_since, 0);
        if (!since) return;
    } else {
        int64_t none = 0, now = kw_now();
        if (!atomic_compare_exchange_strong(&v->db_down_since, &none, now ? now : 1)) return;
        since = now;
    }
    const kw_db_watch *w = atomic_load(&v->db_watch);
    if (w && w->fn) w->fn(w->ctx, ok, since);
}

/* Catches up with the auth change log.  On failure keeps the entries:
 * everything cached was verified, and no revocation can have been seen
 * since (we could not read any); the next poll reads what was missed. */
static int poll_generation(kw_verifier *v)
{
    int rc = kw_follow_poll(&v->auth_log, v->store, &AUTH_LOG, v);
    if (rc < 0) {
        note_db_state(v, 0);
        return rc;
    }
    /* A roll elsewhere may have left a previous value: look again. */
    if (rc == 1) atomic_store(&v->rolled_checked_at, 0);
    atomic_store(&v->last_poll_ok, kw_now());
    note_db_state(v, 1);
    return KW_OK;
}

/* The maintenance thread: writes last_used_at touches and polls the auth
 * generation, so neither ever runs on a request thread (only a write's
 * own catch-up with the log does, on its request thread, after its
 * commit: kw_verifier_invalidate). */
static void *maintenance_thread(void *arg)
{
    kw_verifier *v = arg;
    /* A batch taken off the ring, so the store call runs without the lock
     * (about 10 KB of stack). */
    char ids[TOUCH_BATCH][KW_ID_LEN + 1];
    kw_key_touch batch[TOUCH_BATCH];
    int64_t next_poll = 0, next_flush = kw_now() + USAGE_FLUSH_MS * 1000;
    pthread_mutex_lock(&v->lock);
    for (;;) {
        while (v->head == v->tail && !v->stopping) {
            int64_t now = kw_now();
            if (now >= next_poll) {
                void (*hook)(void *) = v->poll_hook;
                void *hook_ctx = v->poll_ctx;
                pthread_mutex_unlock(&v->lock);
                poll_generation(v);
                if (hook) hook(hook_ctx);
                pthread_mutex_lock(&v->lock);
                next_poll = now + GENERATION_POLL_MS * 1000;
                if (now >= next_flush || now < next_flush - USAGE_FLUSH_MS * 1000) {
                    pthread_mutex_unlock(&v->lock);
                    kw_usage_flush(v->usage, v->store);
                    pthread_mutex_lock(&v->lock);
                    next_flush = now + USAGE_FLUSH_MS * 1000;
                }
                continue;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += GENERATION_POLL_MS * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&v->wake, &v->lock, &until);
            if (kw_now() < next_poll) next_poll = 0;  /* a pinned test clock: poll anyway */
        }
        if (v->head == v->tail) break;  /* stopping and drained */
        size_t n = 0;
        while (n < TOUCH_BATCH && v->head != v->tail) {
            unsigned slot = v->tail++ % TOUCH_RING;
            memcpy(ids[n], v->ring[slot], sizeof ids[n]);
            batch[n] = (kw_key_touch){v->ring_kind[slot], ids[n], v->ring_time[slot]};
            n++;
        }
        pthread_mutex_unlock(&v->lock);
        /* A failed write (store unreachable) is not retried here: those
         * keys are marked touched in the cache, but the entry is re-read
         * from the store within CACHE_TTL_US, still showing the old value,
         * and the next use queues the touch again. */
        kw_store_key_touch_many(v->store, batch, n, TOUCH_INTERVAL_US);
        pthread_mutex_lock(&v->lock);
    }
    pthread_mutex_unlock(&v->lock);
    return NULL;
}

/* Runs the flag-cache hook: on the maintenance thread at every poll, and
 * on the listener when flags were notified (kw_flagcache_poll is safe to
 * run from two threads: a race costs an extra cache drop, never a miss). */
static void run_hook(kw_verifier *v)
{
    pthread_mutex_lock(&v->lock);
    void (*hook)(void *) = v->poll_hook;
    void *hook_ctx = v->poll_ctx;
    pthread_mutex_unlock(&v->lock);
    if (hook) hook(hook_ctx);
}

/* The notification listener: blocks in kw_store_wait_change and, when the
 * database announces a write, catches up with the change log at once, so
 * another instance's revocation reaches this cache within milliseconds
 * instead of at the next GENERATION_POLL_MS poll.  The poll stays as the fallback while
 * the notification session is down (and for backends without one: SQLite
 * answers KW_ERR_UNSUPPORTED and the thread ends). */
static void *listener_thread(void *arg)
{
    kw_verifier *v = arg;
    for (;;) {
        pthread_mutex_lock(&v->lock);
        int stop = v->stopping;
        pthread_mutex_unlock(&v->lock);
        if (stop) break;
        int what = 0;
        int rc = kw_store_wait_change(v->store, LISTEN_WAIT_MS, &what);
        if (rc == KW_ERR_UNSUPPORTED) break;
        if (rc) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += LISTEN_RETRY_MS * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            pthread_mutex_lock(&v->lock);
            if (!v->stopping) pthread_cond_timedwait(&v->listen_wake, &v->lock, &until);
            pthread_mutex_unlock(&v->lock);
            continue;
        }
        if (!what) continue;
        atomic_fetch_add_explicit(&v->notifications, 1, memory_order_relaxed);
        if (what & KW_CHANGE_AUTH) poll_generation(v);
        if (what & KW_CHANGE_FLAGS) run_hook(v);
    }
    return NULL;
}

/* See verifier_internal.h. */
int kw_verifier_touch_later(kw_verifier *v, kw_key_kind kind, const char *id, int64_t now)
{
    int queued = 0;
    pthread_mutex_lock(&v->lock);
    if (v->head - v->tail < TOUCH_RING) {
        unsigned slot = v->head++ % TOUCH_RING;
        strcpy(v->ring[slot], id);
        v->ring_kind[slot] = kind;
        v->ring_time[slot] = now;
        pthread_cond_signal(&v->wake);
        queued = 1;
    }
    pthread_mutex_unlock(&v->lock);
    return queued;
}

/* Frees what kw_verifier_new allocates (each free accepts NULL), with the
 * synchronization objects when `sync` says they were made. */
static void verifier_release(kw_verifier *v, int sync)
{
    if (sync) {
        pthread_mutex_destroy(&v->lock);
        pthread_cond_destroy(&v->wake);
        pthread_cond_destroy(&v->listen_wake);
    }
    kw_follow_destroy(&v->auth_log);
    kw_budget_free(v->legacy_budget);
    kw_usage_free(v->usage);
    kw_ratelimit_free(v->rate);
    kw_vcache_free(v->cache);
    free(v);
}

int kw_verifier_new(kw_store *store, kw_verifier **out)
{
    kw_verifier *v = calloc(1, sizeof *v);
    if (!v) return KW_ERR_NOMEM;
    v->store = store;
    int64_t legacy = 0;
    kw_follow_init(&v->auth_log, KW_CHANGE_AUTH);
    int rc = kw_store_pkey_legacy_count(store, &legacy);
    if (!rc) rc = kw_vcache_new(CACHE_SLOTS, CACHE_TTL_US, &v->cache);
    if (!rc) rc = kw_ratelimit_new(RATE_SLOTS, &v->rate);
    if (!rc) rc = kw_usage_new(USAGE_SLOTS, &v->usage);
    if (!rc) rc = kw_budget_new(&v->legacy_budget);
    if (!rc) rc = poll_generation(v);  /* where this cache starts in the log */
    if (rc) {
        verifier_release(v, 0);
        return rc;
    }
    atomic_store(&v->legacy_rows, legacy);
    atomic_store(&v->grace_us, DEGRADED_GRACE_US);
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->wake, NULL);
    pthread_cond_init(&v->listen_wake, NULL);
    if (pthread_create(&v->thread, NULL, maintenance_thread, v)) {
        verifier_release(v, 1);
        return KW_ERR_NOMEM;
    }
    /* Without a listener the poll alone keeps the 1 s bound: not fatal. */
    v->has_listener = pthread_create(&v->listener, NULL, listener_thread, v) == 0;
    *out = v;
    return KW_OK;
}

void kw_verifier_free(kw_verifier *v)
{
    if (!v) return;
    pthread_mutex_lock(&v->lock);
    v->stopping = 1;
    pthread_cond_signal(&v->wake);
    pthread_cond_signal(&v->listen_wake);
    pthread_mutex_unlock(&v->lock);
    pthread_join(v->thread, NULL);
    if (v->has_listener) pthread_join(v->listener, NULL);
    kw_usage_flush(v->usage, v->store);  /* the last notes of this process */
    verifier_release(v, 1);
}

void kw_verifier_set_grace(kw_verifier *v, int64_t grace_us)
{
    atomic_store(&v->grace_us, grace_us);
}

void kw_verifier_health_read(kw_verifier *v, kw_verifier_health *out)
{
    int64_t now = kw_now();
    int64_t last = atomic_load_explicit(&v->last_poll_ok, memory_order_relaxed);
    int64_t down = atomic_load_explicit(&v->db_down_since, memory_order_relaxed);
    int64_t grace = atomic_load_explicit(&v->grace_us, memory_order_relaxed);
    int64_t since = now > last ? now - last : 0;
    out->since_contact_us = since;
    out->grace_us = grace;
    out->db_reachable = !down && since <= DB_STALE_US;
    out->down_for_us = 0;
    if (!out->db_reachable) {
        /* Stuck rather than failing: count from the last good poll. */
        int64_t from = down ? down : last;
        out->down_for_us = now > from ? now - from : 0;
    }
    out->grace_remaining_us = grace > since ? grace - since : 0;
}

void kw_verifier_watch_db(kw_verifier *v, const kw_db_watch *watch)
{
    atomic_store(&v->db_watch, watch);
}

uint64_t kw_verifier_notifications(kw_verifier *v)
{
    return atomic_load_explicit(&v->notifications, memory_order_relaxed);
}

void kw_verifier_on_poll(kw_verifier *v, void (*fn)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&v->lock);
    v->poll_hook = fn;
    v->poll_ctx = ctx;
    pthread_mutex_unlock(&v->lock);
}

int kw_verifier_rate_take(kw_verifier *v, const kw_principal *p)
{
    return kw_verifier_rate_take_at(v, p, kw_now());
}

int kw_verifier_rate_take_at(kw_verifier *v, const kw_principal *p, kw_time now)
{
    if (!v || p->rate_limit_per_minute <= 0 || !p->key_id[0]) return 0;
    int first = 0;
    int wait = kw_ratelimit_take_noting(v->rate, p->key_id, p->rate_limit_per_minute, now, &first);
    if (!first) return wait;
    pthread_mutex_lock(&v->lock);
    if (v->n_notices < KW_RATE_NOTICES) {
        kw_rate_notice *n = &v->notices[v->n_notices++];
        memset(n, 0, sizeof *n);
        n->kind = p->kind;
        snprintf(n->key_id, sizeof n->key_id, "%s", p->key_id);
        n->user_id = p->user_id;
        n->project_id = p->project_id;
        n->per_minute = p->rate_limit_per_minute;
        n->at = now;
    } else {
        v->notices_dropped++;
    }
    pthread_mutex_unlock(&v->lock);
    return wait;
}

size_t kw_verifier_rate_notices(kw_verifier *v, kw_rate_notice *out, size_t max, uint64_t *dropped)
{
    pthread_mutex_lock(&v->lock);
    size_t n = v->n_notices < max ? v->n_notices : max;
    memcpy(out, v->notices, n * sizeof *out);
    memmove(v->notices, v->notices + n, (v->n_notices - n) * sizeof *out);
    v->n_notices -= n;
    if (dropped) *dropped = v->notices_dropped;
    pthread_mutex_unlock(&v->lock);
    return n;
}

void kw_verifier_note_scope(kw_verifier *v, const kw_principal *p, int object,
                            kw_scope_action action)
{
    if (!v || (p->kind != KW_KEY_PERSONAL && p->kind != KW_KEY_SECRET)) return;
    kw_usage_note(v->usage, p->kind, p->key_id, object, action);
}

int kw_verifier_flush_usage(kw_verifier *v)
{
    return v ? kw_usage_flush(v->usage, v->store) : KW_OK;
}

/* After a local write: learn from the log exactly what it changed, so an
 * unrelated key keeps its entry.  If the log cannot be read right after
 * the commit, nothing tells what changed: drop everything. */
void kw_verifier_invalidate(kw_verifier *v)
{
    if (!v) return;
    if (poll_generation(v)) kw_vcache_bump(v->cache);
    atomic_store(&v->rolled_checked_at, 0);  /* this write may have been a roll */
}

void kw_verifier_drop_cache(kw_verifier *v)
{
    if (!v) return;
    kw_vcache_bump(v->cache);
    atomic_store(&v->rolled_checked_at, 0);
}
