/* store.h — keyward's persistence interface.
 *
 * One interface, several backends (SQLite embedded default, PostgreSQL for
 * several instances).  Records are plain structs with fixed-size fields so
 * the hot read paths (key lookup by hash) need no allocation; the few
 * variable-size fields (flag filters, activity detail) are heap strings owned
 * by the record and released with the matching *_clear function.  Lists are
 * delivered through callbacks so a backend never builds an array the caller
 * must free.  Every function returns KW_OK or a negative kw_err. */
#ifndef KEYWARD_STORE_H
#define KEYWARD_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/key.h"

typedef int64_t kw_time;  /* microseconds since the Unix epoch; 0 = null */

#define KW_ID_LEN 36          /* uuid text / opaque key ids */
#define KW_EMAIL_MAX 254
#define KW_NAME_MAX 400       /* bytes: 200 UTF-8 chars worst case fits */
#define KW_LABEL_MAX_CHARS 40
#define KW_LABEL_MAX 164      /* bytes: 40 UTF-8 chars of up to 4 bytes */
#define KW_SECURE_MAX 128     /* "sha256$…" or "pbkdf2_sha256$…" */
#define KW_JSON_LIST_MAX 4096 /* scopes / scoped_teams / scoped_orgs as JSON text */
#define KW_MAX_PERSONAL_KEYS 10
#define KW_MAX_SECRET_KEYS 50   /* project secret keys per project */

/* Membership levels, PostHog's values. */
enum { KW_LEVEL_MEMBER = 1, KW_LEVEL_ADMIN = 8, KW_LEVEL_OWNER = 15 };

typedef struct kw_store kw_store;

/* A fresh random uuid (v4 text form): ids of organizations, keys, entries. */
int kw_uuid_v4(char out[KW_ID_LEN + 1]);

typedef struct kw_user {
    int64_t id;
    char uuid[KW_ID_LEN + 1];
    char email[KW_EMAIL_MAX + 1];
    char first_name[KW_NAME_MAX + 1];
    int is_active;
    kw_time created_at;
} kw_user;

typedef struct kw_org {
    char id[KW_ID_LEN + 1];
    char name[KW_NAME_MAX + 1];
    kw_time created_at;
} kw_org;

typedef struct kw_project {
    int64_t id;
    char uuid[KW_ID_LEN + 1];
    char org_id[KW_ID_LEN + 1];
    char name[KW_NAME_MAX + 1];
    /* The public phc_ token: public by design (embedded in apps, returned by
     * GET /api/projects/:id/), so it is stored as is, like PostHog does. */
    char api_token[KW_KEY_MAX_LEN + 1];
    kw_time created_at;
} kw_project;

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

typedef struct kw_flag {
    int64_t id;
    int64_t project_id;
    char key[KW_NAME_MAX + 1];
    char name[KW_NAME_MAX + 1];
    char *filters;  /* JSON object text, heap, owned */
    int active;
    int deleted;
    int ensure_experience_continuity;
    int64_t version;
    int64_t created_by;  /* user id, 0 = none */
    kw_time created_at;
    kw_time updated_at;
    /* Read with the row by get and the newest-first listing (the admin
     * pages), so a page needs no query per flag; `joined` says so. */
    kw_user created_by_user;
    int joined;
} kw_flag;

typedef struct kw_activity {
    char id[KW_ID_LEN + 1];
    int64_t project_id;     /* 0 = organization-level */
    char org_id[KW_ID_LEN + 1];
    int64_t user_id;        /* 0 = system */
    char activity[32];      /* created, updated, deleted, rolled, revoked, leaked */
    char scope[32];         /* PersonalAPIKey, FeatureFlag, … */
    char item_id[KW_ID_LEN + 1];
    char *detail;           /* JSON object text, heap, owned */
    char ip_address[64];
    kw_time created_at;
} kw_activity;

typedef struct kw_activity_query {
    int64_t project_id;
    const char *const *scopes;  /* NULL-terminated, or NULL for all */
    int64_t user_id;            /* 0 = any */
    const char *item_id;        /* NULL = any */
    kw_time before;             /* 0 = none: entries strictly older (cursor) */
    const char *before_id;      /* tie-break for equal created_at */
    int ascending;
    int64_t limit;
    int64_t offset;
} kw_activity_query;

