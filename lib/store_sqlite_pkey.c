/* store_sqlite_pkey.c — personal API keys in the SQLite backend, and the
 * auth generation the verification caches poll.
 *
 * Kept apart from store_sqlite.c to keep that file readable, as
 * store_sqlite_psk.c is for project keys.  The by-hash lookups are the
 * verification miss path, so every statement here is cached on the
 * thread's connection (kw_sq_pkey_stmt) rather than prepared per call. */
#include "store_backend.h"

#include <sqlite3.h>
#include <stdlib.h>

#include "keyward/keyward.h"

#define PKEY_COLS "id, user_id, label, secure_value, mask_value, created_at, last_used_at, " \
                  "last_rolled_at, scopes, scoped_teams, scoped_organizations, expires_at, " \
                  "rate_limit_per_minute, scopes_used"

const char *const kw_sq_pkey_sql[KW_SQ_PKEY_COUNT_STMTS] = {
    /* The count check and the insert are one statement, so two concurrent
     * creations cannot both pass a limit of 10. */
    [KW_SQ_PKEY_INSERT] = "INSERT INTO personal_api_keys(" PKEY_COLS ") "
                          "SELECT ?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, ?7, ?8, ?9, ?11, ?12, NULL "
                          "WHERE (SELECT COUNT(*) FROM personal_api_keys WHERE user_id = ?2) < ?10",
    [KW_SQ_PKEY_GET] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE user_id = ?1 AND id = ?2",
    [KW_SQ_PKEY_LIST] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE user_id = ?1 "
                        "ORDER BY created_at DESC, id DESC",
    [KW_SQ_PKEY_UPDATE] = "UPDATE personal_api_keys SET label = ?3, scopes = ?4, scoped_teams = ?5, "
                          "scoped_organizations = ?6, expires_at = ?7, rate_limit_per_minute = ?8 "
                          "WHERE user_id = ?1 AND id = ?2",
    [KW_SQ_PKEY_ROLL] = "UPDATE personal_api_keys SET secure_value = ?3, mask_value = ?4, "
                        "last_rolled_at = ?5 WHERE user_id = ?1 AND id = ?2",
    [KW_SQ_PKEY_DELETE] = "DELETE FROM personal_api_keys WHERE user_id = ?1 AND id = ?2",
    [KW_SQ_PKEY_BY_HASH] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE secure_value = ?1",
    [KW_SQ_PKEY_TOUCH] = "UPDATE personal_api_keys SET last_used_at = ?2 WHERE id = ?1 "
                         "AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
    [KW_SQ_PKEY_REHASH] = "UPDATE personal_api_keys SET secure_value = ?3 "
                          "WHERE id = ?1 AND secure_value = ?2",
    /* A range on the unique index: O(log n), not a scan, since it is
     * asked again whenever a legacy-length key misses. */
    [KW_SQ_PKEY_LEGACY_COUNT] = "SELECT COUNT(*) FROM personal_api_keys "
                                "WHERE secure_value >= 'pbkdf2_sha256$' AND secure_value < 'pbkdf2_sha256%'",
    [KW_SQ_AUTH_GENERATION] = "SELECT value FROM kw_meta WHERE name = 'auth_generation'",
    /* The verification miss path: key and owner's active flag in one read
     * transaction (one WAL read-lock round instead of two). */
    [KW_SQ_PKEY_AUTH_BY_HASH] = "SELECT k.id, k.user_id, k.label, k.secure_value, k.mask_value, "
                                "k.created_at, k.last_used_at, k.last_rolled_at, k.scopes, "
                                "k.scoped_teams, k.scoped_organizations, k.expires_at, "
                                "k.rate_limit_per_minute, k.scopes_used, u.is_active "
                                "FROM personal_api_keys k JOIN users u ON u.id = k.user_id "
                                "WHERE k.secure_value = ?1",
};

static void read_pkey(sqlite3_stmt *st, kw_pkey *k)
{
    kw_sq_copy_col(st, 0, k->id, sizeof k->id);
    k->user_id = sqlite3_column_int64(st, 1);
    kw_sq_copy_col(st, 2, k->label, sizeof k->label);
    kw_sq_copy_col(st, 3, k->secure_value, sizeof k->secure_value);
    kw_sq_copy_col(st, 4, k->mask_value, sizeof k->mask_value);
    k->created_at = sqlite3_column_int64(st, 5);
    k->last_used_at = sqlite3_column_int64(st, 6);
    k->last_rolled_at = sqlite3_column_int64(st, 7);
    kw_sq_copy_col(st, 8, k->scopes, sizeof k->scopes);
    kw_sq_copy_col(st, 9, k->scoped_teams, sizeof k->scoped_teams);
    kw_sq_copy_col(st, 10, k->scoped_orgs, sizeof k->scoped_orgs);
    k->expires_at = sqlite3_column_int64(st, 11);
    k->rate_limit_per_minute = sqlite3_column_int(st, 12);
    kw_sq_copy_col(st, 13, k->scopes_used, sizeof k->scopes_used);
}

