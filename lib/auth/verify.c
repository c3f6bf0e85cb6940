/* verify.c — the hot path: a presented key to a principal.
 *
 * Prefix and checksum are checked without I/O; the key's SHA-256 is looked
 * up in the verification cache (vcache.c, which compares digests in
 * constant time) and only on a miss in the store — one probe of the unique
 * index on secure_value.  kw_verify_secret does the same for project secret
 * keys (phs_), which need no user lookup.  Legacy pbkdf2 forms (keys
 * imported from PostHog) cost two PBKDF2 runs, so they are tried only for
 * legacy-length keys and only while the store still holds such rows; a
 * match is rewritten as sha256 at once, as PostHog does, so it is paid once
 * per key.  Anyone can present a made-up legacy-length key, so that work
 * runs under its own budget (budget.c: one at a time, per client address
 * and in total); once spent the answer is KW_VERIFY_BUSY at once, never a
 * wait.  kw_verify_personal_begin stops before the PBKDF2 runs, so a server
 * can run them off its request threads (kw_verify_personal_legacy).
 *
 * A cached principal carries expires_at and the rate limit, and expiry is
 * compared with kw_now() on every hit, so an entry cached a second before
 * its key expires cannot outlive it.
 *
 * Roll with a grace period: a value rolled away with
 * expire_previous_in_seconds stays in rolled_key_values until its window
 * ends.  After a miss of the key table that table is probed by the same
 * hash — only while live rows exist (rolled_rows_exist, like the legacy
 * check: re-read at most once a second, and at once after an auth write),
 * so the common miss path costs nothing extra.  A hit verifies as the key
 * itself; its principal's expires_at is min(key expiry, window end), so a
 * cached grace value cannot outlive its window.
 *
 * A request never waits for last_used_at: a due touch is queued for the
 * maintenance thread (verifier.c). */
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/metrics.h"
#include "auth/verifier_internal.h"

/* Expiry is inclusive: a key is expired from the microsecond of its
 * expires_at on (`now`: kw_now()). */
static kw_verify_result live_at(const kw_principal *p, int64_t now)
{
    if (!p->expires_at || now < p->expires_at) return KW_VERIFY_OK;
    return p->grace_value ? KW_VERIFY_INVALID : KW_VERIFY_EXPIRED;
}

static kw_verify_result live(const kw_principal *p) { return live_at(p, kw_now()); }

/* Whether cached answers may be used at `now`: only while the store's
 * change log was read within the grace.  Past it (the database is down)
 * this instance cannot learn of revocations, so every kind of credential
 * goes back to the store, which then fails: 503, never a stale yes. */
static int cache_trusted(kw_verifier *v, int64_t now)
{
    return now - atomic_load_explicit(&v->last_poll_ok, memory_order_relaxed) <=
           atomic_load_explicit(&v->grace_us, memory_order_relaxed);
}

/* A cache hit: the principal as verified, and the hourly touch if due.
 * Counted as a hit or a miss of `mk`'s cache (metrics).  One clock reading,
 * `now`, serves the grace, the cache's ttl, the touch and the caller's
 * expiry check: a reading costs ~26 ns on a KVM guest's clock, a good part
 * of a hit. */
static int from_cache(kw_verifier *v, const unsigned char *digest, int64_t now, kw_principal *out,
                      enum kw_m_kind mk)
{
    int64_t last_used;
    if (!cache_trusted(v, now) || !kw_vcache_get(v->cache, digest, now, out, &last_used)) {
        /* Past the grace, cached answers expire too: a miss. */
        kw_metrics_cache(mk, 0);
        return 0;
    }
    kw_metrics_cache(mk, 1);
    if ((!last_used || now - last_used >= TOUCH_INTERVAL_US) &&
        kw_verifier_touch_later(v, out->kind, out->key_id, now))
        kw_vcache_touched(v->cache, digest, now);
    return 1;
}

/* Looks the key up by its legacy pbkdf2 forms; on a hit rewrites the row
 * as sha256 so the next verification is a plain probe. */