typedef int (*kw_user_cb)(void *ctx, const kw_user *user);
typedef int (*kw_org_cb)(void *ctx, const kw_org *org, int level);
typedef int (*kw_project_cb)(void *ctx, const kw_project *project);
typedef int (*kw_pkey_cb)(void *ctx, const kw_pkey *key);
typedef int (*kw_psk_cb)(void *ctx, const kw_psk *key);
typedef int (*kw_flag_cb)(void *ctx, const kw_flag *flag);
typedef int (*kw_activity_cb)(void *ctx, const kw_activity *entry);

/* url: a file path or "sqlite:PATH" (SQLite), "postgresql://…" (PostgreSQL).
 * Applies pending migrations before returning. */
int kw_store_open(const char *url, kw_store **out);
void kw_store_close(kw_store *store);
const char *kw_store_backend(const kw_store *store);
/* The calling thread's last database failure as "CODE: message" ("" when
 * none yet), for logs: read it on the thread that saw the error, right
 * after.  Only the server's primary message, which names what failed, not
 * the bound values; log it through a redacting logger all the same. */
const char *kw_store_last_error(void);
/* Current schema version (after migrations). */
int kw_store_schema_version(kw_store *store, int *version);

/* Groups writes on the calling thread's connection into one transaction. */
int kw_store_begin(kw_store *store);
int kw_store_commit(kw_store *store);
void kw_store_rollback(kw_store *store);
/* 1 when the calling thread's session is inside a transaction.  Every
 * service write ends its transaction (kw_txn_end); the HTTP layer checks
 * this after each request, because a transaction left open would hold
 * SQLite's write lock (every other writer then waits out busy_timeout)
 * and serve this thread's later reads from an old snapshot. */
int kw_store_in_transaction(kw_store *store);

/* Users, organizations, memberships. */
int kw_store_user_count(kw_store *store, int64_t *count);
int kw_store_user_create(kw_store *store, kw_user *user);       /* fills id, uuid, created_at */
int kw_store_user_get(kw_store *store, int64_t id, kw_user *out);
int kw_store_user_by_email(kw_store *store, const char *email, kw_user *out);
int kw_store_user_set_active(kw_store *store, int64_t id, int active);
int kw_store_org_create(kw_store *store, kw_org *org);          /* fills id, created_at */
int kw_store_org_get(kw_store *store, const char *id, kw_org *out);
int kw_store_membership_set(kw_store *store, int64_t user_id, const char *org_id, int level);
/* KW_ERR_NOTFOUND when the user is not a member. */
int kw_store_membership_level(kw_store *store, int64_t user_id, const char *org_id, int *level);
/* The same, with the directory generation read in the same statement (one
 * snapshot): `*generation` is set whether or not the user is a member. */
int kw_store_membership_level_at(kw_store *store, int64_t user_id, const char *org_id, int *level,
                                 int64_t *generation);
int kw_store_user_orgs(kw_store *store, int64_t user_id, kw_org_cb cb, void *ctx);

/* Managing organizations, projects and members (lib/store/orgs.c).
 * Deleting an organization deletes its projects, memberships and
 * invitations; deleting a project deletes its secret keys, flags, events
 * and endpoints — all by the schema's cascades, whose row triggers log
 * each revoked phs_ key and phc_ token in the change log, so every
 * verifier (on every instance) forgets them.  A deleted project's id is
 * never handed out again.  KW_ERR_NOTFOUND when the row is not there. */
typedef struct kw_member {
    kw_user user;
    int level;
    kw_time joined_at;
} kw_member;
typedef int (*kw_member_cb)(void *ctx, const kw_member *member);

int kw_store_org_rename(kw_store *store, const char *id, const char *name);
int kw_store_org_delete(kw_store *store, const char *id);
/* Inside a transaction: later membership changes of this organization
 * wait until it ends (the last-owner rule is read and kept in one step). */
int kw_store_org_lock(kw_store *store, const char *id);
int kw_store_org_projects(kw_store *store, const char *org_id, kw_project_cb cb, void *ctx);
/* Members by join time. */
int kw_store_org_members(kw_store *store, const char *org_id, int64_t limit, int64_t offset,
                         kw_member_cb cb, void *ctx);
/* Members at min_level or above (0: all). */
int kw_store_org_member_count(kw_store *store, const char *org_id, int min_level, int64_t *count);
int kw_store_member_by_uuid(kw_store *store, const char *org_id, const char *user_uuid,
                            kw_member *out);
