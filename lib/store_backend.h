/* store_backend.h — what a storage backend implements (internal).
 *
 * kw_store is a vtable pointer followed by the backend's own state; the
 * public kw_store_* functions in store.c forward through it.  A backend is
 * selected by the URL given to kw_store_open. */
#ifndef KW_STORE_BACKEND_H
#define KW_STORE_BACKEND_H

#include "keyward/store.h"

struct kw_store_ops {
    const char *name;
    void (*close)(kw_store *);
    int (*schema_version)(kw_store *, int *);
    int (*begin)(kw_store *);
    int (*commit)(kw_store *);
    void (*rollback)(kw_store *);
    int (*in_transaction)(kw_store *);
    int (*user_count)(kw_store *, int64_t *);
    int (*user_create)(kw_store *, kw_user *);
    int (*user_get)(kw_store *, int64_t, kw_user *);
    int (*user_by_email)(kw_store *, const char *, kw_user *);
    int (*user_set_active)(kw_store *, int64_t, int);
    int (*org_create)(kw_store *, kw_org *);
    int (*org_get)(kw_store *, const char *, kw_org *);
    int (*membership_set)(kw_store *, int64_t, const char *, int);
    int (*membership_level)(kw_store *, int64_t, const char *, int *);
    int (*user_orgs)(kw_store *, int64_t, kw_org_cb, void *);
    int (*project_create)(kw_store *, kw_project *);
    int (*project_get)(kw_store *, int64_t, kw_project *);
    int (*project_by_token)(kw_store *, const char *, kw_project *);
    int (*user_projects)(kw_store *, int64_t, kw_project_cb, void *);
    int (*project_set_token)(kw_store *, int64_t, const char *);
    int (*pkey_insert)(kw_store *, const kw_pkey *, int);
    int (*pkey_get)(kw_store *, int64_t, const char *, kw_pkey *);
    int (*pkey_list)(kw_store *, int64_t, kw_pkey_cb, void *);
    int (*pkey_update)(kw_store *, const kw_pkey *);
    int (*pkey_roll)(kw_store *, int64_t, const char *, const char *, const char *, kw_time);
    int (*pkey_delete)(kw_store *, int64_t, const char *);
    int (*pkey_by_hash)(kw_store *, const char *, kw_pkey *);
    int (*pkey_touch)(kw_store *, const char *, kw_time, kw_time);
    int (*pkey_rehash)(kw_store *, const char *, const char *, const char *);
    int (*pkey_legacy_count)(kw_store *, int64_t *);
    int (*psk_insert)(kw_store *, const kw_psk *, int);
    int (*psk_get)(kw_store *, int64_t, const char *, kw_psk *);
    int (*psk_list)(kw_store *, int64_t, int64_t, int64_t, kw_psk_cb, void *);
    int (*psk_count)(kw_store *, int64_t, int64_t *);
    int (*psk_update)(kw_store *, const kw_psk *);
    int (*psk_roll)(kw_store *, int64_t, const char *, const char *, const char *, kw_time);
    int (*psk_delete)(kw_store *, int64_t, const char *);
    int (*psk_by_hash)(kw_store *, const char *, kw_psk *);
    int (*psk_touch)(kw_store *, const char *, kw_time, kw_time);
    int (*flag_insert)(kw_store *, kw_flag *);
    int (*flag_get)(kw_store *, int64_t, int64_t, kw_flag *);
    int (*flag_list)(kw_store *, int64_t, enum kw_flag_order, int, kw_flag_cb, void *);
    int (*flag_update)(kw_store *, kw_flag *);
    int (*activity_insert)(kw_store *, kw_activity *);
    int (*activity_list)(kw_store *, const kw_activity_query *, kw_activity_cb, void *);
    int (*activity_count)(kw_store *, const kw_activity_query *, int64_t *);
    int (*auth_generation)(kw_store *, int64_t *);
    int (*flags_generation)(kw_store *, int64_t *);
    int (*wait_change)(kw_store *, int, int *);  /* NULL: no notifications */
    int (*pkey_auth_by_hash)(kw_store *, const char *, kw_pkey *, int *);
    /* events and endpoints (store_sqlite_events.c, store_pg_events.c) */
    int (*events_insert)(kw_store *, int64_t, const kw_event *, size_t);
    int (*events_query)(kw_store *, const kw_event_query *, kw_event_row_cb, void *);
    int (*endpoint_insert)(kw_store *, kw_endpoint *);
    int (*endpoint_get)(kw_store *, int64_t, const char *, kw_endpoint *);
    int (*endpoint_list)(kw_store *, int64_t, int64_t, int64_t, kw_endpoint_cb, void *);
    int (*endpoint_count)(kw_store *, int64_t, int64_t *);
    int (*endpoint_update)(kw_store *, const kw_endpoint *);
    int (*endpoint_delete)(kw_store *, int64_t, int64_t);
    /* key lifecycle (store_sqlite_life.c, store_pg_life.c) */
    int (*key_scopes_used_many)(kw_store *, const kw_scope_use *, size_t);
    int (*key_touch_many)(kw_store *, const kw_key_touch *, size_t, kw_time);
    int (*rolled_set)(kw_store *, kw_key_kind, const char *, const char *, kw_time, kw_time);
    int (*rolled_get)(kw_store *, const char *, kw_key_kind *, char[KW_SECURE_MAX + 1], kw_time *);
    int (*rolled_expiry)(kw_store *, kw_key_kind, const char *, kw_time, kw_time *);
    int (*rolled_live)(kw_store *, kw_time, int64_t *);
    int (*user_list)(kw_store *, kw_user_cb, void *);
    int (*project_list)(kw_store *, kw_project_cb, void *);
    int (*import_user)(kw_store *, const kw_user *);
    int (*import_org)(kw_store *, const kw_org *);
    int (*import_project)(kw_store *, const kw_project *);
    int (*import_pkey)(kw_store *, const kw_pkey *);
    int (*import_done)(kw_store *);
    /* console (store_sqlite_console.c, store_pg_console.c) */
    int (*user_password_get)(kw_store *, int64_t, char *);
    int (*user_password_set)(kw_store *, int64_t, const char *);
    int (*session_insert)(kw_store *, const kw_session *);
    int (*session_get)(kw_store *, const char *, kw_session *);
    int (*session_touch)(kw_store *, const char *, kw_time, kw_time);
    int (*session_delete)(kw_store *, const char *);
    int (*session_delete_user)(kw_store *, int64_t);
    int (*invite_insert)(kw_store *, const kw_invite *);
    int (*invite_by_hash)(kw_store *, const char *, kw_invite *);
    int (*invite_accept)(kw_store *, const char *, kw_time);
    int (*login_failure_add)(kw_store *, const char *, kw_time, kw_time);
    int (*login_failure_nth)(kw_store *, const char *, kw_time, int, kw_time *);
    int (*login_failure_clear)(kw_store *, const char *);
    int (*meta_secret)(kw_store *, const char *, const char *, char *, size_t);
};

