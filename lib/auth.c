/* auth.c — verification of presented keys, and the principal helpers.
 *
 * The hot path: prefix and checksum are checked without I/O; the key's
 * SHA-256 is looked up in the verification cache (vcache.c) and only on a
 * miss in the store — one probe of the unique index on secure_value.
 * kw_verify_secret does the same for project secret keys (phs_), which
 * need no user lookup.  Cached answers are dropped at once by local writes
 * (kw_verifier_invalidate) and within GENERATION_POLL_MS of a write by
 * another process or instance (the store's auth generation, polled by the
 * maintenance thread).  Legacy pbkdf2 forms (keys imported from PostHog) cost two
 * PBKDF2 runs, so they are tried only for legacy-length keys and only while
 * the store still holds such rows; a match is rewritten as sha256 at once,
 * as PostHog does, so it is paid once per key.  Anyone can present a
 * made-up legacy-length key, so that work runs under its own budget
 * (budget.c: one at a time, per client address and in total); once spent
 * the answer is KW_VERIFY_BUSY at once, never a wait.
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
 * Key lifecycle (SPEC §6): the verifier also holds this instance's rate
 * limiter and scope-usage table (one of each per process, like the cache).
 * A cached principal carries expires_at and the rate limit, and expiry is
 * compared with kw_now() on every hit, so an entry cached a second before
 * its key expires cannot outlive it.  Scope usage is merged into the store
 * by the maintenance thread every USAGE_FLUSH_MS and once more on free.
 *
 * Roll with a grace period (SPEC §6): a value rolled away with
 * expire_previous_in_seconds stays in rolled_key_values until its window
 * ends.  After a miss of the key table that table is probed by the same
 * hash — only while live rows exist (rolled_rows_exist, like the legacy
 * check: re-read at most once a second, and at once after an auth write),
 * so the common miss path costs nothing extra.  A hit verifies as the key
 * itself; its principal's expires_at is min(key expiry, window end), so a
 * cached grace value cannot outlive its window.
 *
 * Cross-instance invalidation (SPEC §9): on PostgreSQL a listener thread
 * waits for the schema's NOTIFY and re-reads the generation at once
 * (milliseconds); the 200 ms poll remains, as the fallback while the
 * notification session is down and the only mechanism on SQLite. */
#include "keyward/auth.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyward/keyward.h"
#include "keyward/ratelimit.h"
#include "keyward/usage.h"
#include "keyward/vcache.h"
#include "budget.h"

#define TOUCH_INTERVAL_US ((int64_t)3600 * 1000000)
/* Room for a burst of first uses while the drain catches up: about 200 KB. */
#define TOUCH_RING 4096
/* Touches taken off the ring per store call. */
#define TOUCH_BATCH 256
#define LEGACY_SALT "posthog_personal_api_key"
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
    _Atomic int64_t last_generation;    /* the store's auth generation last read */
    _Atomic int64_t last_poll_ok;       /* last time the auth generation was read */
    pthread_mutex_t lock;  /* guards the touch ring only */
    pthread_cond_t wake;
    /* Pending last_used_at writes: key id, kind (personal or secret: two
     * tables) and the time of use. */
    char ring[TOUCH_RING][KW_ID_LEN + 1];
    kw_key_kind ring_kind[TOUCH_RING];
    int64_t ring_time[TOUCH_RING];
    unsigned head, tail;
    int stopping;
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
/* The listener's wait per call: the bound on how long kw_verifier_free
 * waits for it (a wait is not interruptible).  A timeout costs no query. */
#define LISTEN_WAIT_MS 100
/* Back-off between attempts to re-establish the notification session while
 * the database is unreachable (the 200 ms poll covers the gap). */
#define LISTEN_RETRY_MS 500