int kw_store_membership_update(kw_store *store, int64_t user_id, const char *org_id, int level);
int kw_store_membership_delete(kw_store *store, int64_t user_id, const char *org_id);
int kw_store_project_rename(kw_store *store, int64_t id, const char *name);
int kw_store_project_delete(kw_store *store, int64_t id);

/* Projects. */
int kw_store_project_create(kw_store *store, kw_project *project);  /* fills id, uuid, created_at */
int kw_store_project_get(kw_store *store, int64_t id, kw_project *out);
int kw_store_project_by_token(kw_store *store, const char *api_token, kw_project *out);
/* Projects of every organization the user belongs to, by id. */
int kw_store_user_projects(kw_store *store, int64_t user_id, kw_project_cb cb, void *ctx);
int kw_store_project_set_token(kw_store *store, int64_t id, const char *api_token);

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

/* Feature flags.  Insert fails with KW_ERR_EXISTS on a duplicate live key. */
void kw_flag_clear(kw_flag *flag);
int kw_store_flag_insert(kw_store *store, kw_flag *flag);  /* fills id, version, times */
int kw_store_flag_get(kw_store *store, int64_t project_id, int64_t id, kw_flag *out);
enum kw_flag_order { KW_FLAG_NEWEST_FIRST, KW_FLAG_BY_KEY };
int kw_store_flag_list(kw_store *store, int64_t project_id, enum kw_flag_order order,
                       int include_deleted, kw_flag_cb cb, void *ctx);
int kw_store_flag_update(kw_store *store, kw_flag *flag);  /* bumps version, updated_at */

/* Activity log. */
void kw_activity_clear(kw_activity *entry);
int kw_store_activity_insert(kw_store *store, kw_activity *entry);  /* fills id if empty */
int kw_store_activity_list(kw_store *store, const kw_activity_query *query,
                           kw_activity_cb cb, void *ctx);
int kw_store_activity_count(kw_store *store, const kw_activity_query *query, int64_t *count);

/* The auth generation: a counter the database bumps, in the writing
 * transaction, whenever a key is rolled, re-scoped or deleted, a user is
 * (de)activated or deleted, or a project token changes.  Verification
 * caches poll it and, when it moved, read what changed from the change
 * log (kw_store_changes). */
int kw_store_auth_generation(kw_store *store, int64_t *generation);

/* The flags generation: bumped by the database, in the writing transaction,
 * on every INSERT, UPDATE or DELETE of a feature flag, whoever writes it.
 * Flag definition caches poll it, as the verifier does the auth one. */
int kw_store_flags_generation(kw_store *store, int64_t *generation);

/* The directory generation: bumped by the database, in the writing
 * transaction (on PostgreSQL at its commit), on every write to users,
 * organizations, memberships or projects and on a personal key's change of
 * scoping or deletion — everything GET /api/users/@me answers.  The @me
 * answer cache compares it (kw_directory). */
int kw_store_directory_generation(kw_store *store, int64_t *generation);

enum { KW_CHANGE_AUTH = 1, KW_CHANGE_FLAGS = 2, KW_CHANGE_ALL = 3 };

/* The change log: every bump of the auth or flags generation writes one
 * row, in the same transaction, naming what changed — so a cache can
 * forget just that instead of everything.  `kind` is "personal" or
 * "secret" (ref: the key id; a rolled-away value is logged as its key),
 * "user" or "project" (ref: the id as text), or "flags" (ref: the project
 * id, on the flags stream).  The generation of a change is the value the
 * generation took when it was logged, so a stream's rows are numbered
 * without gaps in commit order (the bump's row lock serializes writers). */
typedef struct kw_change {
    int64_t generation;
    char kind[16];
    char ref[KW_ID_LEN + 1];
} kw_change;
/* Calls fn for each change of `stream` (KW_CHANGE_AUTH or KW_CHANGE_FLAGS)
 * with after < generation <= upto, oldest first.  Returns how many there
 * were — fewer than upto - after when older rows were pruned — or a
 * negative KW_ERR_*.  A non-zero return from fn stops and is returned. */
int kw_store_changes(kw_store *store, int stream, int64_t after, int64_t upto,
                     int (*fn)(void *ctx, const kw_change *change), void *ctx);
/* Deletes the changes of `stream` up to and including `through`. */
int kw_store_changes_prune(kw_store *store, int stream, int64_t through);

