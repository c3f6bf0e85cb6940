/* store_sqlite_users.c — users, organizations, memberships and projects in
 * the SQLite backend.
 *
 * Kept apart from store_sqlite.c, like the other store_sqlite_*.c files,
 * so that file holds only what every concern shares: the per-thread
 * connections and their statement caches, the migrations and the ops
 * table.  These statements are cached on the thread's connection
 * (kw_sq_user_stmt): a project lookup by token is the verification miss
 * path of project keys (lib/auth.c). */
#include "store_backend.h"

#include <sqlite3.h>
#include <string.h>

#include "keyward/keyward.h"

#define USER_COLS "id, uuid, email, first_name, is_active, created_at"
#define PROJECT_COLS "id, uuid, org_id, name, api_token, created_at"

const char *const kw_sq_user_sql[KW_SQ_USER_COUNT_STMTS] = {
    [KW_SQ_USER_COUNT] = "SELECT COUNT(*) FROM users",
    [KW_SQ_USER_INSERT] = "INSERT INTO users(uuid, email, first_name, is_active, created_at) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)",
    [KW_SQ_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = ?1",
    [KW_SQ_USER_BY_EMAIL] = "SELECT " USER_COLS " FROM users WHERE email = ?1",
    [KW_SQ_USER_SET_ACTIVE] = "UPDATE users SET is_active = ?2 WHERE id = ?1",
    [KW_SQ_ORG_INSERT] = "INSERT INTO organizations(id, name, created_at) VALUES (?1, ?2, ?3)",
    [KW_SQ_ORG_GET] = "SELECT id, name, created_at FROM organizations WHERE id = ?1",
    [KW_SQ_MEMBER_SET] = "INSERT INTO memberships(user_id, org_id, level, created_at) "
                         "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(user_id, org_id) DO UPDATE SET level = ?3",
    [KW_SQ_MEMBER_LEVEL] = "SELECT level FROM memberships WHERE user_id = ?1 AND org_id = ?2",
    [KW_SQ_USER_ORGS] = "SELECT o.id, o.name, o.created_at, m.level FROM organizations o "
                        "JOIN memberships m ON m.org_id = o.id WHERE m.user_id = ?1 ORDER BY o.created_at",
    [KW_SQ_PROJECT_INSERT] = "INSERT INTO projects(uuid, org_id, name, api_token, created_at) "
                             "VALUES (?1, ?2, ?3, ?4, ?5)",
    [KW_SQ_PROJECT_GET] = "SELECT " PROJECT_COLS " FROM projects WHERE id = ?1",
    [KW_SQ_PROJECT_BY_TOKEN] = "SELECT " PROJECT_COLS " FROM projects WHERE api_token = ?1",
    [KW_SQ_USER_PROJECTS] = "SELECT p.id, p.uuid, p.org_id, p.name, p.api_token, p.created_at "
                            "FROM projects p JOIN memberships m ON m.org_id = p.org_id "
                            "WHERE m.user_id = ?1 ORDER BY p.id",
    [KW_SQ_PROJECT_SET_TOKEN] = "UPDATE projects SET api_token = ?2 WHERE id = ?1",
};

static void read_user(sqlite3_stmt *st, kw_user *u)
{
    memset(u, 0, sizeof *u);
    u->id = sqlite3_column_int64(st, 0);
    kw_sq_copy_col(st, 1, u->uuid, sizeof u->uuid);
    kw_sq_copy_col(st, 2, u->email, sizeof u->email);
    kw_sq_copy_col(st, 3, u->first_name, sizeof u->first_name);
    u->is_active = sqlite3_column_int(st, 4);
    u->created_at = sqlite3_column_int64(st, 5);
}

static void read_project(sqlite3_stmt *st, kw_project *p)
{
    memset(p, 0, sizeof *p);
    p->id = sqlite3_column_int64(st, 0);
    kw_sq_copy_col(st, 1, p->uuid, sizeof p->uuid);
    kw_sq_copy_col(st, 2, p->org_id, sizeof p->org_id);
    kw_sq_copy_col(st, 3, p->name, sizeof p->name);
    kw_sq_copy_col(st, 4, p->api_token, sizeof p->api_token);
    p->created_at = sqlite3_column_int64(st, 5);
}

int kw_sq_user_count(kw_store *b, int64_t *count)
{
    return kw_sq_count(kw_sq_user_stmt(b, KW_SQ_USER_COUNT), count);
}

int kw_sq_user_create(kw_store *b, kw_user *u)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_USER_INSERT);
    if (!st) return KW_ERR_DB;
    int rc = kw_uuid_v4(u->uuid);
    if (rc) return kw_sq_finish(st, rc);
    u->created_at = kw_now();
    kw_sq_bind_text(st, 1, u->uuid);
    kw_sq_bind_text(st, 2, u->email);
    kw_sq_bind_text(st, 3, u->first_name);
    sqlite3_bind_int(st, 4, u->is_active);
    sqlite3_bind_int64(st, 5, u->created_at);
    rc = kw_sq_exec_write(b, st, 0);
    if (!rc) u->id = sqlite3_last_insert_rowid(kw_sq_db(b));
    return rc;
}

