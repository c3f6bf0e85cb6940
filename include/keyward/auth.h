/* auth.h — who is calling: verify a presented key into a principal.
 *
 * The verifier turns "phx_…" into the user it acts for, with the key's
 * scopes and project/organization narrowing.  Bad format or checksum is
 * refused before any I/O; otherwise it is one index probe by hash (legacy
 * pbkdf2 forms are tried only when such rows exist).  last_used_at is
 * written at most once per hour per key, on a background thread, so a
 * request never waits on a write. */
#ifndef KEYWARD_AUTH_H
#define KEYWARD_AUTH_H

#include "keyward/key.h"
#include "keyward/scope.h"
#include "keyward/store.h"

#define KW_MAX_SCOPED 64

typedef enum kw_cred_source { KW_SRC_HEADER = 0, KW_SRC_BODY, KW_SRC_QUERY } kw_cred_source;

typedef struct kw_principal {
    kw_key_kind kind;        /* KW_KEY_NONE: anonymous or a session */
    int session;             /* a signed-in person (console, or the CLI acting as a user) */
    kw_cred_source source;
    int64_t user_id;         /* personal keys */
    char key_id[KW_ID_LEN + 1];
    int64_t project_id;      /* phs_ / phc_ */
    kw_scopes scopes;
    int n_scoped_teams;      /* -1: not narrowed */
    int64_t scoped_teams[KW_MAX_SCOPED];
    int n_scoped_orgs;       /* -1: not narrowed */
    char scoped_orgs[KW_MAX_SCOPED][KW_ID_LEN + 1];
    int64_t expires_at;          /* keys: 0 = never */
    int32_t rate_limit_per_minute; /* keys: 0 = no limit */
    /* Verified by a previous value still in its roll grace window, which
     * ends first: expires_at is that end, and past it the value is unknown
     * (INVALID), not an expired key. */
    int grace_value;
    /* KW_VERIFY_BUSY only: whole seconds before asking again may succeed. */
    int retry_after;
    /* The kw_now() reading the verification checked against (0: none):
     * what the rate limit and the flag cache after it take as the time. */
    int64_t verified_at;
} kw_principal;

typedef enum kw_verify_result {
    KW_VERIFY_OK = 0,
    KW_VERIFY_INVALID,      /* unknown, revoked, malformed, bad checksum, inactive user */
    KW_VERIFY_UNAVAILABLE,  /* storage failed: answer 503, never accept */
    KW_VERIFY_EXPIRED,      /* known key, but kw_now() >= its expires_at: 401 key_expired */
    /* Only a legacy (pbkdf2) check could tell, and its budget is spent:
     * 429 with Retry-After = out->retry_after; nothing was looked at. */
    KW_VERIFY_BUSY,
    /* kw_verify_personal_begin only: only a legacy (pbkdf2) check can tell,
     * and its budget was granted to this call; kw_verify_personal_legacy
     * must run exactly once next (on any thread), which releases it. */
    KW_VERIFY_SLOW
} kw_verify_result;

typedef struct kw_verifier kw_verifier;

int kw_verifier_new(kw_store *store, kw_verifier **out);
void kw_verifier_free(kw_verifier *v);  /* flushes pending last_used writes */
/* A local write committed that may change what verification answers
 * (revoke, roll, re-scope, deactivation, token reset): reads the store's
 * change log at once and forgets just the keys it names — the key, the
 * user's keys, the project's token and secret keys — so other keys keep
 * their cached answers.  Drops every cached verification only when the
 * log cannot be read.  NULL is a no-op.  Writes by other processes and
 * instances are learned from the same log by the maintenance thread. */
void kw_verifier_invalidate(kw_verifier *v);
/* Drops every cached verification (tests and benchmarks: the miss path). */
void kw_verifier_drop_cache(kw_verifier *v);

/* Verifies a personal key (phx_).  Fills *out on KW_VERIFY_OK.  `client`
 * is the caller's address, for the per-address budget of legacy (pbkdf2)
 * checks; kw_verify_personal counts against the global budget only. */
kw_verify_result kw_verify_personal(kw_verifier *v, const char *key, size_t len,
                                    kw_principal *out);
kw_verify_result kw_verify_personal_from(kw_verifier *v, const char *key, size_t len,
                                         const char *client, kw_principal *out);
/* kw_verify_personal_from in two steps, so the slow part can leave a
 * request thread: _begin answers every key the plain probe can, and
 * returns KW_VERIFY_SLOW when a legacy check (two PBKDF2 runs, ~0.5 s) is
 * due and its budget is granted; _legacy then runs that check. */
kw_verify_result kw_verify_personal_begin(kw_verifier *v, const char *key, size_t len,
                                          const char *client, kw_principal *out);
kw_verify_result kw_verify_personal_legacy(kw_verifier *v, const char *key, size_t len,
                                           kw_principal *out);
/* The pbkdf2 forms of a legacy-length phx_ (kw_key_legacy_forms), under the
 * same budget as the legacy check: for callers that look the forms up
 * themselves and keep them (the leak report).  KW_VERIFY_OK with *out
 * filled; KW_VERIFY_INVALID when no key is stored in such a form (no work
 * done); KW_VERIFY_BUSY with *retry_after (seconds) when the budget is
 * spent; KW_VERIFY_UNAVAILABLE when the hash fails. */
kw_verify_result kw_verify_legacy_forms(kw_verifier *v, const char *key, size_t len,
                                        const char *client, kw_legacy_forms *out,
                                        int *retry_after);