/* Change notifications: waits up to timeout_ms for the database
 * to announce a write by anyone (PostgreSQL LISTEN keyward_auth /
 * keyward_flags on a dedicated connection).  KW_OK with *what = 0 on
 * timeout, else a mask of KW_CHANGE_*; after the notification connection
 * was (re)established *what is KW_CHANGE_ALL, since notifications sent
 * while it was down are lost.  KW_ERR_UNAVAILABLE when the database cannot
 * be reached (returns at once: the caller decides how long to back off);
 * KW_ERR_UNSUPPORTED when the backend has no notifications (SQLite: keep
 * polling the generations).  One waiter at a time. */
int kw_store_wait_change(kw_store *store, int timeout_ms, int *what);

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

/* ---- captured events and endpoints ---------------------------------------
 * Events are what phc_ capture stores; endpoints are named, parameterised,
 * read-only queries over them.  A query is one of a fixed set of kinds, each
 * one fixed SQL statement per backend with bound parameters: nothing from a
 * request ever becomes SQL text. */

#define KW_EVENT_NAME_MAX 400      /* bytes kept of an event name */
#define KW_DISTINCT_ID_MAX 200     /* PostHog truncates distinct ids to 200 */
/* An event's properties, serialized compactly, at most (PostHog's capture
 * refuses events over 1 MB): what one stored event can cost an endpoint
 * that reads it back. */
#define KW_EVENT_PROPERTIES_MAX ((size_t)1 << 20)
#define KW_ENDPOINT_NAME_MAX 64

typedef struct kw_event {
    int64_t id;                 /* filled by the store on read */
    char uuid[KW_ID_LEN + 1];
    const char *event;          /* borrowed by insert; heap-owned on read */
    const char *distinct_id;
    const char *properties;     /* JSON object text */
    kw_time timestamp;
    kw_time created_at;
} kw_event;

/* The query kinds (docs/endpoints.md). */
typedef enum kw_event_query_kind {
    KW_EQ_EVENT_COUNTS,         /* rows: bucket, event, count */
    KW_EQ_UNIQUE_USERS,         /* rows: bucket, count(distinct distinct_id) */
    KW_EQ_PROPERTY_BREAKDOWN,   /* rows: bucket, property value, count */
    KW_EQ_RECENT_EVENTS,        /* rows: the events, newest first */
    KW_EQ_KIND_COUNT
} kw_event_query_kind;

typedef struct kw_event_query {
    kw_event_query_kind kind;
    int64_t project_id;
    const char *event;          /* NULL = every event */
    const char *property;       /* property key (breakdown only) */
    kw_time bucket;             /* interval width in µs; 0 = one bucket */
    kw_time date_from;          /* inclusive; 0 = unbounded */
    kw_time date_to;            /* exclusive; 0 = unbounded */
    int64_t limit;
    /* recent_events: properties bytes the rows may hold together (the
     * newest first; the answer ends before the row that would cross it). */
    int64_t bytes;
    /* Wall time the query may take, in ms; 0 = unbounded.  Past it the
     * query fails with KW_ERR_TIMEOUT. */
    int64_t time_limit_ms;
} kw_event_query;

/* One result row.  Aggregates fill bucket (interval start, 0 without an
 * interval), key (event name / property value as text, NULL for a missing
 * property) and count; recent_events fills `event`. */
typedef struct kw_event_row {
    kw_time bucket;
    const char *key;
    int64_t count;
    kw_event event;
    int cut;  /* recent_events: the byte budget ends the answer before this row (no event) */
} kw_event_row;

typedef int (*kw_event_row_cb)(void *ctx, const kw_event_row *row);

/* Inserts n events of one project atomically (its own transaction, or the
 * caller's when one is open), reusing one prepared statement. */
int kw_store_events_insert(kw_store *store, int64_t project_id, const kw_event *events, size_t n);
int kw_store_events_query(kw_store *store, const kw_event_query *q, kw_event_row_cb cb, void *ctx);

typedef struct kw_endpoint {
    int64_t id;
    int64_t project_id;
    char name[KW_ENDPOINT_NAME_MAX + 1];
    char *description;          /* heap, owned */
    char *query;                /* JSON object text, heap, owned */
    char *variables;            /* JSON object text, heap, owned */
    int64_t created_by;         /* user id, 0 = none */
    kw_time created_at;
    kw_time updated_at;
    /* Read with the row by the listing only (the run path reads no more
     * than it needs): the creator, so a page needs no query per row. */
    kw_user created_by_user;
    int joined;
} kw_endpoint;

