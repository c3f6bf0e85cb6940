/* keys.c — the stored API keys of both kinds, written once.
 *
 * A personal key (phx_) belongs to a user, a project secret key (phs_) to a
 * project; otherwise their rows are alike.  Each kind is a descriptor: its
 * statements (sql.c writes them once over the kind's table and owner
 * column), how a row decodes into its struct and how the struct binds into
 * the insert and the update.  Every operation below works for both kinds
 * from that descriptor; the public kw_store_pkey_* / kw_store_psk_*
 * functions only pick the kind.  The by-hash reads are the verification
 * miss path: their statements are prepared once per connection. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store/db.h"

struct key_kind {
    enum kw_sql_id insert, get, list, update, roll, del, by_hash, touch, expiry_due, expiry_mark;
    size_t size;  /* of the kind's struct */
    const struct kw_db_field *fields;
    size_t n_fields;
    size_t n_hot_fields;  /* the verification reads' columns: a prefix of fields */
    const struct kw_db_param *insert_params;
    size_t n_insert_params;
    int insert_limit_param;  /* where the per-owner limit binds */
    const struct kw_db_param *update_params;
    size_t n_update_params;
};

static const struct kw_db_field PKEY_FIELDS[] = {
    KW_DB_TEXT(kw_pkey, id),           KW_DB_I64(kw_pkey, user_id),
    KW_DB_TEXT(kw_pkey, label),        KW_DB_TEXT(kw_pkey, secure_value),
    KW_DB_TEXT(kw_pkey, mask_value),   KW_DB_I64(kw_pkey, created_at),
    KW_DB_I64(kw_pkey, last_used_at),  KW_DB_I64(kw_pkey, last_rolled_at),
    KW_DB_TEXT(kw_pkey, scopes),       KW_DB_TEXT(kw_pkey, scoped_teams),
    KW_DB_TEXT(kw_pkey, scoped_orgs),  KW_DB_I64(kw_pkey, expires_at),
    KW_DB_I32(kw_pkey, rate_limit_per_minute), KW_DB_TEXT(kw_pkey, scopes_used),
    KW_DB_I64(kw_pkey, expiry_notified_at),
    /* get and list only (PKEY_LISTED): the last LISTED_PKEY fields */
    KW_DB_I64(kw_pkey, previous_value_expires_at), KW_DB_INT(kw_pkey, joined),
};
#define LISTED_PKEY 2
#define PKEY_HOT_FIELDS (sizeof PKEY_FIELDS / sizeof PKEY_FIELDS[0] - LISTED_PKEY)

static const struct kw_db_param PKEY_INSERT[] = {
    KW_DB_P(1, TEXT, kw_pkey, id),
    KW_DB_P(2, I64, kw_pkey, user_id),
    KW_DB_P(3, TEXT, kw_pkey, label),
    KW_DB_P(4, TEXT, kw_pkey, secure_value),
    KW_DB_P(5, TEXT, kw_pkey, mask_value),
    KW_DB_P(6, I64, kw_pkey, created_at),
    KW_DB_P_OR_NULL(7, TEXT, kw_pkey, scopes),
    KW_DB_P_OR_NULL(8, TEXT, kw_pkey, scoped_teams),
    KW_DB_P_OR_NULL(9, TEXT, kw_pkey, scoped_orgs),
    KW_DB_P_OR_NULL(10, I64, kw_pkey, expires_at),
    KW_DB_P_OR_NULL(11, I32, kw_pkey, rate_limit_per_minute),
};

static const struct kw_db_param PKEY_UPDATE[] = {
    KW_DB_P(1, I64, kw_pkey, user_id),
    KW_DB_P(2, TEXT, kw_pkey, id),
    KW_DB_P(3, TEXT, kw_pkey, label),
    KW_DB_P_OR_NULL(4, TEXT, kw_pkey, scopes),
    KW_DB_P_OR_NULL(5, I64, kw_pkey, expires_at),
    KW_DB_P_OR_NULL(6, I32, kw_pkey, rate_limit_per_minute),
    KW_DB_P_OR_NULL(7, TEXT, kw_pkey, scoped_teams),
    KW_DB_P_OR_NULL(8, TEXT, kw_pkey, scoped_orgs),
};

static const struct key_kind PERSONAL = {
    KW_SQL_PKEY_INSERT, KW_SQL_PKEY_GET, KW_SQL_PKEY_LIST, KW_SQL_PKEY_UPDATE, KW_SQL_PKEY_ROLL,
    KW_SQL_PKEY_DELETE, KW_SQL_PKEY_BY_HASH, KW_SQL_PKEY_TOUCH, KW_SQL_PKEY_EXPIRY_DUE,
    KW_SQL_PKEY_EXPIRY_MARK, sizeof(kw_pkey),
    KW_DB_FIELDS(PKEY_FIELDS), PKEY_HOT_FIELDS, KW_DB_FIELDS(PKEY_INSERT), 12, KW_DB_FIELDS(PKEY_UPDATE),
};

