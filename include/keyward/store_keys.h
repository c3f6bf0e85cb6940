/* store_keys.h — the store's API keys: personal keys (phx_) and project
 * secret keys (phs_), their verification reads, expiry notices, the
 * previous values of rolled keys, and the batched writes of last use and
 * scope usage (lib/store/keys.c, lifecycle.c).  Only hashes are stored,
 * never a key's value.  Part of the store API: <keyward/store.h> includes it. */
#ifndef KEYWARD_STORE_KEYS_H
#define KEYWARD_STORE_KEYS_H

#include "keyward/store_base.h"

#define KW_LABEL_MAX_CHARS 40
#define KW_LABEL_MAX 164      /* bytes: 40 UTF-8 chars of up to 4 bytes */
#define KW_SECURE_MAX 128     /* "sha256$…" or "pbkdf2_sha256$…" */
#define KW_JSON_LIST_MAX 4096 /* scopes / scoped_teams / scoped_orgs as JSON text */
#define KW_MAX_PERSONAL_KEYS 10
#define KW_MAX_SECRET_KEYS 50   /* project secret keys per project */

typedef struct kw_pkey {
    char id[KW_ID_LEN + 1];
    int64_t user_id;
    char label[KW_LABEL_MAX + 1];
    char secure_value[KW_SECURE_MAX + 1];
    char mask_value[KW_MASK_MAX];
    kw_time created_at;
    kw_time last_used_at;
    kw_time last_rolled_at;
    /* JSON arrays as text; "" = SQL NULL.  scopes NULL means no access. */
    char scopes[KW_JSON_LIST_MAX];
    char scoped_teams[KW_JSON_LIST_MAX];
    char scoped_orgs[KW_JSON_LIST_MAX];
    /* Lifecycle (expiry, rate limit, scopes used): 0 = never expires / no limit.  scopes_used is
     * the JSON list of scopes requests have exercised ("" = none yet),
     * merged in by the usage flush, never written per request. */
    kw_time expires_at;
    int32_t rate_limit_per_minute;
    char scopes_used[KW_JSON_LIST_MAX];
    kw_time expiry_notified_at;  /* last expiry notice (webhooks: expiring soon before
                                  * expires_at, expired after); 0 = never; a new
                                  * expires_at clears it */
    /* Read with the row by get and list (not by the verification reads):
     * when the value before the last roll stops working (0 = none), so a
     * listing needs no query per key.  `joined` says they were read. */
    kw_time previous_value_expires_at;
    int joined;
} kw_pkey;

/* A project secret key (phs_): belongs to the project, not to a person, so
 * it keeps working when its creator leaves; created_by is informational. */
typedef struct kw_psk {
    char id[KW_ID_LEN + 1];
    int64_t project_id;
    char label[KW_LABEL_MAX + 1];
    char secure_value[KW_SECURE_MAX + 1];
    char mask_value[KW_MASK_MAX];
    kw_time created_at;
    int64_t created_by;  /* user id, 0 = null */
    kw_time last_used_at;
    kw_time last_rolled_at;
    char scopes[KW_JSON_LIST_MAX];  /* JSON array text, never NULL */
    kw_time expires_at;             /* as kw_pkey */
    int32_t rate_limit_per_minute;
    char scopes_used[KW_JSON_LIST_MAX];
    kw_time expiry_notified_at;  /* as kw_pkey */
    /* As kw_pkey's, plus the creator's row (id 0 when none or deleted). */
    kw_time previous_value_expires_at;
    kw_user created_by_user;
    int joined;
} kw_psk;

typedef int (*kw_pkey_cb)(void *ctx, const kw_pkey *key);
typedef int (*kw_psk_cb)(void *ctx, const kw_psk *key);

/* Personal API keys.  Insert fails with KW_ERR_LIMIT when the user already
 * has `max_per_user` keys (checked atomically with the insert). */
int kw_store_pkey_insert(kw_store *store, const kw_pkey *key, int max_per_user);
int kw_store_pkey_get(kw_store *store, int64_t user_id, const char *id, kw_pkey *out);
int kw_store_pkey_list(kw_store *store, int64_t user_id, kw_pkey_cb cb, void *ctx); /* newest first */
/* label, scopes, scoped_*, expires_at, rate_limit_per_minute */
int kw_store_pkey_update(kw_store *store, const kw_pkey *key);
int kw_store_pkey_roll(kw_store *store, int64_t user_id, const char *id,
                       const char *secure_value, const char *mask_value, kw_time now);
int kw_store_pkey_delete(kw_store *store, int64_t user_id, const char *id);
/* Verification lookup through the unique index on secure_value. */
int kw_store_pkey_by_hash(kw_store *store, const char *secure_value, kw_pkey *out);
/* Sets last_used_at = now unless it was set within the last `interval`
 * (one conditional UPDATE: concurrent callers write at most once). */
int kw_store_pkey_touch(kw_store *store, const char *id, kw_time now, kw_time interval);
/* Rewrites a legacy hash as sha256 (only if still `old_value`). */
int kw_store_pkey_rehash(kw_store *store, const char *id, const char *old_value,
                         const char *new_value);
/* How many stored personal keys still carry a legacy pbkdf2 hash. */
int kw_store_pkey_legacy_count(kw_store *store, int64_t *count);

/* Project secret API keys.  Insert fails with KW_ERR_LIMIT when the
 * project already has `max_per_project` keys (checked atomically with the
 * insert) and KW_ERR_EXISTS on a duplicate (project, label). */
