/* store_sqlite_activity.c — the activity log in the SQLite backend.
 *
 * Kept apart from store_sqlite.c to keep that file readable.  The insert is
 * one fixed statement, cached on the thread's connection
 * (kw_sq_activity_stmt) since every audited write makes one; the list and
 * count queries take optional filters, so they are composed per call from
 * fixed fragments and prepared once for that call. */
#include "strbuf.h"
#include "store_backend.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "keyward/keyward.h"

const char *const kw_sq_activity_sql[KW_SQ_ACTIVITY_COUNT_STMTS] = {
    [KW_SQ_ACTIVITY_INSERT] = "INSERT INTO activity_log(id, project_id, org_id, user_id, activity, "
                              "scope, item_id, detail, ip_address, created_at) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
};

int kw_sq_activity_insert(kw_store *b, kw_activity *a)
{
    sqlite3_stmt *st = kw_sq_activity_stmt(b, KW_SQ_ACTIVITY_INSERT);
    if (!st) return KW_ERR_DB;
    if (!a->id[0] && kw_uuid_v4(a->id)) return kw_sq_finish(st, KW_ERR_CRYPTO);
    if (!a->created_at) a->created_at = kw_now();
    kw_sq_bind_text(st, 1, a->id);
    if (a->project_id)
        sqlite3_bind_int64(st, 2, a->project_id);
    else
        sqlite3_bind_null(st, 2);
    kw_sq_bind_text_or_null(st, 3, a->org_id);
    if (a->user_id)
        sqlite3_bind_int64(st, 4, a->user_id);
    else
        sqlite3_bind_null(st, 4);
    kw_sq_bind_text(st, 5, a->activity);
    kw_sq_bind_text(st, 6, a->scope);
    kw_sq_bind_text_or_null(st, 7, a->item_id);
    kw_sq_bind_text(st, 8, a->detail ? a->detail : "{}");
    kw_sq_bind_text_or_null(st, 9, a->ip_address);
    sqlite3_bind_int64(st, 10, a->created_at);
    return kw_sq_exec_write(b, st, 0);
}

/* The activity filters are optional, so the statement is composed from
 * fixed fragments; every value is still a bound parameter. */
static int activity_prepare(kw_store *b, const kw_activity_query *q, int count_only,
                            sqlite3_stmt **out)
{
    char sql[1024];
    kw_strbuf sb;
    kw_sb_init(&sb, sql, sizeof sql);
    kw_sb_appendf(&sb, "%s FROM activity_log WHERE project_id = ?1",
                  count_only ? "SELECT COUNT(*)"
                             : "SELECT id, project_id, org_id, user_id, activity, "
                               "scope, item_id, detail, ip_address, created_at");
    int scope_count = 0;
    if (q->scopes) {
        while (q->scopes[scope_count] && scope_count < 16) scope_count++;
        if (scope_count) {
            kw_sb_append(&sb, " AND scope IN (");
            for (int i = 0; i < scope_count; i++) kw_sb_appendf(&sb, "%s?%d", i ? ", " : "", 10 + i);
            kw_sb_append(&sb, ")");
        }
    }
    if (q->user_id) kw_sb_append(&sb, " AND user_id = ?2");
    if (q->item_id) kw_sb_append(&sb, " AND item_id = ?3");
    if (q->before && !count_only)
        kw_sb_append(&sb, q->ascending ? " AND (created_at > ?4 OR (created_at = ?4 AND id > ?5))"
                                       : " AND (created_at < ?4 OR (created_at = ?4 AND id < ?5))");
    if (!count_only)
        kw_sb_appendf(&sb, " ORDER BY created_at %s, id %s LIMIT ?6 OFFSET ?7",
                      q->ascending ? "ASC" : "DESC", q->ascending ? "ASC" : "DESC");
    if (!kw_sb_ok(&sb)) return KW_ERR_INVALID;
    sqlite3 *db = kw_sq_db(b);
    if (!db) return KW_ERR_DB;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, q->project_id);
    if (q->user_id) sqlite3_bind_int64(st, 2, q->user_id);
    if (q->item_id) kw_sq_bind_text(st, 3, q->item_id);
    if (q->before && !count_only) {
        sqlite3_bind_int64(st, 4, q->before);
        kw_sq_bind_text(st, 5, q->before_id ? q->before_id : (q->ascending ? "" : "~"));
    }
    if (!count_only) {
        sqlite3_bind_int64(st, 6, q->limit > 0 ? q->limit : 100);
        sqlite3_bind_int64(st, 7, q->offset > 0 ? q->offset : 0);
    }
    for (int i = 0; i < scope_count; i++) kw_sq_bind_text(st, 10 + i, q->scopes[i]);
    *out = st;
    return KW_OK;
}

int kw_sq_activity_list(kw_store *b, const kw_activity_query *q, kw_activity_cb cb, void *ctx)
{
    sqlite3_stmt *st;
    int rc = activity_prepare(b, q, 0, &st);
    if (rc) return rc;
    int stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_activity a;
        memset(&a, 0, sizeof a);
        kw_sq_copy_col(st, 0, a.id, sizeof a.id);
        a.project_id = sqlite3_column_int64(st, 1);
        kw_sq_copy_col(st, 2, a.org_id, sizeof a.org_id);
        a.user_id = sqlite3_column_int64(st, 3);
        kw_sq_copy_col(st, 4, a.activity, sizeof a.activity);
        kw_sq_copy_col(st, 5, a.scope, sizeof a.scope);
        kw_sq_copy_col(st, 6, a.item_id, sizeof a.item_id);
        a.detail = kw_sq_dup_col(st, 7);
        kw_sq_copy_col(st, 8, a.ip_address, sizeof a.ip_address);
        a.created_at = sqlite3_column_int64(st, 9);
        stop = a.detail ? cb(ctx, &a) : KW_ERR_NOMEM;
        kw_activity_clear(&a);
    }
    rc = stop ? stop : kw_sq_map_rc(rc);
    sqlite3_finalize(st);
    return rc;
}

int kw_sq_activity_count(kw_store *b, const kw_activity_query *q, int64_t *count)
{
    sqlite3_stmt *st;
    int rc = activity_prepare(b, q, 1, &st);
    if (rc) return rc;
    rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = rc == SQLITE_ROW ? KW_OK : kw_sq_map_rc(rc);
    sqlite3_finalize(st);
    return rc;
}