static const struct kw_db_field PSK_FIELDS[] = {
    KW_DB_TEXT(kw_psk, id),           KW_DB_I64(kw_psk, project_id),
    KW_DB_TEXT(kw_psk, label),        KW_DB_TEXT(kw_psk, secure_value),
    KW_DB_TEXT(kw_psk, mask_value),   KW_DB_I64(kw_psk, created_at),
    KW_DB_I64(kw_psk, last_used_at),  KW_DB_I64(kw_psk, last_rolled_at),
    KW_DB_TEXT(kw_psk, scopes),       KW_DB_I64(kw_psk, created_by),
    KW_DB_I64(kw_psk, expires_at),    KW_DB_I32(kw_psk, rate_limit_per_minute),
    KW_DB_TEXT(kw_psk, scopes_used),      KW_DB_I64(kw_psk, expiry_notified_at),
    /* get and list only (PSK_LISTED): the last LISTED_PSK fields */
    KW_DB_I64(kw_psk, previous_value_expires_at), KW_DB_INT(kw_psk, joined),
    KW_DB_I64(kw_psk, created_by_user.id), KW_DB_TEXT(kw_psk, created_by_user.uuid),
    KW_DB_TEXT(kw_psk, created_by_user.email), KW_DB_TEXT(kw_psk, created_by_user.first_name),
    KW_DB_INT(kw_psk, created_by_user.is_active), KW_DB_I64(kw_psk, created_by_user.created_at),
};
#define LISTED_PSK 8
#define PSK_HOT_FIELDS (sizeof PSK_FIELDS / sizeof PSK_FIELDS[0] - LISTED_PSK)

static const struct kw_db_param PSK_INSERT[] = {
    KW_DB_P(1, TEXT, kw_psk, id),
    KW_DB_P(2, I64, kw_psk, project_id),
    KW_DB_P(3, TEXT, kw_psk, label),
    KW_DB_P(4, TEXT, kw_psk, secure_value),
    KW_DB_P(5, TEXT, kw_psk, mask_value),
    KW_DB_P(6, I64, kw_psk, created_at),
    KW_DB_P_OR_NULL(7, I64, kw_psk, created_by),
    KW_DB_P(8, TEXT, kw_psk, scopes),
    KW_DB_P_OR_NULL(10, I64, kw_psk, expires_at),
    KW_DB_P_OR_NULL(11, I32, kw_psk, rate_limit_per_minute),
};

static const struct kw_db_param PSK_UPDATE[] = {
    KW_DB_P(1, I64, kw_psk, project_id),
    KW_DB_P(2, TEXT, kw_psk, id),
    KW_DB_P(3, TEXT, kw_psk, label),
    KW_DB_P(4, TEXT, kw_psk, scopes),
    KW_DB_P_OR_NULL(5, I64, kw_psk, expires_at),
    KW_DB_P_OR_NULL(6, I32, kw_psk, rate_limit_per_minute),
};

static const struct key_kind SECRET = {
    KW_SQL_PSK_INSERT, KW_SQL_PSK_GET, KW_SQL_PSK_LIST, KW_SQL_PSK_UPDATE, KW_SQL_PSK_ROLL,
    KW_SQL_PSK_DELETE, KW_SQL_PSK_BY_HASH, KW_SQL_PSK_TOUCH, KW_SQL_PSK_EXPIRY_DUE,
    KW_SQL_PSK_EXPIRY_MARK, sizeof(kw_psk),
    KW_DB_FIELDS(PSK_FIELDS), PSK_HOT_FIELDS, KW_DB_FIELDS(PSK_INSERT), 9, KW_DB_FIELDS(PSK_UPDATE),
};

/* ---- each operation once --------------------------------------------------- */

static int key_insert(kw_store *s, const struct key_kind *k, const void *key, int max_per_owner)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, k->insert, &st);
    if (rc) return rc;
    kw_db_bind_row(st, k->insert_params, k->n_insert_params, key);
    kw_db_int(st, k->insert_limit_param, max_per_owner);
    rc = kw_db_one(st);  /* a row only when the key went in */
    if (rc == KW_ERR_NOTFOUND) return KW_ERR_LIMIT;
    return rc ? rc : kw_db_finish(st, KW_OK);
}

/* A single-row read of the first n columns. */
static int key_read(kw_db_stmt *st, const struct key_kind *k, size_t n, void *out)
{
    memset(out, 0, k->size);
    int rc = kw_db_one(st);
    if (rc) return rc;
    return kw_db_finish(st, kw_db_read_row(st, k->fields, n, out));
}