static int find_legacy(kw_verifier *v, const char *key, size_t len, kw_pkey *row)
{
    for (int i = 0; i < KW_LEGACY_FORMS; i++) {
        char stored[KW_SECURE_MAX + 1];
        if (kw_key_legacy_form(key, len, i, stored, sizeof stored)) return KW_ERR_CRYPTO;
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

/* Whether any pbkdf2 rows exist, re-read at most once a second — whether
 * there were some or not: rows imported by another process are found
 * soon, and once the last is gone (revoked, deleted, rewritten as sha256)
 * made-up legacy-length keys stop costing PBKDF2 runs, while a flood of
 * them costs one indexed count a second. */
static int legacy_rows_exist(kw_verifier *v)
{
    int64_t now = kw_now(), last = atomic_load(&v->legacy_checked_at);
    if (now - last >= 1000000 && atomic_compare_exchange_strong(&v->legacy_checked_at, &last, now)) {
        int64_t count = 0;
        if (kw_store_pkey_legacy_count(v->store, &count) == KW_OK)
            atomic_store(&v->legacy_rows, count);
    }
    return atomic_load_explicit(&v->legacy_rows, memory_order_relaxed) > 0;
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

static enum kw_m_result metric_of(kw_verify_result r)
{
    switch (r) {
    case KW_VERIFY_OK: return KW_M_OK;
    case KW_VERIFY_INVALID: return KW_M_INVALID;
    case KW_VERIFY_EXPIRED: return KW_M_EXPIRED;
    case KW_VERIFY_UNAVAILABLE: return KW_M_UNAVAILABLE;
    case KW_VERIFY_BUSY: return KW_M_BUSY;
    case KW_VERIFY_SLOW: break;
    }
    return KW_M_INVALID;
}

/* Every verification is counted by kind and result, with its latency:
 * the public entry points below wrap the work in these lines.  One clock
 * reading, `now`, starts the latency and is the time the verification
 * checks expiry, the cache's ttl and the grace against; it is kept in
 * out->verified_at, so the rate limit and the flag cache after it need no
 * reading of their own (a reading costs ~20-26 ns on a KVM guest, a good
 * part of a cache hit).  The wall clock, not a monotonic one, times it:
 * a step of the clock gives one wrong sample (a negative one counts as 0). */
#define COUNTED(kind, call)                                                                  \
    do {                                                                                     \
        int64_t now = kw_now();                                                              \
        kw_verify_result r_ = (call);                                                        \
        out->verified_at = now;                                                              \
        if (r_ != KW_VERIFY_SLOW) { /* counted when the legacy check ends */                 \
            int64_t us_ = kw_now() - now;                                                    \
            kw_metrics_verification((kind), metric_of(r_), us_ > 0 ? (uint64_t)us_ * 1000 : 0); \
        }                                                                                    \
        return r_;                                                                           \
    } while (0)

static kw_verify_result verify_personal(kw_verifier *v, const char *key, size_t len,
                                        const char *client, int64_t now, kw_principal *out);
static kw_verify_result verify_legacy(kw_verifier *v, const char *key, size_t len,
                                      kw_principal *out);
static kw_verify_result verify_secret(kw_verifier *v, const char *key, size_t len, int64_t now,
                                      kw_principal *out);
static kw_verify_result verify_project(kw_verifier *v, const char *token, size_t len,
                                       int64_t now, kw_principal *out);

kw_verify_result kw_verify_personal(kw_verifier *v, const char *key, size_t len, kw_principal *out)
{
    return kw_verify_personal_from(v, key, len, NULL, out);
}

kw_verify_result kw_verify_personal_from(kw_verifier *v, const char *key, size_t len,
                                         const char *client, kw_principal *out)
{
    kw_verify_result r = kw_verify_personal_begin(v, key, len, client, out);
    return r == KW_VERIFY_SLOW ? kw_verify_personal_legacy(v, key, len, out) : r;
}

kw_verify_result kw_verify_personal_begin(kw_verifier *v, const char *key, size_t len,
                                          const char *client, kw_principal *out)
{
    COUNTED(KW_M_PERSONAL, verify_personal(v, key, len, client, now, out));
}

kw_verify_result kw_verify_personal_legacy(kw_verifier *v, const char *key, size_t len,
                                           kw_principal *out)
{
    COUNTED(KW_M_PERSONAL, verify_legacy(v, key, len, out));
}

kw_verify_result kw_verify_secret(kw_verifier *v, const char *key, size_t len, kw_principal *out)
{
    COUNTED(KW_M_SECRET, verify_secret(v, key, len, now, out));
}

kw_verify_result kw_verify_project(kw_verifier *v, const char *token, size_t len, kw_principal *out)
{
    COUNTED(KW_M_PROJECT, verify_project(v, token, len, now, out));
}

/* A found personal-key row to a principal: the owner must be active; the
 * answer is cached under the key's digest unless a revocation landed after
 * `ticket` was taken. */
static kw_verify_result personal_found(kw_verifier *v, const unsigned char *digest,
                                       uint64_t ticket, const kw_pkey *row, int active,
                                       int64_t grace_until, kw_principal *out)
{
    if (!active) return KW_VERIFY_INVALID;
    memset(out, 0, sizeof *out);
    out->kind = KW_KEY_PERSONAL;
    out->user_id = row->user_id;
    strcpy(out->key_id, row->id);
    if (kw_principal_load_scopes(out, row->scopes, row->scoped_teams, row->scoped_orgs))
        return KW_VERIFY_INVALID;
    out->expires_at = row->expires_at;
    out->rate_limit_per_minute = row->rate_limit_per_minute;
    grace_bound(out, grace_until);
    int64_t now = kw_now(), last_used = row->last_used_at;
    /* Dropped (ring full): cache the stored value, so the next hit retries. */
    if ((!last_used || now - last_used >= TOUCH_INTERVAL_US) &&
        kw_verifier_touch_later(v, KW_KEY_PERSONAL, row->id, now))
        last_used = now;
    kw_vcache_put(v->cache, digest, out, last_used, ticket);
    return live(out);
}

static kw_verify_result from_store_rc(int rc)
{
    return rc == KW_ERR_NOTFOUND ? KW_VERIFY_INVALID : KW_VERIFY_UNAVAILABLE;
}

/* 12 KiB of JSON list text: one buffer per thread, neither on the server
 * thread's stack nor allocated per request. */
static _Thread_local kw_pkey personal_row;

static kw_verify_result verify_personal(kw_verifier *v, const char *key, size_t len,
                                        const char *client, int64_t now, kw_principal *out)
{
    if (kw_key_kind_of(key, len) != KW_KEY_PERSONAL) return KW_VERIFY_INVALID;
    unsigned char digest[32];
    if (kw_key_digest(key, len, digest)) return KW_VERIFY_UNAVAILABLE;
    /* Only keys that passed the format check below are ever cached, so a
     * hit skips it (its CRC32 showed in profiles of cached routes). */
    if (from_cache(v, digest, now, out, KW_M_PERSONAL)) return live_at(out, now);
    kw_key_info info;
    if (kw_key_classify(key, len, &info) == KW_FORMAT_INVALID || info.kind != KW_KEY_PERSONAL)
        return KW_VERIFY_INVALID;
    /* Taken before the store: a revocation landing after it makes the put
     * below a no-op, so a stale row is never cached. */
    uint64_t ticket = kw_vcache_ticket(v->cache);
    char hash[KW_HASH_LEN + 1];
    kw_key_hash_from_digest(digest, hash);
    kw_pkey *row = &personal_row;
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
        return KW_VERIFY_SLOW;  /* the caller runs kw_verify_personal_legacy */
    }
    if (rc) return from_store_rc(rc);
    return personal_found(v, digest, ticket, row, active, grace_until, out);
}

/* The legacy (pbkdf2) check verify_personal left to its caller, with the
 * budget it took: released here whatever the answer. */
static kw_verify_result verify_legacy(kw_verifier *v, const char *key, size_t len,
                                      kw_principal *out)
{
    unsigned char digest[32];
    kw_pkey *row = &personal_row;
    uint64_t ticket = kw_vcache_ticket(v->cache);
    int rc = kw_key_digest(key, len, digest) ? KW_ERR_CRYPTO : find_legacy(v, key, len, row);
    kw_budget_done(v->legacy_budget);
    kw_user user;
    if (!rc) rc = kw_store_user_get(v->store, row->user_id, &user);
    if (rc) return from_store_rc(rc);
    return personal_found(v, digest, ticket, row, user.is_active, 0, out);
}

kw_verify_result kw_verify_legacy_forms(kw_verifier *v, const char *key, size_t len,
                                        const char *client, kw_legacy_forms *out,
                                        int *retry_after)
{
    *retry_after = 0;
    if (!legacy_rows_exist(v)) return KW_VERIFY_INVALID;
    int wait = kw_budget_take(v->legacy_budget, client, kw_now());
    if (wait) {
        *retry_after = wait;
        return KW_VERIFY_BUSY;
    }
    int rc = kw_key_legacy_forms(key, len, out);
    kw_budget_done(v->legacy_budget);
    return rc ? KW_VERIFY_UNAVAILABLE : KW_VERIFY_OK;
}

/* A project secret key belongs to its project: no user is looked up, so
 * it keeps working when its creator is deactivated or deleted.  No legacy
 * hash forms: PostHog stores phs_ keys as sha256 only. */
static kw_verify_result verify_secret(kw_verifier *v, const char *key, size_t len, int64_t now,
                                      kw_principal *out)
{
    if (kw_key_kind_of(key, len) != KW_KEY_SECRET) return KW_VERIFY_INVALID;
    unsigned char digest[32];
    if (kw_key_digest(key, len, digest)) return KW_VERIFY_UNAVAILABLE;
    if (from_cache(v, digest, now, out, KW_M_SECRET))
        return out->kind == KW_KEY_SECRET ? live_at(out, now) : KW_VERIFY_INVALID;
    kw_key_info info;
    if (kw_key_classify(key, len, &info) == KW_FORMAT_INVALID || info.kind != KW_KEY_SECRET)
        return KW_VERIFY_INVALID;
    uint64_t ticket = kw_vcache_ticket(v->cache);
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
    int64_t last_used = row.last_used_at;
    now = kw_now();  /* after the store's round trip */
    if ((!last_used || now - last_used >= TOUCH_INTERVAL_US) &&
        kw_verifier_touch_later(v, KW_KEY_SECRET, row.id, now))
        last_used = now;
    kw_vcache_put(v->cache, digest, out, last_used, ticket);
    return live_at(out, now);
}

/* A project token (phc_) is public — shipped in every web page, stored as
 * is — and every capture and flag request carries one, most of them the
 * same few.  Its digest (the verification cache's key) is a pure function
 * of it, so each thread remembers the last few tokens' digests: a repeat
 * skips the SHA-256 and nothing else (the cache lookup, and with it every
 * revocation, is unchanged).  Only public tokens are kept: a secret key's
 * text never outlives its request. */
#define TOKEN_MEMO_SLOTS 16
struct token_memo {
    size_t len;  /* 0 = empty */
    char text[KW_KEY_MAX_LEN];
    unsigned char digest[32];
};
static _Thread_local struct token_memo token_memo[TOKEN_MEMO_SLOTS];

static int project_token_digest(const char *token, size_t len, unsigned char digest[32])
{
    if (len > KW_KEY_MAX_LEN) return kw_key_digest(token, len, digest);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)token[i]) * 16777619u;
    struct token_memo *m = &token_memo[h % TOKEN_MEMO_SLOTS];
    if (m->len == len && memcmp(m->text, token, len) == 0) {
        memcpy(digest, m->digest, 32);
        return KW_OK;
    }
    int rc = kw_key_digest(token, len, digest);
    if (rc) return rc;
    m->len = len;
    memcpy(m->text, token, len);
    memcpy(m->digest, digest, 32);
    return KW_OK;
}

