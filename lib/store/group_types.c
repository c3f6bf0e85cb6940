/* group_types.c — a project's group types, written once over the database
 * layer (statements in sql.c).  Rows are added by capture (lib/events/
 * group_types.c) and renamed by an admin; none is ever deleted, so the
 * indices stay 0..n-1 in order of first sight. */
#include <stddef.h>

#include "keyward/keyward.h"
#include "store/db.h"

static const struct kw_db_field GROUP_TYPE_FIELDS[] = {
    KW_DB_I64(kw_group_type, project_id),
    KW_DB_TEXT(kw_group_type, group_type),
    KW_DB_I64(kw_group_type, index),
    KW_DB_TEXT(kw_group_type, name_singular),
    KW_DB_TEXT(kw_group_type, name_plural),
    KW_DB_I64(kw_group_type, created_at),
};

int kw_store_group_types(kw_store *s, int64_t project_id, kw_group_type_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_GROUP_TYPES, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    kw_group_type g;
    while ((rc = kw_db_next(st, KW_DB_FIELDS(GROUP_TYPE_FIELDS), &g)) == KW_DB_ROW)
        if ((rc = cb(ctx, &g))) break;
    return kw_db_finish(st, rc);
}

static int has(kw_store *s, int64_t project_id, const char *group_type, int64_t *n)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_GROUP_TYPE_HAS, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    kw_db_text(st, 2, group_type);
    return kw_db_int_result(st, n);
}

int kw_store_group_type_add(kw_store *s, int64_t project_id, const char *group_type, kw_time now)
{
    /* A unique violation is either the name (there already: done) or the
     * index (another writer took it first: try the next one). */
    for (int attempt = 0; attempt <= KW_GROUP_TYPES_MAX; attempt++) {
        kw_db_stmt *st;
        int rc = kw_db_prepare(s, KW_SQL_GROUP_TYPE_ADD, &st);
        if (rc) return rc;
        kw_db_int(st, 1, project_id);
        kw_db_text(st, 2, group_type);
        kw_db_int(st, 3, now);
        rc = kw_db_exec(st, 1);
        if (rc == KW_ERR_NOTFOUND) {  /* no row inserted: the index would pass 4 */
            int64_t n = 0;
            rc = has(s, project_id, group_type, &n);
            return rc ? rc : n ? KW_ERR_EXISTS : KW_ERR_LIMIT;
        }
        if (rc != KW_ERR_EXISTS) return rc;
        int64_t n = 0;
        if ((rc = has(s, project_id, group_type, &n))) return rc;
        if (n) return KW_ERR_EXISTS;
    }
    return KW_ERR_DB;
}

int kw_store_group_type_rename(kw_store *s, int64_t project_id, int64_t index,
                               const char *singular, const char *plural)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_GROUP_TYPE_RENAME, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    kw_db_int(st, 2, index);
    kw_db_text_or_null(st, 3, singular);
    kw_db_text_or_null(st, 4, plural);
    return kw_db_exec(st, 1);
}
