/* store_pg.h — internals shared by the PostgreSQL backend's files.
 *
 * store_pg_conn.c owns connections (one per thread, reconnecting), running
 * statements, column decoding and mapping libpq errors; store_pg.c owns the
 * fixed SQL, the migrations and the kw_store_ops; the other store_pg_*.c
 * files hold the operations on one kind of object each (users and
 * projects, personal keys, project keys, flags, the activity log, events,
 * key lifecycle, console).  Parameters always travel as text through $n
 * placeholders: no value is ever spliced into SQL. */
#ifndef KW_STORE_PG_H
#define KW_STORE_PG_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "store_backend.h"

#define PG_MAX_STMTS 48
#define PG_MAX_PARAMS 32

struct pg_conn {
    PGconn *db;
    struct pg_store *store;
    unsigned char prepared[PG_MAX_STMTS];  /* PQprepare done on this session */
    struct pg_conn *prev, *next;           /* every connection, for close */
};

struct pg_store {
    kw_store base;
    char *url;
    const char *const *sql;  /* the statement table, indexed by statement id */
    int stmt_count;
    pthread_key_t tls;
    pthread_mutex_t conns_lock;  /* guards the list only */
    struct pg_conn *conns;
    /* The LISTEN session of kw_store_wait_change: its own connection, never
     * used for queries (a notification arrives only between transactions of
     * its session, so it must not share one with request threads). */
    pthread_mutex_t listen_lock;
    PGconn *listen;
};

/* Text parameters for one statement; numbers are formatted into buf. */
struct pg_params {
    int n;
    const char *v[PG_MAX_PARAMS];
    char buf[PG_MAX_PARAMS][24];
};

void kw_pg_text(struct pg_params *p, const char *v);         /* NULL stays NULL */
void kw_pg_text_or_null(struct pg_params *p, const char *v);  /* "" = NULL */
void kw_pg_int(struct pg_params *p, int64_t v);
void kw_pg_int_or_null(struct pg_params *p, int64_t v);       /* 0 = NULL */

/* A growing text buffer for array parameters: '{' + elements, closed by
 * the caller with kw_pg_buf_put(b, "}", 1).  oom is sticky; free(p). */
struct pg_buf {
    char *p;
    size_t len, cap;
    int oom;
};

void kw_pg_buf_put(struct pg_buf *b, const char *s, size_t n);
/* Appends one element of a text[] / bigint[] literal ("{" before the
 * first, "," before the others).  The literal is a parameter value, never
 * SQL text. */
void kw_pg_array_text(struct pg_buf *b, const char *v, int first);
void kw_pg_array_int(struct pg_buf *b, int64_t v, int first);

int kw_pg_store_init(struct pg_store *s, const char *url, const char *const *sql, int count);
void kw_pg_store_fini(struct pg_store *s);
/* The calling thread's connection, opened or re-established if needed. */
int kw_pg_conn_get(struct pg_store *s, struct pg_conn **out);
/* Runs prepared statement `id` (preparing it on first use per connection).
 * On KW_OK *out holds the result (PQclear it); on error *out is NULL. */
int kw_pg_run(struct pg_store *s, int id, const struct pg_params *p, PGresult **out);
/* Runs ad-hoc parameterized SQL (PQexecParams) on the thread's connection. */
int kw_pg_run_sql(struct pg_store *s, const char *sql, const struct pg_params *p, PGresult **out);
/* Runs parameterless SQL (may hold several statements). */
int kw_pg_exec(struct pg_conn *c, const char *sql);
/* Column readers for row `row`; NULL reads as 0 / "" / false. */
int64_t kw_pg_col_int(const PGresult *r, int row, int col);
int kw_pg_col_bool(const PGresult *r, int row, int col);
void kw_pg_col_copy(const PGresult *r, int row, int col, char *dst, size_t size);
char *kw_pg_col_dup(const PGresult *r, int row, int col);  /* heap; NULL on ENOMEM */
/* The fixed statements of store_pg.c's table, by index.  The order only
 * names the prepared statements ("kw<index>"). */