/* The project token is public and a lookup returns only the project id,
 * so there is no hash table of its own: the same cache, keyed by the
 * token's SHA-256 (stored plain in projects.api_token, as PostHog does, so
 * the lookup is by value).  No last_used_at for project tokens. */
static kw_verify_result verify_project(kw_verifier *v, const char *token, size_t len,
                                       int64_t now, kw_principal *out)
{
    if (kw_key_kind_of(token, len) != KW_KEY_PROJECT) return KW_VERIFY_INVALID;
    unsigned char digest[32];
    if (project_token_digest(token, len, digest)) return KW_VERIFY_UNAVAILABLE;
    int64_t last_used;
    int hit = cache_trusted(v, now) && kw_vcache_get(v->cache, digest, now, out, &last_used);
    kw_metrics_cache(KW_M_PROJECT, hit);
    if (hit) return out->kind == KW_KEY_PROJECT ? KW_VERIFY_OK : KW_VERIFY_INVALID;
    kw_key_info info;
    if (kw_key_classify(token, len, &info) == KW_FORMAT_INVALID || info.kind != KW_KEY_PROJECT)
        return KW_VERIFY_INVALID;
    uint64_t ticket = kw_vcache_ticket(v->cache);
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
    kw_vcache_put(v->cache, digest, out, 0, ticket);
    return KW_VERIFY_OK;
}