struct kw_store {
    const struct kw_store_ops *ops;
};

int kw_store_sqlite_open(const char *path, kw_store **out);
int kw_store_pg_open(const char *url, kw_store **out);

/* The SQLite backend's files work on store_sqlite.c's per-thread connection
 * through these helpers.  A file whose statements are worth caching has an
 * enum and an SQL table of its own, a slot array in the connection and a
 * kw_sq_*_stmt accessor that returns the statement reset and ready to bind
 * (NULL on failure); the others prepare per call on kw_sq_db. */
struct sqlite3;
struct sqlite3_stmt;
struct sqlite3 *kw_sq_db(kw_store *b);
int kw_sq_finish(struct sqlite3_stmt *st, int rc);
int kw_sq_step_one(struct sqlite3_stmt *st);
int kw_sq_exec_write(kw_store *b, struct sqlite3_stmt *st, int must_change);
int kw_sq_map_rc(int rc);
/* Text bound without a copy (the caller's string outlives the step);
 * the _or_null forms store "" / 0 as NULL, for optional columns. */
void kw_sq_bind_text(struct sqlite3_stmt *st, int i, const char *v);
void kw_sq_bind_text_or_null(struct sqlite3_stmt *st, int i, const char *v);
void kw_sq_bind_int64_or_null(struct sqlite3_stmt *st, int i, int64_t v);
void kw_sq_copy_col(struct sqlite3_stmt *st, int col, char *dst, size_t size);
char *kw_sq_dup_col(struct sqlite3_stmt *st, int col);  /* heap; NULL on ENOMEM */
/* The integer a one-row query returns; KW_ERR_DB when st is NULL. */
int kw_sq_count(struct sqlite3_stmt *st, int64_t *count);