static void poll_generation(kw_verifier *v)
{
    int64_t generation;
    if (kw_store_auth_generation(v->store, &generation) == KW_OK) {
        kw_vcache_sync(v->cache, generation);
        /* A roll elsewhere may have left a previous value: look again. */
        if (atomic_exchange(&v->last_generation, generation) != generation)
            atomic_store(&v->rolled_checked_at, 0);
        atomic_store(&v->last_poll_ok, kw_now());
    }
    /* On failure keep the entries: everything cached was verified, and no
     * revocation can have been seen since (we could not read any). */
}

/* The maintenance thread: writes last_used_at touches and polls the auth
 * generation, so neither ever runs on a request thread. */
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
 * database announces a write, re-reads the generation at once, so another
 * instance's revocation drops this cache within milliseconds instead of at
 * the next GENERATION_POLL_MS poll.  The poll stays as the fallback while
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

/* Queues a last_used_at write; 0 when the ring is full and it was
 * dropped, so the caller must not record the key as touched (its next
 * request then tries again). */
static int touch_later(kw_verifier *v, kw_key_kind kind, const char *id, int64_t now)
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

int kw_verifier_new(kw_store *store, kw_verifier **out)
{
    kw_verifier *v = calloc(1, sizeof *v);
    if (!v) return KW_ERR_NOMEM;
    v->store = store;
    int64_t legacy = 0, generation = 0;
    int rc = kw_store_pkey_legacy_count(store, &legacy);
    if (!rc) rc = kw_store_auth_generation(store, &generation);
    if (!rc) rc = kw_vcache_new(CACHE_SLOTS, CACHE_TTL_US, &v->cache);
    if (!rc) rc = kw_ratelimit_new(RATE_SLOTS, &v->rate);
    if (!rc) rc = kw_usage_new(USAGE_SLOTS, &v->usage);
    if (!rc) rc = kw_budget_new(&v->legacy_budget);
    if (rc) {
        kw_budget_free(v->legacy_budget);
        kw_usage_free(v->usage);
        kw_ratelimit_free(v->rate);
        kw_vcache_free(v->cache);
        free(v);
        return rc;
    }
    kw_vcache_sync(v->cache, generation);
    atomic_store(&v->last_generation, generation);
    atomic_store(&v->last_poll_ok, kw_now());
    atomic_store(&v->legacy_rows, legacy);
    atomic_store(&v->grace_us, DEGRADED_GRACE_US);
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->wake, NULL);
    pthread_cond_init(&v->listen_wake, NULL);
    if (pthread_create(&v->thread, NULL, maintenance_thread, v)) {
        pthread_mutex_destroy(&v->lock);
        pthread_cond_destroy(&v->wake);
        pthread_cond_destroy(&v->listen_wake);
        kw_budget_free(v->legacy_budget);
        kw_usage_free(v->usage);
        kw_ratelimit_free(v->rate);
        kw_vcache_free(v->cache);
        free(v);
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
    pthread_mutex_destroy(&v->lock);
    pthread_cond_destroy(&v->wake);
    pthread_cond_destroy(&v->listen_wake);
    kw_budget_free(v->legacy_budget);
    kw_usage_free(v->usage);
    kw_ratelimit_free(v->rate);
    kw_vcache_free(v->cache);
    free(v);
}

void kw_verifier_set_grace(kw_verifier *v, int64_t grace_us)
{
    atomic_store(&v->grace_us, grace_us);
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
    if (!v || p->rate_limit_per_minute <= 0 || !p->key_id[0]) return 0;
    return kw_ratelimit_take(v->rate, p->key_id, p->rate_limit_per_minute, kw_now());
}

void kw_verifier_note_scope(kw_verifier *v, const kw_principal *p, const char *scope)
{
    int object;
    kw_scope_action action;
    if (!v || !scope || (p->kind != KW_KEY_PERSONAL && p->kind != KW_KEY_SECRET)) return;
    if (kw_scope_parse(scope, &object, &action)) return;
    kw_usage_note(v->usage, p->kind, p->key_id, object, action);
}

int kw_verifier_flush_usage(kw_verifier *v)
{
    return v ? kw_usage_flush(v->usage, v->store) : KW_OK;
}

