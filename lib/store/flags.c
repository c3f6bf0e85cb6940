/* flags.c — stored feature flag definitions, written once for both
 * databases.
 *
 * A flag is never removed: deleting one sets `deleted`, which frees its
 * key for a new live flag (the unique index covers live rows only) while
 * the old row keeps its history.  Every write bumps `version`; the
 * database's triggers bump the flags generation the flag cache polls.  The
 * `filters` JSON has no size bound of ours, so it lives on the heap
 * (kw_flag_clear frees it). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store/db.h"

/* The columns of FLAG_COLS in sql.c, in order. */
static const struct kw_db_field FLAG_FIELDS[] = {
    KW_DB_I64(kw_flag, id),          KW_DB_I64(kw_flag, project_id),
    KW_DB_TEXT(kw_flag, key),        KW_DB_TEXT(kw_flag, name),
    KW_DB_DUP(kw_flag, filters),     KW_DB_INT(kw_flag, active),
    KW_DB_INT(kw_flag, deleted),     KW_DB_INT(kw_flag, ensure_experience_continuity),
    KW_DB_I64(kw_flag, version),     KW_DB_I64(kw_flag, created_by),
    KW_DB_I64(kw_flag, created_at),  KW_DB_I64(kw_flag, updated_at),
    /* get and the newest-first list only (FLAG_LISTED): the last LISTED fields */
    KW_DB_INT(kw_flag, joined),
    KW_DB_I64(kw_flag, created_by_user.id), KW_DB_TEXT(kw_flag, created_by_user.uuid),
    KW_DB_TEXT(kw_flag, created_by_user.email), KW_DB_TEXT(kw_flag, created_by_user.first_name),
    KW_DB_INT(kw_flag, created_by_user.is_active), KW_DB_I64(kw_flag, created_by_user.created_at),
};
#define LISTED 7
#define ALL_FIELDS (sizeof FLAG_FIELDS / sizeof FLAG_FIELDS[0])

/* filters binds apart: a flag without filters is stored as "{}". */
static const struct kw_db_param FLAG_INSERT[] = {
    KW_DB_P(1, I64, kw_flag, project_id),
    KW_DB_P(2, TEXT, kw_flag, key),
    KW_DB_P(3, TEXT, kw_flag, name),
    KW_DB_P(5, INT, kw_flag, active),
    KW_DB_P(6, INT, kw_flag, ensure_experience_continuity),
    KW_DB_P_OR_NULL(7, I64, kw_flag, created_by),
    KW_DB_P(8, I64, kw_flag, created_at),
};

static const struct kw_db_param FLAG_UPDATE[] = {
    KW_DB_P(1, I64, kw_flag, project_id),
    KW_DB_P(2, I64, kw_flag, id),
    KW_DB_P(3, TEXT, kw_flag, key),
    KW_DB_P(4, TEXT, kw_flag, name),
    KW_DB_P(6, INT, kw_flag, active),
    KW_DB_P(7, INT, kw_flag, deleted),
    KW_DB_P(8, INT, kw_flag, ensure_experience_continuity),
    KW_DB_P(9, I64, kw_flag, updated_at),
};

static const char *filters_or_empty(const kw_flag *f) { return f->filters ? f->filters : "{}"; }

void kw_flag_clear(kw_flag *flag)
{
    free(flag->filters);
    flag->filters = NULL;
}

int kw_store_flag_insert(kw_store *s, kw_flag *f)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_FLAG_INSERT, &st);
    if (rc) return rc;
    f->created_at = f->updated_at = kw_now();
    f->version = 1;
    f->deleted = 0;
    kw_db_bind_row(st, KW_DB_FIELDS(FLAG_INSERT), f);
    kw_db_text(st, 4, filters_or_empty(f));
    if ((rc = kw_db_one(st))) return rc;  /* RETURNING id */
    f->id = kw_db_col_int(st, 0);
    return kw_db_finish(st, KW_OK);
}

int kw_store_flag_get(kw_store *s, int64_t project_id, int64_t id, kw_flag *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_FLAG_GET, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    kw_db_int(st, 2, id);
    memset(out, 0, sizeof *out);
    if ((rc = kw_db_one(st))) return rc;
    return kw_db_finish(st, kw_db_read_row(st, FLAG_FIELDS, ALL_FIELDS, out));
}

int kw_store_flag_list(kw_store *s, int64_t project_id, enum kw_flag_order order,
                       int include_deleted, kw_flag_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, order == KW_FLAG_BY_KEY ? KW_SQL_FLAG_LIST_BY_KEY
                                                      : KW_SQL_FLAG_LIST_NEWEST, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    kw_db_int(st, 2, include_deleted ? 1 : 0);
    size_t n = order == KW_FLAG_BY_KEY ? ALL_FIELDS - LISTED : ALL_FIELDS;
    kw_flag f = {0};
    while ((rc = kw_db_next(st, FLAG_FIELDS, n, &f)) == KW_DB_ROW) {
        rc = cb(ctx, &f);
        kw_flag_clear(&f);
        if (rc) break;
    }
    kw_flag_clear(&f);  /* a row whose filters could not be copied */
    return kw_db_finish(st, rc);
}

int kw_store_flag_update(kw_store *s, kw_flag *f)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_FLAG_UPDATE, &st);
    if (rc) return rc;
    f->updated_at = kw_now();
    kw_db_bind_row(st, KW_DB_FIELDS(FLAG_UPDATE), f);
    kw_db_text(st, 5, filters_or_empty(f));
    rc = kw_db_exec(st, 1);
    if (!rc) f->version++;
    return rc;
}