static int key_get(kw_store *s, const struct key_kind *k, int64_t owner, const char *id, void *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, k->get, &st);
    if (rc) return rc;
    kw_db_int(st, 1, owner);
    kw_db_text(st, 2, id);
    return key_read(st, k, k->n_fields, out);
}

static int key_by_hash(kw_store *s, const struct key_kind *k, const char *secure_value, void *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, k->by_hash, &st);
    if (rc) return rc;
    kw_db_text(st, 1, secure_value);
    return key_read(st, k, k->n_hot_fields, out);
}

/* Runs a prepared list, one decoded row per callback; the row lives on the
 * heap (12 KiB of JSON lists: not for the callback's stack). */
static int key_each_n(kw_db_stmt *st, const struct key_kind *k, size_t n,
                      int (*cb)(void *, const void *), void *ctx)
{
    void *row = calloc(1, k->size);
    if (!row) return kw_db_finish(st, KW_ERR_NOMEM);
    int rc;
    while ((rc = kw_db_next(st, k->fields, n, row)) == KW_DB_ROW)
        if ((rc = cb(ctx, row))) break;
    free(row);
    return kw_db_finish(st, rc);
}

static int key_each(kw_db_stmt *st, const struct key_kind *k, int (*cb)(void *, const void *),
                    void *ctx)
{
    return key_each_n(st, k, k->n_fields, cb, ctx);
}

/* The expiry-notice reads select the key's own columns only. */
static int key_expiry_due(kw_store *s, const struct key_kind *k, kw_time now, int64_t lead,
                          int64_t limit, int (*cb)(void *, const void *), void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, k->expiry_due, &st);
    if (rc) return rc;
    kw_db_int(st, 1, now);
    kw_db_int(st, 2, lead);
    kw_db_int(st, 3, limit);
    return key_each_n(st, k, k->n_hot_fields, cb, ctx);
}

static int key_expiry_mark(kw_store *s, const struct key_kind *k, const char *id, kw_time expires_at,
                           kw_time seen, kw_time now)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, k->expiry_mark, &st);
    if (rc) return rc;
    kw_db_text(st, 1, id);
    kw_db_int(st, 2, now);
    kw_db_int(st, 3, expires_at);
    kw_db_int(st, 4, seen);
    return kw_db_exec(st, 1);
}

static int key_update(kw_store *s, const struct key_kind *k, const void *key)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, k->update, &st);
    if (rc) return rc;
    kw_db_bind_row(st, k->update_params, k->n_update_params, key);
    return kw_db_exec(st, 1);
}

static int key_roll(kw_store *s, const struct key_kind *k, int64_t owner, const char *id,
                    const char *secure_value, const char *mask_value, kw_time now)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, k->roll, &st);
    if (rc) return rc;
    kw_db_int(st, 1, owner);
    kw_db_text(st, 2, id);
    kw_db_text(st, 3, secure_value);
    kw_db_text(st, 4, mask_value);
    kw_db_int(st, 5, now);
    return kw_db_exec(st, 1);
}

static int key_delete(kw_store *s, const struct key_kind *k, int64_t owner, const char *id)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, k->del, &st);
    if (rc) return rc;
    kw_db_int(st, 1, owner);
    kw_db_text(st, 2, id);
    return kw_db_exec(st, 1);
}

static int key_touch(kw_store *s, const struct key_kind *k, const char *id, kw_time now,
                     kw_time interval)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, k->touch, &st);
    if (rc) return rc;
    kw_db_text(st, 1, id);
    kw_db_int(st, 2, now);
    kw_db_int(st, 3, interval);
    return kw_db_exec(st, 0);
}

/* ---- the public functions of each kind ------------------------------------ */

/* The operations both kinds have, named per kind: each only picks the
 * kind's descriptor.  A list's callback takes the kind's struct; key_each
 * hands rows on through the small adapter. */
