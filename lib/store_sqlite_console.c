/* store_sqlite_console.c — the web console's storage in the SQLite backend:
 * password hashes, sessions, invitations, failed sign-ins, server secrets.
 *
 * Kept apart from store_sqlite.c to keep that file readable.  These
 * statements are prepared per call on the thread's connection (kw_sq_db)
 * rather than cached: a sign-in or a session lookup costs a few
 * microseconds more, which is nothing next to argon2id or a network round
 * trip, and this file then needs no slot in the statement cache.  Every
 * value is a bound parameter.  Session and invitation tokens arrive here
 * already hashed (sha256 hex): the plaintext never reaches the database. */
#include "store_backend.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "keyward/keyward.h"

#define SESSION_COLS "s.token_hash, s.user_id, s.created_at, s.last_seen_at, s.expires_at, u.is_active"
#define INVITE_COLS "id, org_id, token_hash, target_email, level, created_by, created_at, " \
                    "expires_at, accepted_at"

/* A statement on the thread's connection, or NULL. */
static sqlite3_stmt *prepare(kw_store *b, const char *sql)
{
    sqlite3 *db = kw_sq_db(b);
    sqlite3_stmt *st = NULL;
    if (!db || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* Runs a write and finalizes; KW_ERR_NOTFOUND when `must_change` and no
 * row changed. */
static int write_done(sqlite3_stmt *st, int must_change)
{
    int rc = sqlite3_step(st);
    int changed = sqlite3_changes(sqlite3_db_handle(st));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return kw_sq_map_rc(rc);
    return must_change && changed == 0 ? KW_ERR_NOTFOUND : KW_OK;
}

/* Steps a one-row query: KW_OK with the row ready, else finalizes. */
static int row_ready(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return KW_OK;
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? KW_ERR_NOTFOUND : kw_sq_map_rc(rc);
}

int kw_sq_user_password_get(kw_store *b, int64_t user_id, char *out)
{
    sqlite3_stmt *st = prepare(b, "SELECT password_hash FROM users WHERE id = ?1");
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    int rc = row_ready(st);
    if (rc) return rc;
    kw_sq_copy_col(st, 0, out, KW_PASSWORD_HASH_MAX + 1);
    sqlite3_finalize(st);
    return KW_OK;
}

int kw_sq_user_password_set(kw_store *b, int64_t user_id, const char *hash)
{
    sqlite3_stmt *st = prepare(b, "UPDATE users SET password_hash = ?2 WHERE id = ?1");
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    if (hash && *hash)
        kw_sq_bind_text(st, 2, hash);
    else
        sqlite3_bind_null(st, 2);
    return write_done(st, 1);
}

int kw_sq_session_insert(kw_store *b, const kw_session *s)
{
    sqlite3_stmt *st = prepare(b, "INSERT INTO sessions(token_hash, user_id, created_at, "
                                  "last_seen_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, s->token_hash);
    sqlite3_bind_int64(st, 2, s->user_id);
    sqlite3_bind_int64(st, 3, s->created_at);
    sqlite3_bind_int64(st, 4, s->last_seen_at);
    sqlite3_bind_int64(st, 5, s->expires_at);
    return write_done(st, 0);
}

int kw_sq_session_get(kw_store *b, const char *token_hash, kw_session *out)
{
    sqlite3_stmt *st = prepare(b, "SELECT " SESSION_COLS " FROM sessions s "
                                  "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, token_hash);
    int rc = row_ready(st);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    kw_sq_copy_col(st, 0, out->token_hash, sizeof out->token_hash);
    out->user_id = sqlite3_column_int64(st, 1);
    out->created_at = sqlite3_column_int64(st, 2);
    out->last_seen_at = sqlite3_column_int64(st, 3);
    out->expires_at = sqlite3_column_int64(st, 4);
    out->user_active = sqlite3_column_int(st, 5);
    sqlite3_finalize(st);
    return KW_OK;
}

int kw_sq_session_touch(kw_store *b, const char *token_hash, kw_time now, kw_time interval)
{
    sqlite3_stmt *st = prepare(b, "UPDATE sessions SET last_seen_at = ?2 WHERE token_hash = ?1 "
                                  "AND last_seen_at <= ?2 - ?3");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, token_hash);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, interval);
    return write_done(st, 0);
}

int kw_sq_session_delete(kw_store *b, const char *token_hash)
{
    sqlite3_stmt *st = prepare(b, "DELETE FROM sessions WHERE token_hash = ?1");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, token_hash);
    return write_done(st, 0);
}

int kw_sq_session_delete_user(kw_store *b, int64_t user_id)
{
    sqlite3_stmt *st = prepare(b, "DELETE FROM sessions WHERE user_id = ?1");
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    return write_done(st, 0);
}

int kw_sq_invite_insert(kw_store *b, const kw_invite *i)
{
    sqlite3_stmt *st = prepare(b, "INSERT INTO invites(" INVITE_COLS ") "
                                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, i->id);
    kw_sq_bind_text(st, 2, i->org_id);
    kw_sq_bind_text(st, 3, i->token_hash);
    kw_sq_bind_text(st, 4, i->target_email);
    sqlite3_bind_int(st, 5, i->level);
    if (i->created_by)
        sqlite3_bind_int64(st, 6, i->created_by);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, i->created_at);
    sqlite3_bind_int64(st, 8, i->expires_at);
    return write_done(st, 0);
}

