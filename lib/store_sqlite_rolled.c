/* store_sqlite_rolled.c — previous values of rolled keys (SPEC §6, roll with
 * a grace period) in the SQLite backend.
 *
 * The verifier reads this table only after a miss of both key tables and
 * only while kw_store_rolled_live says rows exist, and the writes happen in
 * a roll's transaction: neither is a hot path, so each statement is
 * prepared per call on the thread's connection, as in store_sqlite_life.c,
 * instead of taking slots in the statement cache. */
#include "store_backend.h"

#include <sqlite3.h>
#include <string.h>

#include "keyward/keyward.h"

static const char *kind_text(kw_key_kind kind)
{
    return kind == KW_KEY_SECRET ? "secret" : "personal";
}

static int prepare(kw_store *b, const char *sql, sqlite3_stmt **st)
{
    sqlite3 *db = kw_sq_db(b);
    if (!db || sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) return KW_ERR_DB;
    return KW_OK;
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? KW_OK : kw_sq_map_rc(rc);
}

int kw_sq_rolled_set(kw_store *b, kw_key_kind kind, const char *key_id, const char *secure_value,
                     kw_time expires_at, kw_time now)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "DELETE FROM rolled_key_values WHERE (kind = ?1 AND key_id = ?2) "
                        "OR expires_at <= ?3", &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, kind_text(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if ((rc = step_done(st)) || !secure_value) return rc;
    rc = prepare(b, "INSERT INTO rolled_key_values(secure_value, kind, key_id, expires_at) "
                    "VALUES (?1, ?2, ?3, ?4)", &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, secure_value, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kind_text(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, expires_at);
    return step_done(st);
}

int kw_sq_rolled_get(kw_store *b, const char *secure_value, kw_key_kind *kind,
                     char current[KW_SECURE_MAX + 1], kw_time *expires_at)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "SELECT r.kind, r.expires_at, COALESCE(p.secure_value, s.secure_value) "
                        "FROM rolled_key_values r "
                        "LEFT JOIN personal_api_keys p ON r.kind = 'personal' AND p.id = r.key_id "
                        "LEFT JOIN project_secret_api_keys s ON r.kind = 'secret' AND s.id = r.key_id "
                        "WHERE r.secure_value = ?1", &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, secure_value, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 2) != SQLITE_NULL) {
        const unsigned char *k = sqlite3_column_text(st, 0);
        *kind = k && strcmp((const char *)k, "secret") == 0 ? KW_KEY_SECRET : KW_KEY_PERSONAL;
        *expires_at = sqlite3_column_int64(st, 1);
        kw_sq_copy_col(st, 2, current, KW_SECURE_MAX + 1);
        rc = KW_OK;
    } else {
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? KW_ERR_NOTFOUND : kw_sq_map_rc(rc);
    }
    sqlite3_finalize(st);
    return rc;
}

int kw_sq_rolled_expiry(kw_store *b, kw_key_kind kind, const char *key_id, kw_time now,
                        kw_time *expires_at)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "SELECT COALESCE(MAX(expires_at), 0) FROM rolled_key_values "
                        "WHERE kind = ?1 AND key_id = ?2 AND expires_at > ?3", &st);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, kind_text(kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, key_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    rc = sqlite3_step(st);
    *expires_at = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? KW_OK : kw_sq_map_rc(rc);
}

int kw_sq_rolled_live(kw_store *b, kw_time now, int64_t *count)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "SELECT COUNT(*) FROM rolled_key_values WHERE expires_at > ?1", &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, now);
    rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? KW_OK : kw_sq_map_rc(rc);
}