#define KEY_API(name, type, kind)                                                             \
    int kw_store_##name##_insert(kw_store *s, const type *key, int max_per_owner)            \
    {                                                                                         \
        return key_insert(s, &kind, key, max_per_owner);                                      \
    }                                                                                         \
    int kw_store_##name##_get(kw_store *s, int64_t owner, const char *id, type *out)         \
    {                                                                                         \
        return key_get(s, &kind, owner, id, out);                                             \
    }                                                                                         \
    int kw_store_##name##_by_hash(kw_store *s, const char *secure_value, type *out)           \
    {                                                                                         \
        return key_by_hash(s, &kind, secure_value, out);                                      \
    }                                                                                         \
    int kw_store_##name##_update(kw_store *s, const type *key) { return key_update(s, &kind, key); } \
    int kw_store_##name##_roll(kw_store *s, int64_t owner, const char *id,                    \
                               const char *secure_value, const char *mask_value, kw_time now) \
    {                                                                                         \
        return key_roll(s, &kind, owner, id, secure_value, mask_value, now);                  \
    }                                                                                         \
    int kw_store_##name##_delete(kw_store *s, int64_t owner, const char *id)                  \
    {                                                                                         \
        return key_delete(s, &kind, owner, id);                                               \
    }                                                                                         \
    int kw_store_##name##_touch(kw_store *s, const char *id, kw_time now, kw_time interval)   \
    {                                                                                         \
        return key_touch(s, &kind, id, now, interval);                                        \
    }                                                                                         \
    struct name##_list {                                                                      \
        kw_##name##_cb cb;                                                                    \
        void *ctx;                                                                            \
    };                                                                                        \
    static int name##_row(void *arg, const void *row)                                         \
    {                                                                                         \
        struct name##_list *l = arg;                                                          \
        return l->cb(l->ctx, row);                                                            \
    }                                                                                         \
    int kw_store_##name##_expiry_due(kw_store *s, kw_time now, int64_t lead, int64_t limit,   \
                                     kw_##name##_cb cb, void *ctx)                            \
    {                                                                                         \
        struct name##_list l = {cb, ctx};                                                     \
        return key_expiry_due(s, &kind, now, lead, limit, name##_row, &l);                    \
    }                                                                                         \
    int kw_store_##name##_expiry_mark(kw_store *s, const char *id, kw_time expires_at,        \
                                      kw_time seen, kw_time now)                              \
    {                                                                                         \
        return key_expiry_mark(s, &kind, id, expires_at, seen, now);                          \
    }

KEY_API(pkey, kw_pkey, PERSONAL)
KEY_API(psk, kw_psk, SECRET)

/* ---- what only one kind has ------------------------------------------------- */

int kw_store_pkey_list(kw_store *s, int64_t user_id, kw_pkey_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PKEY_LIST, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    struct pkey_list l = {cb, ctx};
    return key_each(st, &PERSONAL, pkey_row, &l);
}

int kw_store_pkey_auth_by_hash(kw_store *s, const char *secure_value, kw_pkey *out, int *active)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PKEY_AUTH_BY_HASH, &st);
    if (rc) return rc;
    kw_db_text(st, 1, secure_value);
    memset(out, 0, sizeof *out);
    if ((rc = kw_db_one(st))) return rc;
    rc = kw_db_read_row(st, PERSONAL.fields, PKEY_HOT_FIELDS, out);
    *active = kw_db_col_int(st, (int)PKEY_HOT_FIELDS) != 0;  /* u.is_active follows the key */
    return kw_db_finish(st, rc);
}

/* The legacy import keeps a key's own id and times: bound as a created
 * key's insert, plus the times a created key does not have yet.  Skips a
 * key already there (KW_ERR_EXISTS, nothing changed). */
static const struct kw_db_param PKEY_IMPORT_TIMES[] = {
    KW_DB_P_OR_NULL(12, I64, kw_pkey, last_used_at),
    KW_DB_P_OR_NULL(13, I64, kw_pkey, last_rolled_at),
};

int kw_store_import_pkey(kw_store *s, const kw_pkey *k)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_IMPORT_PKEY, &st);
    if (rc) return rc;
    kw_db_bind_row(st, PERSONAL.insert_params, PERSONAL.n_insert_params, k);
    kw_db_bind_row(st, KW_DB_FIELDS(PKEY_IMPORT_TIMES), k);
    rc = kw_db_exec(st, 1);
    return rc == KW_ERR_NOTFOUND ? KW_ERR_EXISTS : rc;
}

int kw_store_pkey_rehash(kw_store *s, const char *id, const char *old_value, const char *new_value)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PKEY_REHASH, &st);
    if (rc) return rc;
    kw_db_text(st, 1, id);
    kw_db_text(st, 2, old_value);
    kw_db_text(st, 3, new_value);
    return kw_db_exec(st, 0);
}

int kw_store_pkey_legacy_count(kw_store *s, int64_t *count)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PKEY_LEGACY_COUNT, &st);
    return rc ? rc : kw_db_int_result(st, count);
}

int kw_store_psk_list(kw_store *s, int64_t project_id, int64_t limit, int64_t offset, kw_psk_cb cb,
                      void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PSK_LIST, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    kw_db_int(st, 2, limit);
    kw_db_int(st, 3, offset);
    struct psk_list l = {cb, ctx};
    return key_each(st, &SECRET, psk_row, &l);
}

int kw_store_psk_count(kw_store *s, int64_t project_id, int64_t *count)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PSK_COUNT, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    return kw_db_int_result(st, count);
}