/* Expiry is inclusive: a key is expired from the microsecond of its
 * expires_at on. */
static kw_verify_result live(const kw_principal *p)
{
    if (!p->expires_at || kw_now() < p->expires_at) return KW_VERIFY_OK;
    return p->grace_value ? KW_VERIFY_INVALID : KW_VERIFY_EXPIRED;
}

void kw_verifier_invalidate(kw_verifier *v)
{
    if (!v) return;
    kw_vcache_bump(v->cache);
    atomic_store(&v->rolled_checked_at, 0);  /* this write may have been a roll */
}

/* A cache hit: the principal as verified, and the hourly touch if due. */
static int from_cache(kw_verifier *v, const unsigned char *digest, kw_principal *out)
{
    int64_t last_used, now = kw_now();
    if (now - atomic_load_explicit(&v->last_poll_ok, memory_order_relaxed) >
        atomic_load_explicit(&v->grace_us, memory_order_relaxed))
        return 0;  /* store unreachable for too long: cached answers expire too */
    if (!kw_vcache_get(v->cache, digest, out, &last_used)) return 0;
    if ((!last_used || now - last_used >= TOUCH_INTERVAL_US) &&
        touch_later(v, out->kind, out->key_id, now))
        kw_vcache_touched(v->cache, digest, now);
    return 1;
}

/* Looks the key up by its legacy pbkdf2 forms; on a hit rewrites the row
 * as sha256 so the next verification is a plain probe. */
static int find_legacy(kw_verifier *v, const char *key, size_t len, kw_pkey *row)
{
    static const unsigned ITERATIONS[] = {260000, 390000};
    for (size_t i = 0; i < sizeof ITERATIONS / sizeof ITERATIONS[0]; i++) {
        char stored[KW_SECURE_MAX + 1];
        if (kw_key_hash_pbkdf2(key, len, ITERATIONS[i], LEGACY_SALT, stored, sizeof stored))
            return KW_ERR_CRYPTO;
        int rc = kw_store_pkey_by_hash(v->store, stored, row);
        if (rc == KW_ERR_NOTFOUND) continue;
        if (rc) return rc;
        if (kw_key_hash_verify(key, len, row->secure_value) != KW_HASH_MATCH_UPGRADE)
            return KW_ERR_NOTFOUND;
        char upgraded[KW_HASH_LEN + 1];
        if (!kw_key_hash(key, len, upgraded) &&
            !kw_store_pkey_rehash(v->store, row->id, stored, upgraded)) {
            strcpy(row->secure_value, upgraded);
            atomic_fetch_sub(&v->legacy_rows, 1);
        }
        return KW_OK;
    }
    return KW_ERR_NOTFOUND;
}

/* Whether any pbkdf2 rows exist, re-read at most once a second so rows
 * imported by another process are found soon, while a flood of made-up
 * legacy-length keys costs one indexed count a second, never PBKDF2 runs. */
static int legacy_rows_exist(kw_verifier *v)
{
    if (atomic_load_explicit(&v->legacy_rows, memory_order_relaxed) > 0) return 1;
    int64_t now = kw_now(), last = atomic_load(&v->legacy_checked_at);
    if (now - last < 1000000 || !atomic_compare_exchange_strong(&v->legacy_checked_at, &last, now))
        return 0;
    int64_t count = 0;
    if (kw_store_pkey_legacy_count(v->store, &count) == KW_OK) atomic_store(&v->legacy_rows, count);
    return count > 0;
}

/* Whether any previous value of a rolled key is live: re-read at most
 * once a second (and at once after an auth write, see rolled_checked_at),
 * so a miss costs no extra query while none is. */
static int rolled_rows_exist(kw_verifier *v)
{
    int64_t now = kw_now(), last = atomic_load(&v->rolled_checked_at);
    if ((last && now >= last && now - last < 1000000) ||
        !atomic_compare_exchange_strong(&v->rolled_checked_at, &last, now))
        return atomic_load_explicit(&v->rolled_rows, memory_order_relaxed) > 0;
    int64_t count = 0;
    if (kw_store_rolled_live(v->store, now, &count) == KW_OK) atomic_store(&v->rolled_rows, count);
    else atomic_store(&v->rolled_checked_at, 0);  /* not read: try again next time */
    return count > 0;
}