/* store_sqlite_users.c: users, organizations, memberships and projects. */
enum kw_sq_user_stmt {
    KW_SQ_USER_COUNT, KW_SQ_USER_INSERT, KW_SQ_USER_GET, KW_SQ_USER_BY_EMAIL,
    KW_SQ_USER_SET_ACTIVE, KW_SQ_ORG_INSERT, KW_SQ_ORG_GET, KW_SQ_MEMBER_SET, KW_SQ_MEMBER_LEVEL,
    KW_SQ_USER_ORGS, KW_SQ_PROJECT_INSERT, KW_SQ_PROJECT_GET, KW_SQ_PROJECT_BY_TOKEN,
    KW_SQ_USER_PROJECTS, KW_SQ_PROJECT_SET_TOKEN, KW_SQ_USER_COUNT_STMTS
};
extern const char *const kw_sq_user_sql[KW_SQ_USER_COUNT_STMTS];
struct sqlite3_stmt *kw_sq_user_stmt(kw_store *b, int id);  /* id from enum kw_sq_user_stmt */
int kw_sq_user_count(kw_store *, int64_t *);
int kw_sq_user_create(kw_store *, kw_user *);
int kw_sq_user_get(kw_store *, int64_t, kw_user *);
int kw_sq_user_by_email(kw_store *, const char *, kw_user *);
int kw_sq_user_set_active(kw_store *, int64_t, int);
int kw_sq_org_create(kw_store *, kw_org *);
int kw_sq_org_get(kw_store *, const char *, kw_org *);
int kw_sq_membership_set(kw_store *, int64_t, const char *, int);
int kw_sq_membership_level(kw_store *, int64_t, const char *, int *);
int kw_sq_user_orgs(kw_store *, int64_t, kw_org_cb, void *);
int kw_sq_project_create(kw_store *, kw_project *);
int kw_sq_project_get(kw_store *, int64_t, kw_project *);
int kw_sq_project_by_token(kw_store *, const char *, kw_project *);
int kw_sq_user_projects(kw_store *, int64_t, kw_project_cb, void *);
int kw_sq_project_set_token(kw_store *, int64_t, const char *);

/* store_sqlite_pkey.c: personal API keys and the auth generation. */
enum kw_sq_pkey_stmt {
    KW_SQ_PKEY_INSERT, KW_SQ_PKEY_GET, KW_SQ_PKEY_LIST, KW_SQ_PKEY_UPDATE, KW_SQ_PKEY_ROLL,
    KW_SQ_PKEY_DELETE, KW_SQ_PKEY_BY_HASH, KW_SQ_PKEY_TOUCH, KW_SQ_PKEY_REHASH,
    KW_SQ_PKEY_LEGACY_COUNT, KW_SQ_AUTH_GENERATION, KW_SQ_PKEY_AUTH_BY_HASH, KW_SQ_PKEY_COUNT_STMTS
};
extern const char *const kw_sq_pkey_sql[KW_SQ_PKEY_COUNT_STMTS];
struct sqlite3_stmt *kw_sq_pkey_stmt(kw_store *b, int id);  /* id from enum kw_sq_pkey_stmt */
int kw_sq_pkey_insert(kw_store *, const kw_pkey *, int);
int kw_sq_pkey_get(kw_store *, int64_t, const char *, kw_pkey *);
int kw_sq_pkey_list(kw_store *, int64_t, kw_pkey_cb, void *);
int kw_sq_pkey_update(kw_store *, const kw_pkey *);
int kw_sq_pkey_roll(kw_store *, int64_t, const char *, const char *, const char *, kw_time);
int kw_sq_pkey_delete(kw_store *, int64_t, const char *);
int kw_sq_pkey_by_hash(kw_store *, const char *, kw_pkey *);
int kw_sq_pkey_touch(kw_store *, const char *, kw_time, kw_time);
int kw_sq_pkey_rehash(kw_store *, const char *, const char *, const char *);
int kw_sq_pkey_legacy_count(kw_store *, int64_t *);
int kw_sq_pkey_auth_by_hash(kw_store *, const char *, kw_pkey *, int *);
int kw_sq_auth_generation(kw_store *, int64_t *);

