/* users.c — users, organizations, memberships and projects, written once
 * over the database layer, with the whole-store listings of users and
 * projects and the legacy import of these rows (the import's personal
 * keys are stored by keys.c).
 *
 * Rows decode into their structs by field table and bind from them by
 * parameter table; the statements are in sql.c.  A project lookup by token
 * is the verification miss path of public project tokens, and like every
 * statement of the table it is prepared once per connection. */
#include <stddef.h>

#include "keyward/keyward.h"
#include "store/db.h"

static const struct kw_db_field USER_FIELDS[] = {
    KW_DB_I64(kw_user, id),          KW_DB_TEXT(kw_user, uuid),
    KW_DB_TEXT(kw_user, email),      KW_DB_TEXT(kw_user, first_name),
    KW_DB_INT(kw_user, is_active),   KW_DB_I64(kw_user, created_at),
};

static const struct kw_db_field ORG_FIELDS[] = {
    KW_DB_TEXT(kw_org, id),
    KW_DB_TEXT(kw_org, name),
    KW_DB_I64(kw_org, created_at),
};

static const struct kw_db_field PROJECT_FIELDS[] = {
    KW_DB_I64(kw_project, id),         KW_DB_TEXT(kw_project, uuid),
    KW_DB_TEXT(kw_project, org_id),    KW_DB_TEXT(kw_project, name),
    KW_DB_TEXT(kw_project, api_token), KW_DB_I64(kw_project, created_at),
};

/* A new row's parameters; the import binds the row's own id after them. */
static const struct kw_db_param USER_INSERT[] = {
    KW_DB_P(1, TEXT, kw_user, uuid),
    KW_DB_P(2, TEXT, kw_user, email),
    KW_DB_P(3, TEXT, kw_user, first_name),
    KW_DB_P(4, INT, kw_user, is_active),
    KW_DB_P(5, I64, kw_user, created_at),
};


static const struct kw_db_param ORG_INSERT[] = {
    KW_DB_P(1, TEXT, kw_org, id),
    KW_DB_P(2, TEXT, kw_org, name),
    KW_DB_P(3, I64, kw_org, created_at),
};

static const struct kw_db_param PROJECT_INSERT[] = {
    KW_DB_P(1, TEXT, kw_project, uuid),
    KW_DB_P(2, TEXT, kw_project, org_id),
    KW_DB_P(3, TEXT, kw_project, name),
    KW_DB_P(4, TEXT, kw_project, api_token),
    KW_DB_P(5, I64, kw_project, created_at),
};


/* ---- the shapes every operation below takes -------------------------------- */

/* The prepared statement `id` with obj bound by table. */
static int prepare_row(kw_store *s, enum kw_sql_id id, const struct kw_db_param *params, size_t n,
                       const void *obj, kw_db_stmt **st)
{
    int rc = kw_db_prepare(s, id, st);
    if (!rc) kw_db_bind_row(*st, params, n, obj);
    return rc;
}

/* A single-row read into obj. */
static int read_one(kw_db_stmt *st, const struct kw_db_field *fields, size_t n, void *obj)
{
    int rc = kw_db_one(st);
    if (rc) return rc;
    return kw_db_finish(st, kw_db_read_row(st, fields, n, obj));
}

static int user_read(kw_store *s, enum kw_sql_id id, int64_t num, const char *text, kw_user *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, id, &st);
    if (rc) return rc;
    if (text)
        kw_db_text(st, 1, text);
    else
        kw_db_int(st, 1, num);
    return read_one(st, KW_DB_FIELDS(USER_FIELDS), out);
}

static int project_read(kw_store *s, enum kw_sql_id id, int64_t num, const char *text,
                        kw_project *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, id, &st);
    if (rc) return rc;
    if (text)
        kw_db_text(st, 1, text);
    else
        kw_db_int(st, 1, num);
    return read_one(st, KW_DB_FIELDS(PROJECT_FIELDS), out);
}

