/* store_sqlite_psk.c — project secret API keys in the SQLite backend.
 *
 * Kept apart from store_sqlite.c only to keep that file readable; it uses
 * the same per-thread connection and statement cache through the small
 * kw_sq_* helpers that file exports (see store_backend.h).  As for personal
 * keys, the per-project limit is checked in the INSERT itself (SQLite
 * serializes writers, so one INSERT … SELECT … WHERE count < max is atomic);
 * a duplicate (project_id, label) or secure_value fails the UNIQUE
 * constraint and comes back as KW_ERR_EXISTS. */
#include "store_backend.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

#define PSK_COLS "id, project_id, label, secure_value, mask_value, created_at, created_by, " \
                 "last_used_at, last_rolled_at, scopes, expires_at, rate_limit_per_minute, scopes_used"

const char *const kw_sq_psk_sql[KW_SQ_PSK_COUNT_STMTS] = {
    [KW_SQ_PSK_INSERT] = "INSERT INTO project_secret_api_keys(" PSK_COLS ") "
                         "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, NULL, ?8, ?10, ?11, NULL "
                         "WHERE (SELECT COUNT(*) FROM project_secret_api_keys "
                         "WHERE project_id = ?2) < ?9",
    [KW_SQ_PSK_GET] = "SELECT " PSK_COLS " FROM project_secret_api_keys "
                      "WHERE project_id = ?1 AND id = ?2",
    [KW_SQ_PSK_LIST] = "SELECT " PSK_COLS " FROM project_secret_api_keys WHERE project_id = ?1 "
                       "ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
    [KW_SQ_PSK_COUNT] = "SELECT COUNT(*) FROM project_secret_api_keys WHERE project_id = ?1",
    [KW_SQ_PSK_UPDATE] = "UPDATE project_secret_api_keys SET label = ?3, scopes = ?4, expires_at = ?5, "
                         "rate_limit_per_minute = ?6 "
                         "WHERE project_id = ?1 AND id = ?2",
    [KW_SQ_PSK_ROLL] = "UPDATE project_secret_api_keys SET secure_value = ?3, mask_value = ?4, "
                       "last_rolled_at = ?5 WHERE project_id = ?1 AND id = ?2",
    [KW_SQ_PSK_DELETE] = "DELETE FROM project_secret_api_keys WHERE project_id = ?1 AND id = ?2",
    [KW_SQ_PSK_BY_HASH] = "SELECT " PSK_COLS " FROM project_secret_api_keys WHERE secure_value = ?1",
    [KW_SQ_PSK_TOUCH] = "UPDATE project_secret_api_keys SET last_used_at = ?2 WHERE id = ?1 "
                        "AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
};

static void read_psk(sqlite3_stmt *st, kw_psk *k)
{
    kw_sq_copy_col(st, 0, k->id, sizeof k->id);
    k->project_id = sqlite3_column_int64(st, 1);
    kw_sq_copy_col(st, 2, k->label, sizeof k->label);
    kw_sq_copy_col(st, 3, k->secure_value, sizeof k->secure_value);
    kw_sq_copy_col(st, 4, k->mask_value, sizeof k->mask_value);
    k->created_at = sqlite3_column_int64(st, 5);
    k->created_by = sqlite3_column_int64(st, 6);
    k->last_used_at = sqlite3_column_int64(st, 7);
    k->last_rolled_at = sqlite3_column_int64(st, 8);
    kw_sq_copy_col(st, 9, k->scopes, sizeof k->scopes);
    k->expires_at = sqlite3_column_int64(st, 10);
    k->rate_limit_per_minute = sqlite3_column_int(st, 11);
    kw_sq_copy_col(st, 12, k->scopes_used, sizeof k->scopes_used);
}

static int psk_lookup(sqlite3_stmt *st, kw_psk *out)
{
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    read_psk(st, out);
    return kw_sq_finish(st, KW_OK);
}