static int user_lookup(sqlite3_stmt *st, kw_user *out)
{
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    read_user(st, out);
    return kw_sq_finish(st, KW_OK);
}

int kw_sq_user_get(kw_store *b, int64_t id, kw_user *out)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_USER_GET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    return user_lookup(st, out);
}

int kw_sq_user_by_email(kw_store *b, const char *email, kw_user *out)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_USER_BY_EMAIL);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, email);
    return user_lookup(st, out);
}

int kw_sq_user_set_active(kw_store *b, int64_t id, int active)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_USER_SET_ACTIVE);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, active);
    return kw_sq_exec_write(b, st, 1);
}

int kw_sq_org_create(kw_store *b, kw_org *o)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_ORG_INSERT);
    if (!st) return KW_ERR_DB;
    int rc = kw_uuid_v4(o->id);
    if (rc) return kw_sq_finish(st, rc);
    o->created_at = kw_now();
    kw_sq_bind_text(st, 1, o->id);
    kw_sq_bind_text(st, 2, o->name);
    sqlite3_bind_int64(st, 3, o->created_at);
    return kw_sq_exec_write(b, st, 0);
}

int kw_sq_org_get(kw_store *b, const char *id, kw_org *o)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_ORG_GET);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, id);
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    kw_sq_copy_col(st, 0, o->id, sizeof o->id);
    kw_sq_copy_col(st, 1, o->name, sizeof o->name);
    o->created_at = sqlite3_column_int64(st, 2);
    return kw_sq_finish(st, KW_OK);
}

int kw_sq_membership_set(kw_store *b, int64_t user_id, const char *org_id, int level)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_MEMBER_SET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    kw_sq_bind_text(st, 2, org_id);
    sqlite3_bind_int(st, 3, level);
    sqlite3_bind_int64(st, 4, kw_now());
    return kw_sq_exec_write(b, st, 0);
}

int kw_sq_membership_level(kw_store *b, int64_t user_id, const char *org_id, int *level)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_MEMBER_LEVEL);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    kw_sq_bind_text(st, 2, org_id);
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    *level = sqlite3_column_int(st, 0);
    return kw_sq_finish(st, KW_OK);
}

int kw_sq_user_orgs(kw_store *b, int64_t user_id, kw_org_cb cb, void *ctx)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_USER_ORGS);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_org o;
        kw_sq_copy_col(st, 0, o.id, sizeof o.id);
        kw_sq_copy_col(st, 1, o.name, sizeof o.name);
        o.created_at = sqlite3_column_int64(st, 2);
        int stop = cb(ctx, &o, sqlite3_column_int(st, 3));
        if (stop) return kw_sq_finish(st, stop);
    }
    return kw_sq_finish(st, kw_sq_map_rc(rc));
}

int kw_sq_project_create(kw_store *b, kw_project *p)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_PROJECT_INSERT);
    if (!st) return KW_ERR_DB;
    int rc = kw_uuid_v4(p->uuid);
    if (rc) return kw_sq_finish(st, rc);
    p->created_at = kw_now();
    kw_sq_bind_text(st, 1, p->uuid);
    kw_sq_bind_text(st, 2, p->org_id);
    kw_sq_bind_text(st, 3, p->name);
    kw_sq_bind_text(st, 4, p->api_token);
    sqlite3_bind_int64(st, 5, p->created_at);
    rc = kw_sq_exec_write(b, st, 0);
    if (!rc) p->id = sqlite3_last_insert_rowid(kw_sq_db(b));
    return rc;
}

static int project_lookup(sqlite3_stmt *st, kw_project *out)
{
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    read_project(st, out);
    return kw_sq_finish(st, KW_OK);
}

int kw_sq_project_get(kw_store *b, int64_t id, kw_project *out)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_PROJECT_GET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    return project_lookup(st, out);
}

int kw_sq_project_by_token(kw_store *b, const char *token, kw_project *out)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_PROJECT_BY_TOKEN);
    if (!st) return KW_ERR_DB;
    kw_sq_bind_text(st, 1, token);
    return project_lookup(st, out);
}

int kw_sq_user_projects(kw_store *b, int64_t user_id, kw_project_cb cb, void *ctx)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_USER_PROJECTS);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_project p;
        read_project(st, &p);
        int stop = cb(ctx, &p);
        if (stop) return kw_sq_finish(st, stop);
    }
    return kw_sq_finish(st, kw_sq_map_rc(rc));
}

int kw_sq_project_set_token(kw_store *b, int64_t id, const char *token)
{
    sqlite3_stmt *st = kw_sq_user_stmt(b, KW_SQ_PROJECT_SET_TOKEN);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    kw_sq_bind_text(st, 2, token);
    return kw_sq_exec_write(b, st, 1);
}