int kw_sq_invite_by_hash(kw_store *b, const char *token_hash, kw_invite *out)
{
    sqlite3_stmt *st = prepare(b, "SELECT " INVITE_COLS " FROM invites WHERE token_hash = ?1");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, token_hash);
    int rc = row_ready(st);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    kw_sq_copy_col(st, 0, out->id, sizeof out->id);
    kw_sq_copy_col(st, 1, out->org_id, sizeof out->org_id);
    kw_sq_copy_col(st, 2, out->token_hash, sizeof out->token_hash);
    kw_sq_copy_col(st, 3, out->target_email, sizeof out->target_email);
    out->level = sqlite3_column_int(st, 4);
    out->created_by = sqlite3_column_int64(st, 5);
    out->created_at = sqlite3_column_int64(st, 6);
    out->expires_at = sqlite3_column_int64(st, 7);
    out->accepted_at = sqlite3_column_int64(st, 8);
    sqlite3_finalize(st);
    return KW_OK;
}

int kw_sq_invite_accept(kw_store *b, const char *id, kw_time now)
{
    sqlite3_stmt *st = prepare(b, "UPDATE invites SET accepted_at = ?2 WHERE id = ?1 "
                                  "AND accepted_at IS NULL AND expires_at > ?2");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    return write_done(st, 1);
}

int kw_sq_login_failure_add(kw_store *b, const char *key, kw_time now, kw_time keep)
{
    /* Old rows of this key go first, so the table stays the size of the
     * recent failures. */
    sqlite3_stmt *st = prepare(b, "DELETE FROM login_attempts WHERE key = ?1 AND at < ?2");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, now - keep);
    int rc = write_done(st, 0);
    if (rc) return rc;
    st = prepare(b, "INSERT INTO login_attempts(key, at) VALUES (?1, ?2)");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, now);
    return write_done(st, 0);
}

int kw_sq_login_failure_nth(kw_store *b, const char *key, kw_time since, int nth, kw_time *at)
{
    sqlite3_stmt *st = prepare(b, "SELECT at FROM login_attempts WHERE key = ?1 AND at > ?2 "
                                  "ORDER BY at DESC LIMIT 1 OFFSET ?3");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, key);
    sqlite3_bind_int64(st, 2, since);
    sqlite3_bind_int(st, 3, nth > 0 ? nth - 1 : 0);
    *at = 0;
    int rc = row_ready(st);
    if (rc == KW_ERR_NOTFOUND) return KW_OK;
    if (rc) return rc;
    *at = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return KW_OK;
}

int kw_sq_login_failure_clear(kw_store *b, const char *key)
{
    sqlite3_stmt *st = prepare(b, "DELETE FROM login_attempts WHERE key = ?1");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, key);
    return write_done(st, 0);
}

int kw_sq_meta_secret(kw_store *b, const char *name, const char *candidate, char *out, size_t size)
{
    sqlite3_stmt *st = prepare(b, "INSERT INTO kw_meta(name, value, text_value) VALUES (?1, 0, ?2) "
                                  "ON CONFLICT(name) DO NOTHING");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, name);
    kw_sq_bind_text(st, 2, candidate);
    int rc = write_done(st, 0);
    if (rc) return rc;
    st = prepare(b, "SELECT text_value FROM kw_meta WHERE name = ?1");
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, name);
    rc = row_ready(st);
    if (rc) return rc;
    kw_sq_copy_col(st, 0, out, size);
    sqlite3_finalize(st);
    return out[0] ? KW_OK : KW_ERR_DB;
}