/* store_sqlite_flags.c: feature flags and the flags generation. */
enum kw_sq_flag_stmt {
    KW_SQ_FLAG_INSERT, KW_SQ_FLAG_GET, KW_SQ_FLAG_LIST_NEWEST, KW_SQ_FLAG_LIST_BY_KEY,
    KW_SQ_FLAG_UPDATE, KW_SQ_FLAGS_GENERATION, KW_SQ_FLAG_COUNT_STMTS
};
extern const char *const kw_sq_flag_sql[KW_SQ_FLAG_COUNT_STMTS];
struct sqlite3_stmt *kw_sq_flag_stmt(kw_store *b, int id);  /* id from enum kw_sq_flag_stmt */
int kw_sq_flag_insert(kw_store *, kw_flag *);
int kw_sq_flag_get(kw_store *, int64_t, int64_t, kw_flag *);
int kw_sq_flag_list(kw_store *, int64_t, enum kw_flag_order, int, kw_flag_cb, void *);
int kw_sq_flag_update(kw_store *, kw_flag *);
int kw_sq_flags_generation(kw_store *, int64_t *);

/* store_sqlite_activity.c: the activity log. */
enum kw_sq_activity_stmt { KW_SQ_ACTIVITY_INSERT, KW_SQ_ACTIVITY_COUNT_STMTS };
extern const char *const kw_sq_activity_sql[KW_SQ_ACTIVITY_COUNT_STMTS];
struct sqlite3_stmt *kw_sq_activity_stmt(kw_store *b, int id);  /* id from enum kw_sq_activity_stmt */
int kw_sq_activity_insert(kw_store *, kw_activity *);
int kw_sq_activity_list(kw_store *, const kw_activity_query *, kw_activity_cb, void *);
int kw_sq_activity_count(kw_store *, const kw_activity_query *, int64_t *);

/* store_sqlite_psk.c: the project secret key operations of the SQLite
 * backend. */
struct sqlite3_stmt *kw_sq_stmt(kw_store *b, int id);  /* id from enum kw_sq_psk_stmt */
enum kw_sq_psk_stmt {
    KW_SQ_PSK_INSERT, KW_SQ_PSK_GET, KW_SQ_PSK_LIST, KW_SQ_PSK_COUNT, KW_SQ_PSK_UPDATE,
    KW_SQ_PSK_ROLL, KW_SQ_PSK_DELETE, KW_SQ_PSK_BY_HASH, KW_SQ_PSK_TOUCH, KW_SQ_PSK_COUNT_STMTS
};
extern const char *const kw_sq_psk_sql[KW_SQ_PSK_COUNT_STMTS];
int kw_sq_psk_insert(kw_store *, const kw_psk *, int);
int kw_sq_psk_get(kw_store *, int64_t, const char *, kw_psk *);
int kw_sq_psk_list(kw_store *, int64_t, int64_t, int64_t, kw_psk_cb, void *);
int kw_sq_psk_count(kw_store *, int64_t, int64_t *);
int kw_sq_psk_update(kw_store *, const kw_psk *);
int kw_sq_psk_roll(kw_store *, int64_t, const char *, const char *, const char *, kw_time);
int kw_sq_psk_delete(kw_store *, int64_t, const char *);
int kw_sq_psk_by_hash(kw_store *, const char *, kw_psk *);
int kw_sq_psk_touch(kw_store *, const char *, kw_time, kw_time);

