/* store_sqlite_flags.c — feature flag definitions in the SQLite backend,
 * and the flags generation lib/flagcache.c polls.
 *
 * Kept apart from store_sqlite.c to keep that file readable.  These
 * statements are cached on the thread's connection (kw_sq_flag_stmt): the
 * generation is read at every poll of the flag cache. */
#include "store_backend.h"

#include <sqlite3.h>
#include <string.h>

#include "keyward/keyward.h"

#define FLAG_COLS "id, project_id, key, name, filters, active, deleted, " \
                  "ensure_experience_continuity, version, created_by, created_at, updated_at"

const char *const kw_sq_flag_sql[KW_SQ_FLAG_COUNT_STMTS] = {
    [KW_SQ_FLAG_INSERT] = "INSERT INTO feature_flags(project_id, key, name, filters, active, deleted, "
                          "ensure_experience_continuity, version, created_by, created_at, updated_at) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 1, ?7, ?8, ?8)",
    [KW_SQ_FLAG_GET] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = ?1 AND id = ?2",
    [KW_SQ_FLAG_LIST_NEWEST] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = ?1 "
                               "AND (?2 OR deleted = 0) ORDER BY created_at DESC, id DESC",
    [KW_SQ_FLAG_LIST_BY_KEY] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = ?1 "
                               "AND (?2 OR deleted = 0) ORDER BY key, id",
    [KW_SQ_FLAG_UPDATE] = "UPDATE feature_flags SET key = ?3, name = ?4, filters = ?5, active = ?6, "
                          "deleted = ?7, ensure_experience_continuity = ?8, version = version + 1, "
                          "updated_at = ?9 WHERE project_id = ?1 AND id = ?2",
    [KW_SQ_FLAGS_GENERATION] = "SELECT value FROM kw_meta WHERE name = 'flags_generation'",
};

static int read_flag(sqlite3_stmt *st, kw_flag *f)
{
    memset(f, 0, sizeof *f);
    f->id = sqlite3_column_int64(st, 0);
    f->project_id = sqlite3_column_int64(st, 1);
    kw_sq_copy_col(st, 2, f->key, sizeof f->key);
    kw_sq_copy_col(st, 3, f->name, sizeof f->name);
    f->filters = kw_sq_dup_col(st, 4);
    f->active = sqlite3_column_int(st, 5);
    f->deleted = sqlite3_column_int(st, 6);
    f->ensure_experience_continuity = sqlite3_column_int(st, 7);
    f->version = sqlite3_column_int64(st, 8);
    f->created_by = sqlite3_column_int64(st, 9);
    f->created_at = sqlite3_column_int64(st, 10);
    f->updated_at = sqlite3_column_int64(st, 11);
    return f->filters ? KW_OK : KW_ERR_NOMEM;
}

int kw_sq_flags_generation(kw_store *b, int64_t *generation)
{
    return kw_sq_count(kw_sq_flag_stmt(b, KW_SQ_FLAGS_GENERATION), generation);
}

int kw_sq_flag_insert(kw_store *b, kw_flag *f)
{
    sqlite3_stmt *st = kw_sq_flag_stmt(b, KW_SQ_FLAG_INSERT);
    if (!st) return KW_ERR_DB;
    f->created_at = f->updated_at = kw_now();
    f->version = 1;
    f->deleted = 0;
    sqlite3_bind_int64(st, 1, f->project_id);
    kw_sq_bind_text(st, 2, f->key);
    kw_sq_bind_text(st, 3, f->name);
    kw_sq_bind_text(st, 4, f->filters ? f->filters : "{}");
    sqlite3_bind_int(st, 5, f->active);
    sqlite3_bind_int(st, 6, f->ensure_experience_continuity);
    if (f->created_by)
        sqlite3_bind_int64(st, 7, f->created_by);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int64(st, 8, f->created_at);
    int rc = kw_sq_exec_write(b, st, 0);
    if (!rc) f->id = sqlite3_last_insert_rowid(kw_sq_db(b));
    return rc;
}

int kw_sq_flag_get(kw_store *b, int64_t project_id, int64_t id, kw_flag *out)
{
    sqlite3_stmt *st = kw_sq_flag_stmt(b, KW_SQ_FLAG_GET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_int64(st, 2, id);
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    return kw_sq_finish(st, read_flag(st, out));
}

int kw_sq_flag_list(kw_store *b, int64_t project_id, enum kw_flag_order order, int include_deleted,
                    kw_flag_cb cb, void *ctx)
{
    sqlite3_stmt *st = kw_sq_flag_stmt(b, order == KW_FLAG_BY_KEY ? KW_SQ_FLAG_LIST_BY_KEY
                                                                  : KW_SQ_FLAG_LIST_NEWEST);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_int(st, 2, include_deleted ? 1 : 0);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_flag f;
        stop = read_flag(st, &f);
        if (!stop) stop = cb(ctx, &f);
        kw_flag_clear(&f);
    }
    return kw_sq_finish(st, stop ? stop : kw_sq_map_rc(rc));
}

int kw_sq_flag_update(kw_store *b, kw_flag *f)
{
    sqlite3_stmt *st = kw_sq_flag_stmt(b, KW_SQ_FLAG_UPDATE);
    if (!st) return KW_ERR_DB;
    f->updated_at = kw_now();
    sqlite3_bind_int64(st, 1, f->project_id);
    sqlite3_bind_int64(st, 2, f->id);
    kw_sq_bind_text(st, 3, f->key);
    kw_sq_bind_text(st, 4, f->name);
    kw_sq_bind_text(st, 5, f->filters ? f->filters : "{}");
    sqlite3_bind_int(st, 6, f->active);
    sqlite3_bind_int(st, 7, f->deleted);
    sqlite3_bind_int(st, 8, f->ensure_experience_continuity);
    sqlite3_bind_int64(st, 9, f->updated_at);
    int rc = kw_sq_exec_write(b, st, 1);
    if (!rc) f->version++;
    return rc;
}