/* The import's insert: a new row's parameters, then its own id (at
 * parameter `id_at`; 0 when the row binds it already).  KW_ERR_EXISTS when
 * a row with its id (or another unique value) was already there and
 * nothing changed. */
static int import_row(kw_store *s, enum kw_sql_id id, const struct kw_db_param *params, size_t n,
                      const void *obj, int id_at, int64_t own_id)
{
    kw_db_stmt *st;
    int rc = prepare_row(s, id, params, n, obj, &st);
    if (rc) return rc;
    if (id_at) kw_db_int(st, id_at, own_id);
    rc = kw_db_exec(st, 1);
    return rc == KW_ERR_NOTFOUND ? KW_ERR_EXISTS : rc;
}

/* ---- users ------------------------------------------------------------------ */

int kw_store_user_count(kw_store *s, int64_t *count)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_USER_COUNT, &st);
    return rc ? rc : kw_db_int_result(st, count);
}

int kw_store_user_create(kw_store *s, kw_user *u)
{
    int rc = kw_uuid_v4(u->uuid);
    if (rc) return rc;
    u->created_at = kw_now();
    kw_db_stmt *st;
    if ((rc = prepare_row(s, KW_SQL_USER_INSERT, KW_DB_FIELDS(USER_INSERT), u, &st))) return rc;
    return kw_db_int_result(st, &u->id);  /* RETURNING id */
}

int kw_store_user_get(kw_store *s, int64_t id, kw_user *out)
{
    return user_read(s, KW_SQL_USER_GET, id, NULL, out);
}

int kw_store_user_by_email(kw_store *s, const char *email, kw_user *out)
{
    return user_read(s, KW_SQL_USER_BY_EMAIL, 0, email, out);
}

int kw_store_user_set_active(kw_store *s, int64_t id, int active)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_USER_SET_ACTIVE, &st);
    if (rc) return rc;
    kw_db_int(st, 1, id);
    kw_db_int(st, 2, active);
    return kw_db_exec(st, 1);
}

int kw_store_user_list(kw_store *s, kw_user_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_USER_LIST, &st);
    if (rc) return rc;
    kw_user u;
    while ((rc = kw_db_next(st, KW_DB_FIELDS(USER_FIELDS), &u)) == KW_DB_ROW)
        if ((rc = cb(ctx, &u))) break;
    return kw_db_finish(st, rc);
}

/* ---- organizations and memberships ------------------------------------------ */

int kw_store_org_create(kw_store *s, kw_org *o)
{
    int rc = kw_uuid_v4(o->id);
    if (rc) return rc;
    o->created_at = kw_now();
    kw_db_stmt *st;
    if ((rc = prepare_row(s, KW_SQL_ORG_INSERT, KW_DB_FIELDS(ORG_INSERT), o, &st))) return rc;
    return kw_db_exec(st, 0);
}

int kw_store_org_get(kw_store *s, const char *id, kw_org *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_ORG_GET, &st);
    if (rc) return rc;
    kw_db_text(st, 1, id);
    return read_one(st, KW_DB_FIELDS(ORG_FIELDS), out);
}

int kw_store_membership_set(kw_store *s, int64_t user_id, const char *org_id, int level)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_MEMBER_SET, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    kw_db_text(st, 2, org_id);
    kw_db_int(st, 3, level);
    kw_db_int(st, 4, kw_now());
    return kw_db_exec(st, 0);
}

int kw_store_membership_level(kw_store *s, int64_t user_id, const char *org_id, int *level)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_MEMBER_LEVEL, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    kw_db_text(st, 2, org_id);
    int64_t v;
    if ((rc = kw_db_int_result(st, &v))) return rc;
    *level = (int)v;
    return KW_OK;
}

int kw_store_membership_level_at(kw_store *s, int64_t user_id, const char *org_id, int *level,
                                 int64_t *generation)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_MEMBER_LEVEL_AT, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    kw_db_text(st, 2, org_id);
    if ((rc = kw_db_one(st))) return rc;
    *generation = kw_db_col_int(st, 0);
    rc = kw_db_col_null(st, 1) ? KW_ERR_NOTFOUND : KW_OK;
    if (!rc) *level = (int)kw_db_col_int(st, 1);
    return kw_db_finish(st, rc);
}