int kw_sq_psk_insert(kw_store *b, const kw_psk *k, int max_per_project)
{
    sqlite3_stmt *st = kw_sq_stmt(b, KW_SQ_PSK_INSERT);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, k->id);
    sqlite3_bind_int64(st, 2, k->project_id);
    kw_sq_bind_text(st, 3, k->label);
    kw_sq_bind_text(st, 4, k->secure_value);
    kw_sq_bind_text(st, 5, k->mask_value);
    sqlite3_bind_int64(st, 6, k->created_at);
    if (k->created_by)
        sqlite3_bind_int64(st, 7, k->created_by);
    else
        sqlite3_bind_null(st, 7);
    kw_sq_bind_text(st, 8, k->scopes);
    sqlite3_bind_int(st, 9, max_per_project);
    kw_sq_bind_int64_or_null(st, 10, k->expires_at);
    kw_sq_bind_int64_or_null(st, 11, k->rate_limit_per_minute);
    int rc = kw_sq_exec_write(b, st, 1);
    return rc == KW_ERR_NOTFOUND ? KW_ERR_LIMIT : rc;
}

int kw_sq_psk_get(kw_store *b, int64_t project_id, const char *id, kw_psk *out)
{
    sqlite3_stmt *st = kw_sq_stmt(b, KW_SQ_PSK_GET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    kw_sq_bind_text(st, 2, id);
    return psk_lookup(st, out);
}

int kw_sq_psk_by_hash(kw_store *b, const char *secure_value, kw_psk *out)
{
    sqlite3_stmt *st = kw_sq_stmt(b, KW_SQ_PSK_BY_HASH);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, secure_value);
    return psk_lookup(st, out);
}

int kw_sq_psk_list(kw_store *b, int64_t project_id, int64_t limit, int64_t offset, kw_psk_cb cb,
                   void *ctx)
{
    sqlite3_stmt *st = kw_sq_stmt(b, KW_SQ_PSK_LIST);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    kw_psk *k = malloc(sizeof *k);  /* 4 KiB of scopes: keep it off the callback's stack */
    if (!k) return kw_sq_finish(st, KW_ERR_NOMEM);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_psk(st, k);
        stop = cb(ctx, k);
    }
    free(k);
    return kw_sq_finish(st, stop ? stop : kw_sq_map_rc(rc));
}

int kw_sq_psk_count(kw_store *b, int64_t project_id, int64_t *count)
{
    sqlite3_stmt *st = kw_sq_stmt(b, KW_SQ_PSK_COUNT);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    *count = sqlite3_column_int64(st, 0);
    return kw_sq_finish(st, KW_OK);
}

int kw_sq_psk_update(kw_store *b, const kw_psk *k)
{
    sqlite3_stmt *st = kw_sq_stmt(b, KW_SQ_PSK_UPDATE);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, k->project_id);
    kw_sq_bind_text(st, 2, k->id);
    kw_sq_bind_text(st, 3, k->label);
    kw_sq_bind_text(st, 4, k->scopes);
    kw_sq_bind_int64_or_null(st, 5, k->expires_at);
    kw_sq_bind_int64_or_null(st, 6, k->rate_limit_per_minute);
    return kw_sq_exec_write(b, st, 1);
}

int kw_sq_psk_roll(kw_store *b, int64_t project_id, const char *id, const char *secure_value,
                   const char *mask_value, kw_time now)
{
    sqlite3_stmt *st = kw_sq_stmt(b, KW_SQ_PSK_ROLL);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    kw_sq_bind_text(st, 2, id);
    kw_sq_bind_text(st, 3, secure_value);
    kw_sq_bind_text(st, 4, mask_value);
    sqlite3_bind_int64(st, 5, now);
    return kw_sq_exec_write(b, st, 1);
}

int kw_sq_psk_delete(kw_store *b, int64_t project_id, const char *id)
{
    sqlite3_stmt *st = kw_sq_stmt(b, KW_SQ_PSK_DELETE);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    kw_sq_bind_text(st, 2, id);
    return kw_sq_exec_write(b, st, 1);
}

int kw_sq_psk_touch(kw_store *b, const char *id, kw_time now, kw_time interval)
{
    sqlite3_stmt *st = kw_sq_stmt(b, KW_SQ_PSK_TOUCH);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, interval);
    return kw_sq_exec_write(b, st, 0);
}