/* store_sqlite_events.c: events and endpoints of the SQLite backend, with
 * their own per-connection statement cache (kw_sq_ev_stmt). */
enum kw_sq_ev_stmt {
    KW_SQ_EV_INSERT, KW_SQ_EV_COUNTS, KW_SQ_EV_UNIQUE, KW_SQ_EV_BREAKDOWN, KW_SQ_EV_RECENT,
    KW_SQ_EP_INSERT, KW_SQ_EP_GET, KW_SQ_EP_LIST, KW_SQ_EP_COUNT, KW_SQ_EP_UPDATE, KW_SQ_EP_DELETE,
    KW_SQ_EV_COUNT_STMTS
};
extern const char *const kw_sq_ev_sql[KW_SQ_EV_COUNT_STMTS];
struct sqlite3_stmt *kw_sq_ev_stmt(kw_store *b, int id);  /* id from enum kw_sq_ev_stmt */
int kw_sq_events_insert(kw_store *, int64_t, const kw_event *, size_t);
int kw_sq_events_query(kw_store *, const kw_event_query *, kw_event_row_cb, void *);
int kw_sq_endpoint_insert(kw_store *, kw_endpoint *);
int kw_sq_endpoint_get(kw_store *, int64_t, const char *, kw_endpoint *);
int kw_sq_endpoint_list(kw_store *, int64_t, int64_t, int64_t, kw_endpoint_cb, void *);
int kw_sq_endpoint_count(kw_store *, int64_t, int64_t *);
int kw_sq_endpoint_update(kw_store *, const kw_endpoint *);
int kw_sq_endpoint_delete(kw_store *, int64_t, int64_t);
/* store_sqlite_life.c: the key-lifecycle operations of the SQLite backend
 * (rare writes: prepared per call on the thread's connection). */
struct sqlite3;
int kw_sq_key_scopes_used_many(kw_store *, const kw_scope_use *, size_t);
int kw_sq_key_touch_many(kw_store *, const kw_key_touch *, size_t, kw_time);
int kw_sq_rolled_set(kw_store *, kw_key_kind, const char *, const char *, kw_time, kw_time);
int kw_sq_rolled_get(kw_store *, const char *, kw_key_kind *, char[KW_SECURE_MAX + 1], kw_time *);
int kw_sq_rolled_expiry(kw_store *, kw_key_kind, const char *, kw_time, kw_time *);
int kw_sq_rolled_live(kw_store *, kw_time, int64_t *);
int kw_sq_user_list(kw_store *, kw_user_cb, void *);
int kw_sq_project_list(kw_store *, kw_project_cb, void *);
int kw_sq_import_user(kw_store *, const kw_user *);
int kw_sq_import_org(kw_store *, const kw_org *);
int kw_sq_import_project(kw_store *, const kw_project *);
int kw_sq_import_pkey(kw_store *, const kw_pkey *);
int kw_sq_import_done(kw_store *);

/* store_sqlite_console.c: the console's operations of the SQLite backend.
 * They are prepared per call on the thread's connection (kw_sq_db): sign-in
 * and session lookups are far from the key-verification hot path. */
int kw_sq_user_password_get(kw_store *, int64_t, char *);
int kw_sq_user_password_set(kw_store *, int64_t, const char *);
int kw_sq_session_insert(kw_store *, const kw_session *);
int kw_sq_session_get(kw_store *, const char *, kw_session *);
int kw_sq_session_touch(kw_store *, const char *, kw_time, kw_time);
int kw_sq_session_delete(kw_store *, const char *);
int kw_sq_session_delete_user(kw_store *, int64_t);
int kw_sq_invite_insert(kw_store *, const kw_invite *);
int kw_sq_invite_by_hash(kw_store *, const char *, kw_invite *);
int kw_sq_invite_accept(kw_store *, const char *, kw_time);
int kw_sq_login_failure_add(kw_store *, const char *, kw_time, kw_time);
int kw_sq_login_failure_nth(kw_store *, const char *, kw_time, int, kw_time *);
int kw_sq_login_failure_clear(kw_store *, const char *);
int kw_sq_meta_secret(kw_store *, const char *, const char *, char *, size_t);

#endif