enum kw_pg_stmt {
    KW_PG_USER_COUNT, KW_PG_USER_INSERT, KW_PG_USER_GET, KW_PG_USER_BY_EMAIL, KW_PG_USER_SET_ACTIVE,
    KW_PG_ORG_INSERT, KW_PG_ORG_GET, KW_PG_MEMBER_SET, KW_PG_MEMBER_LEVEL, KW_PG_USER_ORGS,
    KW_PG_PROJECT_INSERT, KW_PG_PROJECT_GET, KW_PG_PROJECT_BY_TOKEN, KW_PG_USER_PROJECTS,
    KW_PG_PROJECT_SET_TOKEN,
    KW_PG_PKEY_INSERT, KW_PG_PKEY_GET, KW_PG_PKEY_LIST, KW_PG_PKEY_UPDATE, KW_PG_PKEY_ROLL,
    KW_PG_PKEY_DELETE, KW_PG_PKEY_BY_HASH, KW_PG_PKEY_TOUCH, KW_PG_PKEY_REHASH,
    KW_PG_PKEY_LEGACY_COUNT,
    KW_PG_FLAG_INSERT, KW_PG_FLAG_GET, KW_PG_FLAG_LIST_NEWEST, KW_PG_FLAG_LIST_BY_KEY,
    KW_PG_FLAG_UPDATE,
    KW_PG_ACTIVITY_INSERT, KW_PG_SCHEMA_VERSION, KW_PG_AUTH_GENERATION,
    KW_PG_PSK_INSERT, KW_PG_PSK_GET, KW_PG_PSK_LIST, KW_PG_PSK_COUNT, KW_PG_PSK_UPDATE,
    KW_PG_PSK_ROLL, KW_PG_PSK_DELETE, KW_PG_PSK_BY_HASH, KW_PG_PSK_TOUCH,
    KW_PG_FLAGS_GENERATION, KW_PG_PKEY_AUTH_BY_HASH,
    KW_PG_STMT_COUNT
};
/* Running one of them (store_pg.c).  kw_pg_write: KW_ERR_NOTFOUND when it
 * changed no row and `must_change` is set.  kw_pg_query_one: a single-row
 * query, KW_ERR_NOTFOUND when there is no row; on KW_OK the caller reads
 * row 0 of *out and clears it.  kw_pg_count: the integer a one-row query
 * returns.  kw_pg_insert_returning: an INSERT … RETURNING id. */
int kw_pg_write(struct pg_store *s, int id, const struct pg_params *p, int must_change);
int kw_pg_query_one(struct pg_store *s, int id, const struct pg_params *p, PGresult **out);
int kw_pg_count(struct pg_store *s, int id, int64_t *count);
int kw_pg_insert_returning(struct pg_store *s, int id, const struct pg_params *p, int64_t *new_id);
/* Users, organizations, memberships and projects (store_pg_users.c). */
int kw_pg_user_count(kw_store *b, int64_t *count);
int kw_pg_user_create(kw_store *b, kw_user *u);
int kw_pg_user_get(kw_store *b, int64_t id, kw_user *out);
int kw_pg_user_by_email(kw_store *b, const char *email, kw_user *out);
int kw_pg_user_set_active(kw_store *b, int64_t id, int active);
int kw_pg_org_create(kw_store *b, kw_org *o);
int kw_pg_org_get(kw_store *b, const char *id, kw_org *o);
int kw_pg_membership_set(kw_store *b, int64_t user_id, const char *org_id, int level);
int kw_pg_membership_level(kw_store *b, int64_t user_id, const char *org_id, int *level);
int kw_pg_user_orgs(kw_store *b, int64_t user_id, kw_org_cb cb, void *ctx);
int kw_pg_project_create(kw_store *b, kw_project *pr);
int kw_pg_project_get(kw_store *b, int64_t id, kw_project *out);
int kw_pg_project_by_token(kw_store *b, const char *token, kw_project *out);
int kw_pg_user_projects(kw_store *b, int64_t user_id, kw_project_cb cb, void *ctx);
int kw_pg_project_set_token(kw_store *b, int64_t id, const char *token);
/* Personal API keys and the auth generation (store_pg_pkey.c). */
int kw_pg_pkey_insert(kw_store *b, const kw_pkey *k, int max_per_user);
int kw_pg_pkey_get(kw_store *b, int64_t user_id, const char *id, kw_pkey *out);
int kw_pg_pkey_by_hash(kw_store *b, const char *secure_value, kw_pkey *out);
int kw_pg_pkey_auth_by_hash(kw_store *b, const char *secure_value, kw_pkey *out, int *active);
int kw_pg_pkey_list(kw_store *b, int64_t user_id, kw_pkey_cb cb, void *ctx);
int kw_pg_pkey_update(kw_store *b, const kw_pkey *k);
int kw_pg_pkey_roll(kw_store *b, int64_t user_id, const char *id, const char *secure_value,
                    const char *mask_value, kw_time now);
int kw_pg_pkey_delete(kw_store *b, int64_t user_id, const char *id);
int kw_pg_pkey_touch(kw_store *b, const char *id, kw_time now, kw_time interval);
int kw_pg_pkey_rehash(kw_store *b, const char *id, const char *old_value, const char *new_value);
int kw_pg_pkey_legacy_count(kw_store *b, int64_t *count);
int kw_pg_auth_generation(kw_store *b, int64_t *generation);
/* Project secret API keys (store_pg_psk.c). */
int kw_pg_psk_insert(kw_store *b, const kw_psk *k, int max_per_project);
int kw_pg_psk_get(kw_store *b, int64_t project_id, const char *id, kw_psk *out);
int kw_pg_psk_by_hash(kw_store *b, const char *secure_value, kw_psk *out);
int kw_pg_psk_list(kw_store *b, int64_t project_id, int64_t limit, int64_t offset, kw_psk_cb cb,
                   void *ctx);