typedef int (*kw_endpoint_cb)(void *ctx, const kw_endpoint *endpoint);

void kw_endpoint_clear(kw_endpoint *endpoint);
/* KW_ERR_EXISTS on a duplicate (project, name).  Fills id and times. */
int kw_store_endpoint_insert(kw_store *store, kw_endpoint *endpoint);
int kw_store_endpoint_get(kw_store *store, int64_t project_id, const char *name, kw_endpoint *out);
int kw_store_endpoint_list(kw_store *store, int64_t project_id, int64_t limit, int64_t offset,
                           kw_endpoint_cb cb, void *ctx);  /* by name */
int kw_store_endpoint_count(kw_store *store, int64_t project_id, int64_t *count);
/* name, description, query, variables, updated_at of row `id`. */
int kw_store_endpoint_update(kw_store *store, const kw_endpoint *endpoint);
int kw_store_endpoint_delete(kw_store *store, int64_t project_id, int64_t id);
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
/* Every user / every project, by id (the shell's `keys report` without
 * --email). */
int kw_store_user_list(kw_store *store, kw_user_cb cb, void *ctx);
int kw_store_project_list(kw_store *store, kw_project_cb cb, void *ctx);

/* Legacy import (lib/org/import.c): rows with their original ids and times.
 * Each returns KW_OK when inserted and KW_ERR_EXISTS when a row with that
 * id (or another unique value) is already there, changing nothing — so an
 * import can be re-run.  import_done runs after the last row of one import
 * transaction (PostgreSQL moves its id sequences past imported ids). */
int kw_store_import_user(kw_store *store, const kw_user *user);
int kw_store_import_org(kw_store *store, const kw_org *org);
int kw_store_import_project(kw_store *store, const kw_project *project);
int kw_store_import_pkey(kw_store *store, const kw_pkey *key);
int kw_store_import_done(kw_store *store);
/* ---- console: passwords, sessions, invitations, login attempts ---------- */

#define KW_PASSWORD_HASH_MAX 256  /* an argon2id encoded string */
#define KW_TOKEN_HASH_LEN 64      /* hex sha256 of a session or invitation token */

/* A console session.  Only the sha256 of the cookie's token is stored, so
 * a copy of the database does not let anyone sign in. */
typedef struct kw_session {
    char token_hash[KW_TOKEN_HASH_LEN + 1];
    int64_t user_id;
    kw_time created_at;
    kw_time last_seen_at;
    kw_time expires_at;   /* absolute end, whatever the activity */
    int user_active;      /* read with the session (users.is_active) */
} kw_session;

/* A one-time invitation into an organization (token stored hashed). */
typedef struct kw_invite {
    char id[KW_ID_LEN + 1];
    char org_id[KW_ID_LEN + 1];
    char token_hash[KW_TOKEN_HASH_LEN + 1];
    char target_email[KW_EMAIL_MAX + 1];
    int level;
    int64_t created_by;   /* user id, 0 = null */
    kw_time created_at;
    kw_time expires_at;
    kw_time accepted_at;  /* 0 = not yet */
} kw_invite;

/* The user's argon2id hash, "" when none is set. */
int kw_store_user_password_get(kw_store *store, int64_t user_id, char out[KW_PASSWORD_HASH_MAX + 1]);
int kw_store_user_password_set(kw_store *store, int64_t user_id, const char *hash);

int kw_store_session_insert(kw_store *store, const kw_session *session);
int kw_store_session_get(kw_store *store, const char *token_hash, kw_session *out);
/* last_seen_at = now unless it was set within `interval` (one conditional UPDATE). */
int kw_store_session_touch(kw_store *store, const char *token_hash, kw_time now, kw_time interval);
int kw_store_session_delete(kw_store *store, const char *token_hash);
int kw_store_session_delete_user(kw_store *store, int64_t user_id);  /* every session of a user */
/* Deletes the user's sessions expired at `now` or idle for `idle`, and all
 * but the `keep` newest. */
int kw_store_session_prune_user(kw_store *store, int64_t user_id, kw_time now, kw_time idle,
                                int keep);

int kw_store_invite_insert(kw_store *store, const kw_invite *invite);
int kw_store_invite_by_hash(kw_store *store, const char *token_hash, kw_invite *out);
/* Marks the invitation used; KW_ERR_NOTFOUND unless it was unused and
 * unexpired at `now` (one conditional UPDATE: a link works once). */