/* A previous value of a key of `kind`, still in its window: the key's
 * current hash into `current` and the window's end into *until. */
static int find_previous(kw_verifier *v, kw_key_kind kind, const char *hash,
                         char current[KW_SECURE_MAX + 1], int64_t *until)
{
    kw_key_kind found;
    int rc = kw_store_rolled_get(v->store, hash, &found, current, until);
    if (rc) return rc;
    return found == kind && kw_now() < *until ? KW_OK : KW_ERR_NOTFOUND;
}

/* Narrows a principal verified by a previous value to its window. */
static void grace_bound(kw_principal *p, int64_t until)
{
    if (!until || (p->expires_at && p->expires_at < until)) return;  /* the key ends first */
    p->expires_at = until;
    p->grace_value = 1;
}

kw_verify_result kw_verify_personal(kw_verifier *v, const char *key, size_t len, kw_principal *out)
{
    return kw_verify_personal_from(v, key, len, NULL, out);
}

kw_verify_result kw_verify_personal_from(kw_verifier *v, const char *key, size_t len,
                                         const char *client, kw_principal *out)
{
    if (kw_key_kind_of(key, len) != KW_KEY_PERSONAL) return KW_VERIFY_INVALID;
    unsigned char digest[32];
    if (kw_key_digest(key, len, digest)) return KW_VERIFY_UNAVAILABLE;
    /* Only keys that passed the format check below are ever cached, so a
     * hit skips it (its CRC32 showed in profiles of cached routes). */
    if (from_cache(v, digest, out)) return live(out);
    kw_key_info info;
    if (kw_key_classify(key, len, &info) == KW_FORMAT_INVALID || info.kind != KW_KEY_PERSONAL)
        return KW_VERIFY_INVALID;
    /* Read before the store: a revocation landing after this read makes
     * the put below a no-op, so a stale row is never cached. */
    uint64_t generation = kw_vcache_generation(v->cache);
    char hash[KW_HASH_LEN + 1];
    kw_key_hash_from_digest(digest, hash);
    /* 12 KiB of JSON list text: one buffer per thread, neither on the
     * server thread's stack nor allocated per request. */
    static _Thread_local kw_pkey row_buf;
    kw_pkey *row = &row_buf;
    kw_verify_result result = KW_VERIFY_INVALID;
    /* Key and owner in one statement; only a legacy (pbkdf2) match, found
     * after the plain probe missed, needs the user read on its own. */
    int active = 0;
    int64_t grace_until = 0;
    int rc = kw_store_pkey_auth_by_hash(v->store, hash, row, &active);
    if (rc == KW_ERR_NOTFOUND && rolled_rows_exist(v)) {
        char current[KW_SECURE_MAX + 1];
        rc = find_previous(v, KW_KEY_PERSONAL, hash, current, &grace_until);
        if (!rc) rc = kw_store_pkey_auth_by_hash(v->store, current, row, &active);
        if (rc) grace_until = 0;
    }
    if (rc == KW_ERR_NOTFOUND && info.format == KW_FORMAT_LEGACY && legacy_rows_exist(v)) {
        int wait = kw_budget_take(v->legacy_budget, client, kw_now());
        if (wait) {
            memset(out, 0, sizeof *out);
            out->retry_after = wait;
            return KW_VERIFY_BUSY;
        }
        rc = find_legacy(v, key, len, row);
        kw_budget_done(v->legacy_budget);
        kw_user user;
        if (!rc) rc = kw_store_user_get(v->store, row->user_id, &user);
        if (!rc) active = user.is_active;
    }
    if (rc) {
        result = rc == KW_ERR_NOTFOUND ? KW_VERIFY_INVALID : KW_VERIFY_UNAVAILABLE;
        goto done;
    }
    if (!active) goto done;
    memset(out, 0, sizeof *out);
    out->kind = KW_KEY_PERSONAL;
    out->user_id = row->user_id;
    strcpy(out->key_id, row->id);
    if (kw_principal_load_scopes(out, row->scopes, row->scoped_teams, row->scoped_orgs)) goto done;
    out->expires_at = row->expires_at;
    out->rate_limit_per_minute = row->rate_limit_per_minute;
    grace_bound(out, grace_until);
    int64_t now = kw_now(), last_used = row->last_used_at;
    /* Dropped (ring full): cache the stored value, so the next hit retries. */
    if ((!last_used || now - last_used >= TOUCH_INTERVAL_US) &&
        touch_later(v, KW_KEY_PERSONAL, row->id, now))
        last_used = now;
    kw_vcache_put(v->cache, digest, out, last_used, generation);
    result = live(out);
done:
    return result;
}

