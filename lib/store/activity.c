/* activity.c — the activity log (who changed what, when), written once for
 * both databases.
 *
 * Every audited write inserts one entry through the fixed statement of the
 * table.  Listing and counting take optional filters (scopes, user, item,
 * a cursor), so their SQL is put together per call from fixed fragments
 * chosen by which filters are set — never from values: every value is a
 * bound parameter.  Parameters are numbered in the order they appear, with
 * none left unused, because PostgreSQL refuses a parameter a statement
 * does not mention. */
#include <stddef.h>
#include <stdlib.h>

#include "keyward/keyward.h"
#include "store/db.h"
#include "keyward/strbuf.h"

#define ACTIVITY_COLS "id, project_id, org_id, user_id, activity, scope, item_id, detail, " \
                      "ip_address, created_at"
#define MAX_SCOPES 16 /* scopes past these are ignored (the HTTP handler passes at most 16) */

/* The columns of ACTIVITY_COLS, in order. */
static const struct kw_db_field ACTIVITY_FIELDS[] = {
    KW_DB_TEXT(kw_activity, id),       KW_DB_I64(kw_activity, project_id),
    KW_DB_TEXT(kw_activity, org_id),   KW_DB_I64(kw_activity, user_id),
    KW_DB_TEXT(kw_activity, activity), KW_DB_TEXT(kw_activity, scope),
    KW_DB_TEXT(kw_activity, item_id),  KW_DB_DUP(kw_activity, detail),
    KW_DB_TEXT(kw_activity, ip_address), KW_DB_I64(kw_activity, created_at),
};

/* detail binds apart: an entry without one is stored as "{}". */
static const struct kw_db_param ACTIVITY_INSERT[] = {
    KW_DB_P(1, TEXT, kw_activity, id),
    KW_DB_P_OR_NULL(2, I64, kw_activity, project_id),
    KW_DB_P_OR_NULL(3, TEXT, kw_activity, org_id),
    KW_DB_P_OR_NULL(4, I64, kw_activity, user_id),
    KW_DB_P(5, TEXT, kw_activity, activity),
    KW_DB_P(6, TEXT, kw_activity, scope),
    KW_DB_P_OR_NULL(7, TEXT, kw_activity, item_id),
    KW_DB_P_OR_NULL(9, TEXT, kw_activity, ip_address),
    KW_DB_P(10, I64, kw_activity, created_at),
};

void kw_activity_clear(kw_activity *entry)
{
    free(entry->detail);
    entry->detail = NULL;
}

int kw_store_activity_insert(kw_store *s, kw_activity *a)
{
    if (!a->id[0] && kw_uuid_v4(a->id)) return KW_ERR_CRYPTO;
    if (!a->created_at) a->created_at = kw_now();
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_ACTIVITY_INSERT, &st);
    if (rc) return rc;
    kw_db_bind_row(st, KW_DB_FIELDS(ACTIVITY_INSERT), a);
    kw_db_text(st, 8, a->detail ? a->detail : "{}");
    return kw_db_exec(st, 0);
}

/* ---- list and count -------------------------------------------------------- */

/* The values of one query, in parameter order (?1 is v[0]): the project,
 * up to MAX_SCOPES scopes, user, item, the cursor's two, limit, offset. */
struct activity_params {
    int n;
    struct {
        const char *text;  /* NULL: num */
        int64_t num;
    } v[1 + MAX_SCOPES + 6];
};

/* Each adds a value and returns its parameter number. */
static int push_int(struct activity_params *p, int64_t v)
{
    p->v[p->n].text = NULL;
    p->v[p->n].num = v;
    return ++p->n;
}

static int push_text(struct activity_params *p, const char *v)
{
    p->v[p->n].text = v;
    p->v[p->n].num = 0;
    return ++p->n;
}

/* Builds and prepares the list (count_only = 0) or count statement of q,
 * with its values bound.  The count ignores the cursor, the order and the
 * page. */
static int activity_prepare(kw_store *s, const kw_activity_query *q, int count_only,
                            kw_db_stmt **out)
{
    char sql[1024];
    kw_strbuf sb;
    struct activity_params p = {0};
    kw_sb_init(&sb, sql, sizeof sql);
    kw_sb_appendf(&sb, "SELECT %s FROM activity_log WHERE project_id = ?%d",
                  count_only ? "COUNT(*)" : ACTIVITY_COLS, push_int(&p, q->project_id));
    int scopes = 0;
    while (q->scopes && q->scopes[scopes] && scopes < MAX_SCOPES) {
        kw_sb_appendf(&sb, "%s?%d", scopes ? ", " : " AND scope IN (",
                      push_text(&p, q->scopes[scopes]));
        scopes++;
    }
    if (scopes) kw_sb_append(&sb, ")");
    if (q->user_id) kw_sb_appendf(&sb, " AND user_id = ?%d", push_int(&p, q->user_id));
    if (q->item_id) kw_sb_appendf(&sb, " AND item_id = ?%d", push_text(&p, q->item_id));
    if (q->before && !count_only) {
        /* Strictly past (before, before_id) in the listing's direction;
         * without before_id, "" and "~" sort before and after every id
         * (ids compare bytewise), so the whole instant is included. */
        const char *op = q->ascending ? ">" : "<";
        int at = push_int(&p, q->before);
        int id = push_text(&p, q->before_id ? q->before_id : q->ascending ? "" : "~");
        kw_sb_appendf(&sb, " AND (created_at %s ?%d OR (created_at = ?%d AND id %s ?%d))", op, at,
                      at, op, id);
    }
    if (!count_only) {
        const char *dir = q->ascending ? "ASC" : "DESC";
        int limit = push_int(&p, q->limit > 0 ? q->limit : 100);
        int offset = push_int(&p, q->offset > 0 ? q->offset : 0);
        kw_sb_appendf(&sb, " ORDER BY created_at %s, id %s LIMIT ?%d OFFSET ?%d", dir, dir, limit,
                      offset);
    }
    if (!kw_sb_ok(&sb)) return KW_ERR_INVALID;
    kw_db_stmt *st;
    int rc = kw_db_prepare_sql(s, sql, &st);
    if (rc) return rc;
    for (int i = 0; i < p.n; i++) {
        if (p.v[i].text)
            kw_db_text(st, i + 1, p.v[i].text);
        else
            kw_db_int(st, i + 1, p.v[i].num);
    }
    *out = st;
    return KW_OK;
}

int kw_store_activity_list(kw_store *s, const kw_activity_query *q, kw_activity_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = activity_prepare(s, q, 0, &st);
    if (rc) return rc;
    kw_activity a = {0};
    while ((rc = kw_db_next(st, KW_DB_FIELDS(ACTIVITY_FIELDS), &a)) == KW_DB_ROW) {
        rc = cb(ctx, &a);
        kw_activity_clear(&a);
        if (rc) break;
    }
    kw_activity_clear(&a);  /* a row whose detail could not be copied */
    return kw_db_finish(st, rc);
}

int kw_store_activity_count(kw_store *s, const kw_activity_query *q, int64_t *count)
{
    kw_db_stmt *st;
    *count = 0;
    int rc = activity_prepare(s, q, 1, &st);
    return rc ? rc : kw_db_int_result(st, count);
}