int kw_pg_psk_count(kw_store *b, int64_t project_id, int64_t *count);
int kw_pg_psk_update(kw_store *b, const kw_psk *k);
int kw_pg_psk_roll(kw_store *b, int64_t project_id, const char *id, const char *secure_value,
                   const char *mask_value, kw_time now);
int kw_pg_psk_delete(kw_store *b, int64_t project_id, const char *id);
int kw_pg_psk_touch(kw_store *b, const char *id, kw_time now, kw_time interval);
/* Feature flags and the flags generation (store_pg_flags.c). */
int kw_pg_flag_insert(kw_store *b, kw_flag *f);
int kw_pg_flag_get(kw_store *b, int64_t project_id, int64_t id, kw_flag *out);
int kw_pg_flag_list(kw_store *b, int64_t project_id, enum kw_flag_order order,
                    int include_deleted, kw_flag_cb cb, void *ctx);
int kw_pg_flag_update(kw_store *b, kw_flag *f);
int kw_pg_flags_generation(kw_store *b, int64_t *generation);
/* The activity log (store_pg_activity.c). */
int kw_pg_activity_insert(kw_store *b, kw_activity *a);
int kw_pg_activity_list(kw_store *b, const kw_activity_query *q, kw_activity_cb cb, void *ctx);
int kw_pg_activity_count(kw_store *b, const kw_activity_query *q, int64_t *count);
/* Events and endpoints (store_pg_events.c). */
int kw_pg_events_insert(kw_store *b, int64_t project_id, const kw_event *events, size_t n);
int kw_pg_events_query(kw_store *b, const kw_event_query *q, kw_event_row_cb cb, void *ctx);
int kw_pg_endpoint_insert(kw_store *b, kw_endpoint *e);
int kw_pg_endpoint_get(kw_store *b, int64_t project_id, const char *name, kw_endpoint *out);
int kw_pg_endpoint_list(kw_store *b, int64_t project_id, int64_t limit, int64_t offset,
                        kw_endpoint_cb cb, void *ctx);
int kw_pg_endpoint_count(kw_store *b, int64_t project_id, int64_t *count);
int kw_pg_endpoint_update(kw_store *b, const kw_endpoint *e);
int kw_pg_endpoint_delete(kw_store *b, int64_t project_id, int64_t id);
/* The key-lifecycle operations (store_pg_life.c). */
int kw_pg_key_scopes_used_many(kw_store *b, const kw_scope_use *uses, size_t n);
int kw_pg_key_touch_many(kw_store *b, const kw_key_touch *t, size_t n, kw_time interval);
int kw_pg_rolled_set(kw_store *, kw_key_kind, const char *, const char *, kw_time, kw_time);
int kw_pg_rolled_get(kw_store *, const char *, kw_key_kind *, char[KW_SECURE_MAX + 1], kw_time *);
int kw_pg_rolled_expiry(kw_store *, kw_key_kind, const char *, kw_time, kw_time *);
int kw_pg_rolled_live(kw_store *, kw_time, int64_t *);
int kw_pg_user_list(kw_store *b, kw_user_cb cb, void *ctx);
int kw_pg_project_list(kw_store *b, kw_project_cb cb, void *ctx);
int kw_pg_import_user(kw_store *b, const kw_user *u);
int kw_pg_import_org(kw_store *b, const kw_org *o);
int kw_pg_import_project(kw_store *b, const kw_project *p);
int kw_pg_import_pkey(kw_store *b, const kw_pkey *k);
int kw_pg_import_done(kw_store *b);
/* kw_store_wait_change (store_pg_conn.c). */
int kw_pg_wait_change(kw_store *b, int timeout_ms, int *what);
/* Maps a failed result (or a NULL one) to a kw_err. */
int kw_pg_error(PGconn *db, const PGresult *res);

/* The web console's operations (store_pg_console.c). */
int kw_pg_password_get(kw_store *b, int64_t user_id, char *out);
int kw_pg_password_set(kw_store *b, int64_t user_id, const char *hash);
int kw_pg_session_insert(kw_store *b, const kw_session *s);
int kw_pg_session_get(kw_store *b, const char *token_hash, kw_session *out);
int kw_pg_session_touch(kw_store *b, const char *token_hash, kw_time now, kw_time interval);
int kw_pg_session_delete(kw_store *b, const char *token_hash);
int kw_pg_session_delete_user(kw_store *b, int64_t user_id);
int kw_pg_invite_insert(kw_store *b, const kw_invite *i);
int kw_pg_invite_by_hash(kw_store *b, const char *token_hash, kw_invite *out);
int kw_pg_invite_accept(kw_store *b, const char *id, kw_time now);
int kw_pg_login_failure_add(kw_store *b, const char *key, kw_time now, kw_time keep);
int kw_pg_login_failure_nth(kw_store *b, const char *key, kw_time since, int nth, kw_time *at);
int kw_pg_login_failure_clear(kw_store *b, const char *key);
int kw_pg_meta_secret(kw_store *b, const char *name, const char *candidate, char *out, size_t size);

#endif