/* Verifies a project token (phc_), the public key of a project: principal
 * kind KW_KEY_PROJECT with project_id and no scopes.  Cached like the
 * other kinds; a reset or deleted token is logged as a change of its
 * project, which forgets the project's cached token. */
kw_verify_result kw_verify_project(kw_verifier *v, const char *token, size_t len,
                                   kw_principal *out);

/* How long cached verifications keep being served while the store cannot
 * be reached (default 30 s; `keyward serve --degraded-grace`). */
void kw_verifier_set_grace(kw_verifier *v, int64_t grace_us);
/* Whether the store answers, as the maintenance thread's poll of the
 * auth generation (every 200 ms, the probe every instance runs anyway)
 * last found it.  Reading it costs two atomic loads and never a query, so
 * a readiness probe may call it on every request. */
typedef struct kw_verifier_health {
    int db_reachable;            /* the last poll succeeded, less than 2 s ago */
    int64_t down_for_us;         /* unreachable: since the first failed poll (or stuck poll) */
    int64_t since_contact_us;    /* since the last successful poll */
    int64_t grace_us;            /* --degraded-grace */
    /* How long keys verified before keep being served from the cache: the
     * grace less the time since the last successful poll (0: spent). */
    int64_t grace_remaining_us;
} kw_verifier_health;
void kw_verifier_health_read(kw_verifier *v, kw_verifier_health *out);

/* Told once when the store stops answering the poll (reachable 0, with
 * since = the first failure) and once when it answers again (reachable 1,
 * since = when it had stopped).  Runs on whichever thread polled (the
 * maintenance thread, the listener, or a request after a write), so fn
 * must be thread-safe and quick.  On a failure the store's last error on
 * that thread (kw_store_last_error) is what failed.  `watch` must outlive
 * the verifier. */
typedef struct kw_db_watch {
    void (*fn)(void *ctx, int reachable, int64_t since);
    void *ctx;
} kw_db_watch;
void kw_verifier_watch_db(kw_verifier *v, const kw_db_watch *watch);

/* How many change notifications (PostgreSQL LISTEN) woke the verifier. */
uint64_t kw_verifier_notifications(kw_verifier *v);

/* Runs fn(ctx) on the maintenance thread at every auth generation poll
 * (every 200 ms), and on the notification listener thread when the database
 * announces a flag write (so fn must be safe on either), so other caches can poll their own store counters
 * without a thread of their own.  One hook; NULL removes it.  fn must not
 * block for long: it delays last_used_at writes. */
void kw_verifier_on_poll(kw_verifier *v, void (*fn)(void *ctx), void *ctx);

/* Verifies a project secret key (phs_): principal kind KW_KEY_SECRET with
 * project_id and scopes.  Independent of its creator's account. */
kw_verify_result kw_verify_secret(kw_verifier *v, const char *key, size_t len, kw_principal *out);

/* Rate limit: takes one request from the key's token bucket in
 * this verifier's (this instance's) limiter.  0 when allowed, else the
 * Retry-After seconds.  Keys without a limit always get 0. */
int kw_verifier_rate_take(kw_verifier *v, const kw_principal *p);
/* The same at `now` (kw_now() read just before, such as p->verified_at). */
int kw_verifier_rate_take_at(kw_verifier *v, const kw_principal *p, int64_t now);
/* A key refused for its rate limit, the first time in a minute on this
 * instance (for the key.rate_limited webhook).  The verifier keeps up to
 * KW_RATE_NOTICES of them until kw_verifier_rate_notices takes them; more
 * are dropped (and counted in *dropped). */
#define KW_RATE_NOTICES 256
typedef struct kw_rate_notice {
    kw_key_kind kind;
    char key_id[KW_ID_LEN + 1];
    int64_t user_id;     /* a personal key's owner */
    int64_t project_id;  /* a project secret key's project */
    int per_minute;
    kw_time at;
} kw_rate_notice;
size_t kw_verifier_rate_notices(kw_verifier *v, kw_rate_notice *out, size_t max,
                                uint64_t *dropped);

/* Scope usage: notes that the key exercised the scope `object`:`action`
 * (a route's required scope, parsed once: kw_policy_route_scope).  Memory
 * only — an OR into a fixed per-key table; the maintenance thread merges
 * new bits into the store every few seconds, and kw_verifier_free does a
 * last flush.  No-op for non-key principals. */
void kw_verifier_note_scope(kw_verifier *v, const kw_principal *p, int object,
                            kw_scope_action action);
/* Writes pending scope usage now (the key report calls it so what it
 * reads is current).  KW_OK, or the first storage error. */
int kw_verifier_flush_usage(kw_verifier *v);

/* Scopes, scoped_teams and scoped_organizations JSON text → principal
 * fields.  Used by verification and by the "never grant more than you
 * hold" checks. */
/* Makes *p anonymous (no key, no session, no scopes, not narrowed)
 * without clearing the narrowing arrays, which are read only up to their
 * counts: the request path does this on every request, and the principal
 * is 3 KB. */
void kw_principal_clear(kw_principal *p);

int kw_principal_load_scopes(kw_principal *p, const char *scopes_json,
                             const char *teams_json, const char *orgs_json);

/* True when the principal's project/org narrowing admits this project. */
int kw_principal_team_allowed(const kw_principal *p, int64_t project_id);
int kw_principal_org_allowed(const kw_principal *p, const char *org_id);

#endif
