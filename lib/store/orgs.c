/* orgs.c — managing organizations, projects and members: renames,
 * deletions, the member listing and level changes, written once over the
 * database layer (the rows they create, and project listings, are
 * users.c's).
 *
 * Deletion is one DELETE of the organization or project row; the schema's
 * ON DELETE CASCADE removes what hangs off it, and the row triggers fire
 * on the cascade, so each revoked phs_ key and phc_ token reaches the
 * change log the verifiers follow in the same transaction — nothing here
 * has to list keys to revoke them. */
#include <stddef.h>

#include "keyward/keyward.h"
#include "store/db.h"

static const struct kw_db_field MEMBER_FIELDS[] = {
    KW_DB_I64(kw_member, user.id),          KW_DB_TEXT(kw_member, user.uuid),
    KW_DB_TEXT(kw_member, user.email),      KW_DB_TEXT(kw_member, user.first_name),
    KW_DB_INT(kw_member, user.is_active),   KW_DB_I64(kw_member, user.created_at),
    KW_DB_INT(kw_member, level),            KW_DB_I64(kw_member, joined_at),
};

/* A write keyed by a text id (and a text value, or none). */
static int write_text(kw_store *s, enum kw_sql_id id, const char *key, const char *value)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, id, &st);
    if (rc) return rc;
    kw_db_text(st, 1, key);
    if (value) kw_db_text(st, 2, value);
    return kw_db_exec(st, 1);
}

/* A write keyed by a number (and a text value, or none). */
static int write_num(kw_store *s, enum kw_sql_id id, int64_t key, const char *value)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, id, &st);
    if (rc) return rc;
    kw_db_int(st, 1, key);
    if (value) kw_db_text(st, 2, value);
    return kw_db_exec(st, 1);
}

int kw_store_org_rename(kw_store *s, const char *id, const char *name)
{
    return write_text(s, KW_SQL_ORG_RENAME, id, name);
}

int kw_store_org_delete(kw_store *s, const char *id)
{
    return write_text(s, KW_SQL_ORG_DELETE, id, NULL);
}

int kw_store_org_lock(kw_store *s, const char *id)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_ORG_LOCK, &st);
    if (rc) return rc;
    kw_db_text(st, 1, id);
    int64_t one;
    return kw_db_int_result(st, &one);
}

int kw_store_project_rename(kw_store *s, int64_t id, const char *name)
{
    return write_num(s, KW_SQL_PROJECT_RENAME, id, name);
}

int kw_store_project_delete(kw_store *s, int64_t id)
{
    return write_num(s, KW_SQL_PROJECT_DELETE, id, NULL);
}

int kw_store_org_members(kw_store *s, const char *org_id, int64_t limit, int64_t offset,
                         kw_member_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_ORG_MEMBERS, &st);
    if (rc) return rc;
    kw_db_text(st, 1, org_id);
    kw_db_int(st, 2, limit);
    kw_db_int(st, 3, offset);
    kw_member m;
    while ((rc = kw_db_next(st, KW_DB_FIELDS(MEMBER_FIELDS), &m)) == KW_DB_ROW)
        if ((rc = cb(ctx, &m))) break;
    return kw_db_finish(st, rc);
}

int kw_store_org_member_count(kw_store *s, const char *org_id, int min_level, int64_t *count)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_ORG_MEMBER_COUNT, &st);
    if (rc) return rc;
    kw_db_text(st, 1, org_id);
    kw_db_int(st, 2, min_level);
    return kw_db_int_result(st, count);
}

int kw_store_member_by_uuid(kw_store *s, const char *org_id, const char *user_uuid, kw_member *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_MEMBER_BY_UUID, &st);
    if (rc) return rc;
    kw_db_text(st, 1, org_id);
    kw_db_text(st, 2, user_uuid);
    rc = kw_db_one(st);
    if (rc) return rc;
    return kw_db_finish(st, kw_db_read_row(st, KW_DB_FIELDS(MEMBER_FIELDS), out));
}

int kw_store_membership_update(kw_store *s, int64_t user_id, const char *org_id, int level)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_MEMBER_UPDATE, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    kw_db_text(st, 2, org_id);
    kw_db_int(st, 3, level);
    return kw_db_exec(st, 1);
}

int kw_store_membership_delete(kw_store *s, int64_t user_id, const char *org_id)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_MEMBER_DELETE, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    kw_db_text(st, 2, org_id);
    return kw_db_exec(st, 1);
}