int kw_store_invite_accept(kw_store *store, const char *id, kw_time now);
/* An organization's pending invitations (unused, unexpired at `now`),
 * newest first; and how many there are. */
typedef int (*kw_invite_cb)(void *ctx, const kw_invite *invite);
int kw_store_invite_list(kw_store *store, const char *org_id, kw_time now, int64_t limit,
                         int64_t offset, kw_invite_cb cb, void *ctx);
int kw_store_invite_count(kw_store *store, const char *org_id, kw_time now, int64_t *count);
/* Deletes a pending invitation (unused, unexpired at `now`) of the
 * organization and returns it in *out, in one statement; KW_ERR_NOTFOUND
 * when there is none (another organization's, used, expired, or unknown). */
int kw_store_invite_delete(kw_store *store, const char *id, const char *org_id, kw_time now,
                           kw_invite *out);

/* Failed sign-ins, per key ("email:…", "ip:…"), for the login rate limit. */
int kw_store_login_failure_add(kw_store *store, const char *key, kw_time now, kw_time keep);
/* The time of the `nth` most recent failure after `since`, 0 when fewer. */
int kw_store_login_failure_nth(kw_store *store, const char *key, kw_time since, int nth,
                               kw_time *at);
int kw_store_login_failure_clear(kw_store *store, const char *key);
/* Deletes failures older than `before` of every key, at most `limit` of
 * them in one statement; *removed says how many went.  A key's own rows
 * are pruned when it fails again, but a key that never fails again (one
 * of many emails or addresses an attacker tried) is left to this sweep,
 * which the server runs in batches until one comes back short. */
int kw_store_login_failure_sweep(kw_store *store, kw_time before, int64_t limit,
                                 int64_t *removed);

/* A named server secret (text) kept in kw_meta: `candidate` is stored if
 * the name has none yet; *out receives the stored one either way, so every
 * instance sharing the database agrees. */
int kw_store_meta_secret(kw_store *store, const char *name, const char *candidate, char *out,
                         size_t size);

/* What a project's browser SDK is told to do (its remote config): columns
 * of the project row, read and written apart from it (only the remote
 * config, the project's JSON and its admin's PATCH use them). */
typedef struct kw_project_settings {
    int autocapture_opt_out;         /* no $autocapture events */
    int capture_performance_opt_in;  /* network timing ($performance_event) */
    int heatmaps_opt_in;             /* $heatmap data */
} kw_project_settings;
int kw_store_project_settings_get(kw_store *store, int64_t project_id, kw_project_settings *out);
/* A project's group types (PostHog's group analytics): learned from
 * captured events, index 0-4 in order of first sight, at most
 * KW_GROUP_TYPES_MAX per project.  Names are empty when unset (null). */
#define KW_GROUP_TYPES_MAX 5
#define KW_GROUP_TYPE_MAX 400  /* bytes of a group type's name */
typedef struct kw_group_type {
    int64_t project_id;
    char group_type[KW_GROUP_TYPE_MAX + 1];
    int64_t index;
    char name_singular[KW_NAME_MAX + 1];
    char name_plural[KW_NAME_MAX + 1];
    kw_time created_at;
} kw_group_type;
typedef int (*kw_group_type_cb)(void *ctx, const kw_group_type *group_type);
/* The project's group types by index; a non-zero return from cb stops. */
int kw_store_group_types(kw_store *store, int64_t project_id, kw_group_type_cb cb, void *ctx);
/* Adds `group_type` at the next index: KW_OK when added, KW_ERR_EXISTS
 * when the name is there already, KW_ERR_LIMIT when the project has
 * KW_GROUP_TYPES_MAX.  Two writers adding different names at once cannot
 * take one index (the statement computes it, the index is unique; the
 * loser retries). */
int kw_store_group_type_add(kw_store *store, int64_t project_id, const char *group_type,
                            kw_time now);
/* Sets the display names of the type at `index` ("" stores null);
 * KW_ERR_NOTFOUND when there is none. */
int kw_store_group_type_rename(kw_store *store, int64_t project_id, int64_t index,
                               const char *singular, const char *plural);

/* Writes the members that are >= 0 and keeps the others (< 0);
 * KW_ERR_NOTFOUND when the project does not exist. */
int kw_store_project_settings_set(kw_store *store, int64_t project_id,
                                  const kw_project_settings *settings);

#endif
