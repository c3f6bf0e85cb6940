/* console.c — the web console's storage, written once for both databases:
 * password hashes, sessions, invitations, failed sign-ins and the server's
 * named secrets.
 *
 * Session and invitation tokens arrive here already hashed (sha256 hex):
 * the plaintext never reaches the database.  A session is read with its
 * user's active flag in one query, so a deactivated user's session stops
 * working without a second read. */
#include <stddef.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store/db.h"

static const struct kw_db_field SESSION_FIELDS[] = {
    KW_DB_TEXT(kw_session, token_hash), KW_DB_I64(kw_session, user_id),
    KW_DB_I64(kw_session, created_at),  KW_DB_I64(kw_session, last_seen_at),
    KW_DB_I64(kw_session, expires_at),  KW_DB_INT(kw_session, user_active),
};

static const struct kw_db_param SESSION_INSERT[] = {
    KW_DB_P(1, TEXT, kw_session, token_hash), KW_DB_P(2, I64, kw_session, user_id),
    KW_DB_P(3, I64, kw_session, created_at),  KW_DB_P(4, I64, kw_session, last_seen_at),
    KW_DB_P(5, I64, kw_session, expires_at),
};

static const struct kw_db_field INVITE_FIELDS[] = {
    KW_DB_TEXT(kw_invite, id),           KW_DB_TEXT(kw_invite, org_id),
    KW_DB_TEXT(kw_invite, token_hash),   KW_DB_TEXT(kw_invite, target_email),
    KW_DB_INT(kw_invite, level),         KW_DB_I64(kw_invite, created_by),
    KW_DB_I64(kw_invite, created_at),    KW_DB_I64(kw_invite, expires_at),
    KW_DB_I64(kw_invite, accepted_at),
};

static const struct kw_db_param INVITE_INSERT[] = {
    KW_DB_P(1, TEXT, kw_invite, id),           KW_DB_P(2, TEXT, kw_invite, org_id),
    KW_DB_P(3, TEXT, kw_invite, token_hash),   KW_DB_P(4, TEXT, kw_invite, target_email),
    KW_DB_P(5, INT, kw_invite, level),         KW_DB_P_OR_NULL(6, I64, kw_invite, created_by),
    KW_DB_P(7, I64, kw_invite, created_at),    KW_DB_P(8, I64, kw_invite, expires_at),
};

/* A write whose only parameter is one text (a token hash, a key). */
static int write_text(kw_store *s, enum kw_sql_id id, const char *text)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, id, &st);
    if (rc) return rc;
    kw_db_text(st, 1, text);
    return kw_db_exec(st, 0);
}

/* An insert of obj, bound by its parameter table. */
static int insert_row(kw_store *s, enum kw_sql_id id, const struct kw_db_param *params, size_t n,
                      const void *obj)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, id, &st);
    if (rc) return rc;
    kw_db_bind_row(st, params, n, obj);
    return kw_db_exec(st, 0);
}

/* A single-row read by one text, decoded into obj. */
static int read_by_text(kw_store *s, enum kw_sql_id id, const char *text,
                        const struct kw_db_field *fields, size_t n, void *obj, size_t size)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, id, &st);
    if (rc) return rc;
    kw_db_text(st, 1, text);
    if ((rc = kw_db_one(st))) return rc;
    memset(obj, 0, size);
    return kw_db_finish(st, kw_db_read_row(st, fields, n, obj));
}

/* ---- passwords ------------------------------------------------------------ */

int kw_store_user_password_get(kw_store *s, int64_t user_id, char out[KW_PASSWORD_HASH_MAX + 1])
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PASSWORD_GET, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    if ((rc = kw_db_one(st))) return rc;
    kw_db_col_copy(st, 0, out, KW_PASSWORD_HASH_MAX + 1);
    return kw_db_finish(st, KW_OK);
}

int kw_store_user_password_set(kw_store *s, int64_t user_id, const char *hash)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PASSWORD_SET, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    kw_db_text_or_null(st, 2, hash);
    return kw_db_exec(st, 1);
}

/* ---- sessions ------------------------------------------------------------- */

int kw_store_session_insert(kw_store *s, const kw_session *session)
{
    return insert_row(s, KW_SQL_SESSION_INSERT, KW_DB_FIELDS(SESSION_INSERT), session);
}

int kw_store_session_get(kw_store *s, const char *token_hash, kw_session *out)
{
    return read_by_text(s, KW_SQL_SESSION_GET, token_hash, KW_DB_FIELDS(SESSION_FIELDS), out,
                        sizeof *out);
}

int kw_store_session_touch(kw_store *s, const char *token_hash, kw_time now, kw_time interval)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_SESSION_TOUCH, &st);
    if (rc) return rc;
    kw_db_text(st, 1, token_hash);
    kw_db_int(st, 2, now);
    kw_db_int(st, 3, interval);
    return kw_db_exec(st, 0);
}

int kw_store_session_delete(kw_store *s, const char *token_hash)
{
    return write_text(s, KW_SQL_SESSION_DELETE, token_hash);
}

int kw_store_session_delete_user(kw_store *s, int64_t user_id)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_SESSION_DELETE_USER, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    return kw_db_exec(st, 0);
}