int kw_store_user_orgs(kw_store *s, int64_t user_id, kw_org_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_USER_ORGS, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    kw_org o;
    const int level_col = (int)(sizeof ORG_FIELDS / sizeof ORG_FIELDS[0]);  /* m.level follows */
    while ((rc = kw_db_next(st, KW_DB_FIELDS(ORG_FIELDS), &o)) == KW_DB_ROW)
        if ((rc = cb(ctx, &o, (int)kw_db_col_int(st, level_col)))) break;
    return kw_db_finish(st, rc);
}

/* ---- projects ----------------------------------------------------------------- */

int kw_store_project_create(kw_store *s, kw_project *p)
{
    int rc = kw_uuid_v4(p->uuid);
    if (rc) return rc;
    p->created_at = kw_now();
    kw_db_stmt *st;
    if ((rc = prepare_row(s, KW_SQL_PROJECT_INSERT, KW_DB_FIELDS(PROJECT_INSERT), p, &st)))
        return rc;
    return kw_db_int_result(st, &p->id);  /* RETURNING id */
}

int kw_store_project_get(kw_store *s, int64_t id, kw_project *out)
{
    return project_read(s, KW_SQL_PROJECT_GET, id, NULL, out);
}

int kw_store_project_by_token(kw_store *s, const char *token, kw_project *out)
{
    return project_read(s, KW_SQL_PROJECT_BY_TOKEN, 0, token, out);
}

int kw_store_project_set_token(kw_store *s, int64_t id, const char *token)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PROJECT_SET_TOKEN, &st);
    if (rc) return rc;
    kw_db_int(st, 1, id);
    kw_db_text(st, 2, token);
    return kw_db_exec(st, 1);
}

/* Runs a prepared list of projects, one callback per row. */
static int projects_each(kw_db_stmt *st, kw_project_cb cb, void *ctx)
{
    kw_project p;
    int rc;
    while ((rc = kw_db_next(st, KW_DB_FIELDS(PROJECT_FIELDS), &p)) == KW_DB_ROW)
        if ((rc = cb(ctx, &p))) break;
    return kw_db_finish(st, rc);
}

int kw_store_user_projects(kw_store *s, int64_t user_id, kw_project_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_USER_PROJECTS, &st);
    if (rc) return rc;
    kw_db_int(st, 1, user_id);
    return projects_each(st, cb, ctx);
}

int kw_store_org_projects(kw_store *s, const char *org_id, kw_project_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_ORG_PROJECTS, &st);
    if (rc) return rc;
    kw_db_text(st, 1, org_id);
    return projects_each(st, cb, ctx);
}

int kw_store_project_list(kw_store *s, kw_project_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_PROJECT_LIST, &st);
    return rc ? rc : projects_each(st, cb, ctx);
}

/* ---- the legacy import ---------------------------------------------------- */

int kw_store_import_user(kw_store *s, const kw_user *u)
{
    return import_row(s, KW_SQL_IMPORT_USER, KW_DB_FIELDS(USER_INSERT), u, 6, u->id);
}

int kw_store_import_org(kw_store *s, const kw_org *o)
{
    return import_row(s, KW_SQL_IMPORT_ORG, KW_DB_FIELDS(ORG_INSERT), o, 0, 0);
}

int kw_store_import_project(kw_store *s, const kw_project *p)
{
    return import_row(s, KW_SQL_IMPORT_PROJECT, KW_DB_FIELDS(PROJECT_INSERT), p, 6, p->id);
}

/* SQLite's INTEGER PRIMARY KEY already continues after the largest id;
 * PostgreSQL's identity sequences must be moved past the imported ids. */
int kw_store_import_done(kw_store *s)
{
    if (kw_db_dialect(s) != KW_DB_POSTGRES) return KW_OK;
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_IMPORT_SEQUENCES, &st);
    return rc ? rc : kw_db_exec(st, 0);
}