/* A project secret key belongs to its project: no user is looked up, so
 * it keeps working when its creator is deactivated or deleted.  No legacy
 * hash forms: PostHog stores phs_ keys as sha256 only. */
kw_verify_result kw_verify_secret(kw_verifier *v, const char *key, size_t len, kw_principal *out)
{
    if (kw_key_kind_of(key, len) != KW_KEY_SECRET) return KW_VERIFY_INVALID;
    unsigned char digest[32];
    if (kw_key_digest(key, len, digest)) return KW_VERIFY_UNAVAILABLE;
    if (from_cache(v, digest, out)) return out->kind == KW_KEY_SECRET ? live(out) : KW_VERIFY_INVALID;
    kw_key_info info;
    if (kw_key_classify(key, len, &info) == KW_FORMAT_INVALID || info.kind != KW_KEY_SECRET)
        return KW_VERIFY_INVALID;
    uint64_t generation = kw_vcache_generation(v->cache);
    char hash[KW_HASH_LEN + 1];
    kw_key_hash_from_digest(digest, hash);
    static _Thread_local kw_psk row;
    int64_t grace_until = 0;
    int rc = kw_store_psk_by_hash(v->store, hash, &row);
    if (rc == KW_ERR_NOTFOUND && rolled_rows_exist(v)) {
        char current[KW_SECURE_MAX + 1];
        rc = find_previous(v, KW_KEY_SECRET, hash, current, &grace_until);
        if (!rc) rc = kw_store_psk_by_hash(v->store, current, &row);
        if (rc) grace_until = 0;
    }
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_VERIFY_INVALID : KW_VERIFY_UNAVAILABLE;
    memset(out, 0, sizeof *out);
    out->kind = KW_KEY_SECRET;
    out->project_id = row.project_id;
    strcpy(out->key_id, row.id);
    kw_principal_load_scopes(out, row.scopes, NULL, NULL);
    out->expires_at = row.expires_at;
    out->rate_limit_per_minute = row.rate_limit_per_minute;
    grace_bound(out, grace_until);
    int64_t now = kw_now(), last_used = row.last_used_at;
    if ((!last_used || now - last_used >= TOUCH_INTERVAL_US) &&
        touch_later(v, KW_KEY_SECRET, row.id, now))
        last_used = now;
    kw_vcache_put(v->cache, digest, out, last_used, generation);
    return live(out);
}

/* The project token is public and a lookup returns only the project id,
 * so there is no hash table of its own: the same cache, keyed by the
 * token's SHA-256 (stored plain in projects.api_token, as PostHog does, so
 * the lookup is by value).  No last_used_at for project tokens. */