int kw_store_session_prune_user(kw_store *s, int64_t user_id, kw_time now, kw_time idle, int keep)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_SESSION_PRUNE_USER, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    kw_db_int(st, 2, now);
    kw_db_int(st, 3, now - idle);
    kw_db_int(st, 4, keep);
    return kw_db_exec(st, 0);
}

/* ---- invitations ---------------------------------------------------------- */

int kw_store_invite_insert(kw_store *s, const kw_invite *invite)
{
    return insert_row(s, KW_SQL_INVITE_INSERT, KW_DB_FIELDS(INVITE_INSERT), invite);
}

int kw_store_invite_by_hash(kw_store *s, const char *token_hash, kw_invite *out)
{
    return read_by_text(s, KW_SQL_INVITE_BY_HASH, token_hash, KW_DB_FIELDS(INVITE_FIELDS), out,
                        sizeof *out);
}

int kw_store_invite_accept(kw_store *s, const char *id, kw_time now)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_INVITE_ACCEPT, &st);
    if (rc) return rc;
    kw_db_text(st, 1, id);
    kw_db_int(st, 2, now);
    return kw_db_exec(st, 1);
}

int kw_store_invite_list(kw_store *s, const char *org_id, kw_time now, int64_t limit,
                         int64_t offset, kw_invite_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_INVITE_LIST, &st);
    if (rc) return rc;
    kw_db_text(st, 1, org_id);
    kw_db_int(st, 2, now);
    kw_db_int(st, 3, limit);
    kw_db_int(st, 4, offset);
    kw_invite inv;
    while ((rc = kw_db_next(st, KW_DB_FIELDS(INVITE_FIELDS), &inv)) == KW_DB_ROW)
        if ((rc = cb(ctx, &inv))) break;
    return kw_db_finish(st, rc);
}

int kw_store_invite_count(kw_store *s, const char *org_id, kw_time now, int64_t *count)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_INVITE_COUNT, &st);
    if (rc) return rc;
    kw_db_text(st, 1, org_id);
    kw_db_int(st, 2, now);
    return kw_db_int_result(st, count);
}

int kw_store_invite_delete(kw_store *s, const char *id, const char *org_id, kw_time now,
                           kw_invite *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_INVITE_DELETE, &st);
    if (rc) return rc;
    kw_db_text(st, 1, id);
    kw_db_text(st, 2, org_id);
    kw_db_int(st, 3, now);
    if ((rc = kw_db_one(st))) return rc;
    memset(out, 0, sizeof *out);
    return kw_db_finish(st, kw_db_read_row(st, KW_DB_FIELDS(INVITE_FIELDS), out));
}

/* ---- failed sign-ins ------------------------------------------------------ */

/* A key's rows older than `keep` go first, so the table stays the size of
 * the recent failures. */
int kw_store_login_failure_add(kw_store *s, const char *key, kw_time now, kw_time keep)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_LOGIN_FAILURE_PRUNE, &st);
    if (rc) return rc;
    kw_db_text(st, 1, key);
    kw_db_int(st, 2, now - keep);
    if ((rc = kw_db_exec(st, 0))) return rc;
    if ((rc = kw_db_prepare(s, KW_SQL_LOGIN_FAILURE_INSERT, &st))) return rc;
    kw_db_text(st, 1, key);
    kw_db_int(st, 2, now);
    return kw_db_exec(st, 0);
}

int kw_store_login_failure_nth(kw_store *s, const char *key, kw_time since, int nth, kw_time *at)
{
    *at = 0;
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_LOGIN_FAILURE_NTH, &st);
    if (rc) return rc;
    kw_db_text(st, 1, key);
    kw_db_int(st, 2, since);
    kw_db_int(st, 3, nth > 0 ? nth - 1 : 0);
    rc = kw_db_int_result(st, at);
    return rc == KW_ERR_NOTFOUND ? KW_OK : rc;  /* fewer than nth: 0 */
}

int kw_store_login_failure_clear(kw_store *s, const char *key)
{
    return write_text(s, KW_SQL_LOGIN_FAILURE_CLEAR, key);
}

int kw_store_login_failure_sweep(kw_store *s, kw_time before, int64_t limit, int64_t *removed)
{
    *removed = 0;
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_LOGIN_FAILURE_SWEEP, &st);
    if (rc) return rc;
    kw_db_int(st, 1, before);
    kw_db_int(st, 2, limit);
    while ((rc = kw_db_step(st)) == KW_DB_ROW) {
    }
    if (!rc) *removed = kw_db_changes(st);
    return kw_db_finish(st, rc);
}

/* ---- named server secrets ------------------------------------------------- */

/* Insert-if-absent, then read back: every instance sharing the database
 * ends up with the first writer's value. */
int kw_store_meta_secret(kw_store *s, const char *name, const char *candidate, char *out,
                         size_t size)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_META_SECRET_INSERT, &st);
    if (rc) return rc;
    kw_db_text(st, 1, name);
    kw_db_text(st, 2, candidate);
    if ((rc = kw_db_exec(st, 0))) return rc;
    if ((rc = kw_db_prepare(s, KW_SQL_META_SECRET_GET, &st))) return rc;
    kw_db_text(st, 1, name);
    if ((rc = kw_db_one(st))) return rc;
    kw_db_col_copy(st, 0, out, size);
    kw_db_finish(st, KW_OK);
    return out[0] ? KW_OK : KW_ERR_DB;
}