int kw_store_psk_insert(kw_store *store, const kw_psk *key, int max_per_project);
int kw_store_psk_get(kw_store *store, int64_t project_id, const char *id, kw_psk *out);
int kw_store_psk_list(kw_store *store, int64_t project_id, int64_t limit, int64_t offset,
                      kw_psk_cb cb, void *ctx);  /* newest first */
int kw_store_psk_count(kw_store *store, int64_t project_id, int64_t *count);
/* Expiry notices: keys expiring within `lead` of `now` with no notice
 * since entering that window, or expired (within a day) with no notice
 * since; at most `limit`, soonest first.  The mark sets
 * expiry_notified_at to `now` only while the row still has `expires_at`
 * and the notice `seen` (0 = none) read with it: KW_ERR_NOTFOUND when
 * another writer changed either first. */
int kw_store_pkey_expiry_due(kw_store *store, kw_time now, int64_t lead, int64_t limit,
                             kw_pkey_cb cb, void *ctx);
int kw_store_psk_expiry_due(kw_store *store, kw_time now, int64_t lead, int64_t limit,
                            kw_psk_cb cb, void *ctx);
int kw_store_pkey_expiry_mark(kw_store *store, const char *id, kw_time expires_at, kw_time seen,
                              kw_time now);
int kw_store_psk_expiry_mark(kw_store *store, const char *id, kw_time expires_at, kw_time seen,
                             kw_time now);
/* label, scopes, expires_at, rate_limit_per_minute */
int kw_store_psk_update(kw_store *store, const kw_psk *key);
int kw_store_psk_roll(kw_store *store, int64_t project_id, const char *id,
                      const char *secure_value, const char *mask_value, kw_time now);
int kw_store_psk_delete(kw_store *store, int64_t project_id, const char *id);
int kw_store_psk_by_hash(kw_store *store, const char *secure_value, kw_psk *out);
/* As kw_store_pkey_touch. */
int kw_store_psk_touch(kw_store *store, const char *id, kw_time now, kw_time interval);

/* Verification in one read: the key row by its hash and its owner's
 * is_active (one JOIN, one statement) — the cache-miss path of
 * kw_verify_personal.  KW_ERR_NOTFOUND when no key (or no user) matches. */
int kw_store_pkey_auth_by_hash(kw_store *store, const char *secure_value, kw_pkey *out,
                               int *user_active);
/* Previous values of rolled keys (a roll may keep the old value working
 * for a grace period): the
 * hash of a key's value before its last roll, accepted as the key until
 * expires_at.  kind is KW_KEY_PERSONAL or KW_KEY_SECRET.
 * kw_store_rolled_set replaces the key's previous values (all of them) by
 * `secure_value` until `expires_at`, or only removes them when secure_value
 * is NULL; it also drops every row already expired at `now`.
 * kw_store_rolled_get finds a previous value and answers the key's kind,
 * the key's current secure_value (so the caller verifies through the
 * ordinary by-hash read) and the end of the grace window.
 * kw_store_rolled_expiry: when the key's live previous value stops (0 =
 * none live at `now`).  kw_store_rolled_live: how many rows are live at
 * `now` (the verifier's cheap "is there anything to look for" check). */
int kw_store_rolled_set(kw_store *store, kw_key_kind kind, const char *key_id,
                        const char *secure_value, kw_time expires_at, kw_time now);
int kw_store_rolled_get(kw_store *store, const char *secure_value, kw_key_kind *kind,
                        char current[KW_SECURE_MAX + 1], kw_time *expires_at);
int kw_store_rolled_expiry(kw_store *store, kw_key_kind kind, const char *key_id, kw_time now,
                           kw_time *expires_at);
int kw_store_rolled_live(kw_store *store, kw_time now, int64_t *count);

/* ---- key lifecycle: scope usage, last use ---------------------------------
 * Scope usage: ORs the JSON list `scopes_json` into the key's scopes_used
 * (set union, sorted).  Idempotent, so a flush that is retried or runs on
 * several instances converges; a key deleted meanwhile is not an error. */
int kw_store_key_scopes_used(kw_store *store, kw_key_kind kind, const char *id,
                             const char *scopes_json);
/* One key's entry in a batched scope-usage merge. */
typedef struct {
    kw_key_kind kind;
    const char *id;
    const char *scopes_json;
} kw_scope_use;
/* kw_store_key_scopes_used for n keys (ids distinct) in one go: on
 * PostgreSQL one statement per key kind, on SQLite one transaction, so a
 * flush of thousands of keys costs a few round trips, not one per key.
 * On an error some may have been merged; retrying all is safe (the merge
 * is idempotent). */
int kw_store_key_scopes_used_many(kw_store *store, const kw_scope_use *uses, size_t n);
/* One key's entry in a batched last_used_at write. */
typedef struct {
    kw_key_kind kind;  /* KW_KEY_PERSONAL or KW_KEY_SECRET */
    const char *id;
    kw_time when;      /* the time of use */
} kw_key_touch;
/* kw_store_pkey_touch / kw_store_psk_touch for n keys of either kind in
 * one go, with the same condition per key (written only when last_used_at
 * is NULL or at least `interval` older than `when`, so it never moves
 * backwards; an id given twice takes its latest time; unknown ids are
 * ignored).  On PostgreSQL one statement per key kind, on SQLite one
 * transaction: the verifier's drain of a burst of first uses costs a few
 * round trips, not one per key.  On an error some may have been written;
 * retrying all is safe. */
int kw_store_key_touch_many(kw_store *store, const kw_key_touch *touches, size_t n,
                            kw_time interval);

#endif