kw_verify_result kw_verify_project(kw_verifier *v, const char *token, size_t len, kw_principal *out)
{
    if (kw_key_kind_of(token, len) != KW_KEY_PROJECT) return KW_VERIFY_INVALID;
    unsigned char digest[32];
    if (kw_key_digest(token, len, digest)) return KW_VERIFY_UNAVAILABLE;
    int64_t last_used;
    if (kw_vcache_get(v->cache, digest, out, &last_used))
        return out->kind == KW_KEY_PROJECT ? KW_VERIFY_OK : KW_VERIFY_INVALID;
    kw_key_info info;
    if (kw_key_classify(token, len, &info) == KW_FORMAT_INVALID || info.kind != KW_KEY_PROJECT)
        return KW_VERIFY_INVALID;
    uint64_t generation = kw_vcache_generation(v->cache);
    char text[KW_KEY_MAX_LEN + 1];
    memcpy(text, token, len);
    text[len] = '\0';
    kw_project project;
    int rc = kw_store_project_by_token(v->store, text, &project);
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_VERIFY_INVALID : KW_VERIFY_UNAVAILABLE;
    memset(out, 0, sizeof *out);
    out->kind = KW_KEY_PROJECT;
    out->project_id = project.id;
    out->n_scoped_teams = out->n_scoped_orgs = -1;
    kw_vcache_put(v->cache, digest, out, 0, generation);
    return KW_VERIFY_OK;
}

void kw_principal_clear(kw_principal *p)
{
    p->kind = KW_KEY_NONE;
    p->session = 0;
    p->source = KW_SRC_HEADER;
    p->user_id = 0;
    p->key_id[0] = '\0';
    p->project_id = 0;
    memset(&p->scopes, 0, sizeof p->scopes);
    p->n_scoped_teams = p->n_scoped_orgs = -1;
    p->expires_at = 0;
    p->rate_limit_per_minute = 0;
    p->grace_value = 0;
    p->retry_after = 0;
}

int kw_principal_load_scopes(kw_principal *p, const char *scopes_json, const char *teams_json,
                             const char *orgs_json)
{
    memset(&p->scopes, 0, sizeof p->scopes);
    p->n_scoped_teams = -1;
    p->n_scoped_orgs = -1;
    json_t *list;
    size_t i;
    json_t *item;
    /* A NULL or unreadable scopes list grants nothing (SPEC §3). Unknown
     * names in stored rows are ignored rather than widening access. */
    if (scopes_json && *scopes_json && (list = json_loads(scopes_json, 0, NULL))) {
        json_array_foreach(list, i, item)
            if (json_is_string(item)) kw_scopes_add(&p->scopes, json_string_value(item));
        json_decref(list);
    }
    if (teams_json && *teams_json && (list = json_loads(teams_json, 0, NULL))) {
        if (json_is_array(list) && json_array_size(list) > 0) {
            p->n_scoped_teams = 0;
            json_array_foreach(list, i, item)
                if (json_is_integer(item) && p->n_scoped_teams < KW_MAX_SCOPED)
                    p->scoped_teams[p->n_scoped_teams++] = json_integer_value(item);
        }
        json_decref(list);
    }
    if (orgs_json && *orgs_json && (list = json_loads(orgs_json, 0, NULL))) {
        if (json_is_array(list) && json_array_size(list) > 0) {
            p->n_scoped_orgs = 0;
            json_array_foreach(list, i, item)
                if (json_is_string(item) && json_string_length(item) <= KW_ID_LEN &&
                    p->n_scoped_orgs < KW_MAX_SCOPED)
                    strcpy(p->scoped_orgs[p->n_scoped_orgs++], json_string_value(item));
        }
        json_decref(list);
    }
    return KW_OK;
}

int kw_principal_team_allowed(const kw_principal *p, int64_t project_id)
{
    if (p->n_scoped_teams < 0) return 1;
    for (int i = 0; i < p->n_scoped_teams; i++)
        if (p->scoped_teams[i] == project_id) return 1;
    return 0;
}

int kw_principal_org_allowed(const kw_principal *p, const char *org_id)
{
    if (p->n_scoped_orgs < 0) return 1;
    for (int i = 0; i < p->n_scoped_orgs; i++)
        if (strcmp(p->scoped_orgs[i], org_id) == 0) return 1;
    return 0;
}
