/* store_pg_activity.c — the activity log of the PostgreSQL backend.
 *
 * The insert is one fixed statement of store_pg.c's table
 * (KW_PG_ACTIVITY_INSERT), prepared once per connection.
 * kw_store_activity_list/count take optional filters (scopes, user, item,
 * cursor), so unlike every other query their SQL is not one fixed prepared
 * statement: it is composed here from fixed fragments, and every value is a
 * bound $n parameter.  Kept apart from store_pg.c, which holds the fixed
 * statements, to keep both files short. */
#include "strbuf.h"
#include "store_pg.h"

#include <stdio.h>
#include <string.h>

#include "keyward/keyward.h"

#define ACTIVITY_COLS "id, project_id, org_id, user_id, activity, scope, item_id, detail, " \
                      "ip_address, created_at"

int kw_pg_activity_insert(kw_store *b, kw_activity *a)
{
    if (!a->id[0] && kw_uuid_v4(a->id)) return KW_ERR_CRYPTO;
    if (!a->created_at) a->created_at = kw_now();
    struct pg_params p = {0};
    kw_pg_text(&p, a->id);
    kw_pg_int_or_null(&p, a->project_id);
    kw_pg_text_or_null(&p, a->org_id);
    kw_pg_int_or_null(&p, a->user_id);
    kw_pg_text(&p, a->activity);
    kw_pg_text(&p, a->scope);
    kw_pg_text_or_null(&p, a->item_id);
    kw_pg_text(&p, a->detail ? a->detail : "{}");
    kw_pg_text_or_null(&p, a->ip_address);
    kw_pg_int(&p, a->created_at);
    return kw_pg_write((struct pg_store *)b, KW_PG_ACTIVITY_INSERT, &p, 0);
}

static int read_activity(const PGresult *r, int i, kw_activity *a)
{
    memset(a, 0, sizeof *a);
    kw_pg_col_copy(r, i, 0, a->id, sizeof a->id);
    a->project_id = kw_pg_col_int(r, i, 1);
    kw_pg_col_copy(r, i, 2, a->org_id, sizeof a->org_id);
    a->user_id = kw_pg_col_int(r, i, 3);
    kw_pg_col_copy(r, i, 4, a->activity, sizeof a->activity);
    kw_pg_col_copy(r, i, 5, a->scope, sizeof a->scope);
    kw_pg_col_copy(r, i, 6, a->item_id, sizeof a->item_id);
    a->detail = kw_pg_col_dup(r, i, 7);
    kw_pg_col_copy(r, i, 8, a->ip_address, sizeof a->ip_address);
    a->created_at = kw_pg_col_int(r, i, 9);
    return a->detail ? KW_OK : KW_ERR_NOMEM;
}

/* The activity filters are optional, so the statement is composed from
 * fixed fragments; every value is a bound parameter, numbered in the order
 * it is added (PostgreSQL rejects parameters a statement does not use).
 * The varying shapes are run with PQexecParams rather than prepared. */
static int activity_sql(const kw_activity_query *q, int count_only, char *sql, size_t size,
                        struct pg_params *p)
{
    kw_strbuf sb;
    kw_sb_init(&sb, sql, size);
    kw_sb_appendf(&sb, "SELECT %s FROM activity_log WHERE project_id = $1",
                  count_only ? "COUNT(*)" : ACTIVITY_COLS);
    kw_pg_int(p, q->project_id);
    int scope_count = 0;
    if (q->scopes)
        while (q->scopes[scope_count] && scope_count < 16) scope_count++;
    if (scope_count) {
        kw_sb_append(&sb, " AND scope IN (");
        for (int i = 0; i < scope_count; i++) {
            kw_pg_text(p, q->scopes[i]);
            kw_sb_appendf(&sb, "%s$%d", i ? ", " : "", p->n);
        }
        kw_sb_append(&sb, ")");
    }
    if (q->user_id) {
        kw_pg_int(p, q->user_id);
        kw_sb_appendf(&sb, " AND user_id = $%d", p->n);
    }
    if (q->item_id) {
        kw_pg_text(p, q->item_id);
        kw_sb_appendf(&sb, " AND item_id = $%d", p->n);
    }
    if (q->before && !count_only) {
        /* Same cursor as SQLite: without before_id, "" / "~" sort before /
         * after every id (ids are COLLATE "C"). */
        kw_pg_int(p, q->before);
        kw_pg_text(p, q->before_id ? q->before_id : (q->ascending ? "" : "~"));
        kw_sb_appendf(&sb,
                      q->ascending ? " AND (created_at > $%d OR (created_at = $%d AND id > $%d))"
                                   : " AND (created_at < $%d OR (created_at = $%d AND id < $%d))",
                      p->n - 1, p->n - 1, p->n);
    }
    if (!count_only) {
        kw_pg_int(p, q->limit > 0 ? q->limit : 100);
        kw_pg_int(p, q->offset > 0 ? q->offset : 0);
        kw_sb_appendf(&sb, " ORDER BY created_at %s, id %s LIMIT $%d OFFSET $%d",
                      q->ascending ? "ASC" : "DESC", q->ascending ? "ASC" : "DESC", p->n - 1, p->n);
    }
    return kw_sb_ok(&sb) ? KW_OK : KW_ERR_INVALID;
}

int kw_pg_activity_list(kw_store *b, const kw_activity_query *q, kw_activity_cb cb, void *ctx)
{
    char sql[1024];
    struct pg_params p = {0};
    int rc = activity_sql(q, 0, sql, sizeof sql, &p);
    PGresult *r;
    if (!rc) rc = kw_pg_run_sql((struct pg_store *)b, sql, &p, &r);
    if (rc) return rc;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        kw_activity a;
        rc = read_activity(r, i, &a);
        if (!rc) rc = cb(ctx, &a);
        kw_activity_clear(&a);
    }
    PQclear(r);
    return rc;
}

int kw_pg_activity_count(kw_store *b, const kw_activity_query *q, int64_t *count)
{
    char sql[1024];
    struct pg_params p = {0};
    int rc = activity_sql(q, 1, sql, sizeof sql, &p);
    PGresult *r;
    *count = 0;
    if (!rc) rc = kw_pg_run_sql((struct pg_store *)b, sql, &p, &r);
    if (rc) return rc;
    if (PQntuples(r) == 1) *count = kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}