int kw_sq_pkey_insert(kw_store *b, const kw_pkey *k, int max_per_user)
{
    sqlite3_stmt *st = kw_sq_pkey_stmt(b, KW_SQ_PKEY_INSERT);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, k->id);
    sqlite3_bind_int64(st, 2, k->user_id);
    kw_sq_bind_text(st, 3, k->label);
    kw_sq_bind_text(st, 4, k->secure_value);
    kw_sq_bind_text(st, 5, k->mask_value);
    sqlite3_bind_int64(st, 6, k->created_at);
    kw_sq_bind_text_or_null(st, 7, k->scopes);
    kw_sq_bind_text_or_null(st, 8, k->scoped_teams);
    kw_sq_bind_text_or_null(st, 9, k->scoped_orgs);
    sqlite3_bind_int(st, 10, max_per_user);
    kw_sq_bind_int64_or_null(st, 11, k->expires_at);
    kw_sq_bind_int64_or_null(st, 12, k->rate_limit_per_minute);
    int rc = kw_sq_exec_write(b, st, 1);
    return rc == KW_ERR_NOTFOUND ? KW_ERR_LIMIT : rc;
}

static int pkey_lookup(sqlite3_stmt *st, kw_pkey *out)
{
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    read_pkey(st, out);
    return kw_sq_finish(st, KW_OK);
}

int kw_sq_pkey_get(kw_store *b, int64_t user_id, const char *id, kw_pkey *out)
{
    sqlite3_stmt *st = kw_sq_pkey_stmt(b, KW_SQ_PKEY_GET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    kw_sq_bind_text(st, 2, id);
    return pkey_lookup(st, out);
}

int kw_sq_pkey_by_hash(kw_store *b, const char *secure_value, kw_pkey *out)
{
    sqlite3_stmt *st = kw_sq_pkey_stmt(b, KW_SQ_PKEY_BY_HASH);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, secure_value);
    return pkey_lookup(st, out);
}

int kw_sq_pkey_auth_by_hash(kw_store *b, const char *secure_value, kw_pkey *out, int *active)
{
    sqlite3_stmt *st = kw_sq_pkey_stmt(b, KW_SQ_PKEY_AUTH_BY_HASH);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, secure_value);
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    read_pkey(st, out);
    *active = sqlite3_column_int(st, 14) != 0;
    return kw_sq_finish(st, KW_OK);
}

int kw_sq_pkey_list(kw_store *b, int64_t user_id, kw_pkey_cb cb, void *ctx)
{
    sqlite3_stmt *st = kw_sq_pkey_stmt(b, KW_SQ_PKEY_LIST);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    kw_pkey *k = malloc(sizeof *k);  /* 12 KiB: keep it off the callback's stack */
    if (!k) return kw_sq_finish(st, KW_ERR_NOMEM);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_pkey(st, k);
        stop = cb(ctx, k);
    }
    free(k);
    return kw_sq_finish(st, stop ? stop : kw_sq_map_rc(rc));
}

int kw_sq_pkey_update(kw_store *b, const kw_pkey *k)
{
    sqlite3_stmt *st = kw_sq_pkey_stmt(b, KW_SQ_PKEY_UPDATE);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, k->user_id);
    kw_sq_bind_text(st, 2, k->id);
    kw_sq_bind_text(st, 3, k->label);
    kw_sq_bind_text_or_null(st, 4, k->scopes);
    kw_sq_bind_text_or_null(st, 5, k->scoped_teams);
    kw_sq_bind_text_or_null(st, 6, k->scoped_orgs);
    kw_sq_bind_int64_or_null(st, 7, k->expires_at);
    kw_sq_bind_int64_or_null(st, 8, k->rate_limit_per_minute);
    return kw_sq_exec_write(b, st, 1);
}

int kw_sq_pkey_roll(kw_store *b, int64_t user_id, const char *id, const char *secure_value,
                    const char *mask_value, kw_time now)
{
    sqlite3_stmt *st = kw_sq_pkey_stmt(b, KW_SQ_PKEY_ROLL);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    kw_sq_bind_text(st, 2, id);
    kw_sq_bind_text(st, 3, secure_value);
    kw_sq_bind_text(st, 4, mask_value);
    sqlite3_bind_int64(st, 5, now);
    return kw_sq_exec_write(b, st, 1);
}

int kw_sq_pkey_delete(kw_store *b, int64_t user_id, const char *id)
{
    sqlite3_stmt *st = kw_sq_pkey_stmt(b, KW_SQ_PKEY_DELETE);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    kw_sq_bind_text(st, 2, id);
    return kw_sq_exec_write(b, st, 1);
}

int kw_sq_pkey_touch(kw_store *b, const char *id, kw_time now, kw_time interval)
{
    sqlite3_stmt *st = kw_sq_pkey_stmt(b, KW_SQ_PKEY_TOUCH);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, interval);
    return kw_sq_exec_write(b, st, 0);
}

int kw_sq_pkey_rehash(kw_store *b, const char *id, const char *old_value, const char *new_value)
{
    sqlite3_stmt *st = kw_sq_pkey_stmt(b, KW_SQ_PKEY_REHASH);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, id);
    kw_sq_bind_text(st, 2, old_value);
    kw_sq_bind_text(st, 3, new_value);
    return kw_sq_exec_write(b, st, 0);
}

int kw_sq_pkey_legacy_count(kw_store *b, int64_t *count)
{
    return kw_sq_count(kw_sq_pkey_stmt(b, KW_SQ_PKEY_LEGACY_COUNT), count);
}

int kw_sq_auth_generation(kw_store *b, int64_t *generation)
{
    return kw_sq_count(kw_sq_pkey_stmt(b, KW_SQ_AUTH_GENERATION), generation);
}
