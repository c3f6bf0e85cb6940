/* store_sqlite_life.c — the key-lifecycle operations of the SQLite backend:
 * the scope-usage merge, the batched last_used_at write, whole-store
 * listings and the legacy import.
 *
 * None of these runs on a request's hot path (the usage merge runs on the
 * verifier's maintenance thread; the rest are shell commands), so each
 * statement is prepared per call on the calling thread's connection
 * instead of taking slots in the statement cache.  A usage batch is one
 * transaction: one commit instead of one per key.  Every value is a bound
 * parameter. */
#include "store_backend.h"

#include <sqlite3.h>
#include <string.h>

#include "keyward/keyward.h"

/* The union of the stored list and the new one, sorted, as one UPDATE:
 * idempotent, and atomic under SQLite's single writer. */
static const char *const USED_SQL[2] = {
    "UPDATE personal_api_keys SET scopes_used = (SELECT json_group_array(value) FROM ("
    "  SELECT value FROM json_each(COALESCE(scopes_used, '[]')) UNION "
    "  SELECT value FROM json_each(?2) ORDER BY 1)) WHERE id = ?1",
    "UPDATE project_secret_api_keys SET scopes_used = (SELECT json_group_array(value) FROM ("
    "  SELECT value FROM json_each(COALESCE(scopes_used, '[]')) UNION "
    "  SELECT value FROM json_each(?2) ORDER BY 1)) WHERE id = ?1",
};

static int prepare(kw_store *b, const char *sql, sqlite3_stmt **st)
{
    sqlite3 *db = kw_sq_db(b);
    if (!db || sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) return KW_ERR_DB;
    return KW_OK;
}

/* Steps a write; KW_ERR_EXISTS when it changed nothing (the import's
 * INSERT OR IGNORE hit an existing row). */
static int run_write(kw_store *b, sqlite3_stmt *st, int none_is_exists)
{
    int rc = sqlite3_step(st);
    int changed = sqlite3_changes(kw_sq_db(b));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return kw_sq_map_rc(rc);
    return none_is_exists && changed == 0 ? KW_ERR_EXISTS : KW_OK;
}

/* A batch is one transaction of its own, or simply joins the caller's:
 * *own says which, for batch_end. */
static int batch_begin(sqlite3 *db, int *own)
{
    *own = sqlite3_get_autocommit(db);
    int step = *own ? sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) : SQLITE_OK;
    return step == SQLITE_OK ? KW_OK : kw_sq_map_rc(step);
}

/* Commits a batch's own transaction after rc == KW_OK, else rolls it back. */
static int batch_end(sqlite3 *db, int own, int rc)
{
    if (!own) return rc;
    int step;
    if (!rc && (step = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK)
        rc = kw_sq_map_rc(step);
    if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

int kw_sq_key_scopes_used_many(kw_store *b, const kw_scope_use *uses, size_t n)
{
    sqlite3 *db = kw_sq_db(b);
    if (!db) return KW_ERR_DB;
    if (!n) return KW_OK;
    int own, step;
    int rc = batch_begin(db, &own);
    if (rc) return rc;
    sqlite3_stmt *st[2] = {NULL, NULL};
    for (size_t i = 0; !rc && i < n; i++) {
        int secret = uses[i].kind == KW_KEY_SECRET;
        if (!st[secret]) rc = prepare(b, USED_SQL[secret], &st[secret]);
        if (rc) break;
        sqlite3_reset(st[secret]);
        kw_sq_bind_text(st[secret], 1, uses[i].id);
        kw_sq_bind_text(st[secret], 2, uses[i].scopes_json);
        if ((step = sqlite3_step(st[secret])) != SQLITE_DONE) rc = kw_sq_map_rc(step);
    }
    sqlite3_finalize(st[0]);
    sqlite3_finalize(st[1]);
    return batch_end(db, own, rc);
}

/* The touches of a batch through the cached single-key statements (the
 * conditional UPDATE of kw_sq_pkey_touch / kw_sq_psk_touch), in one
 * transaction: one commit — one fsync — for the batch instead of one per
 * key.  A repeated id is harmless: its later, older-or-equal time fails
 * the condition, a newer one at least `interval` on is a real use. */
int kw_sq_key_touch_many(kw_store *b, const kw_key_touch *t, size_t n, kw_time interval)
{
    sqlite3 *db = kw_sq_db(b);
    if (!db) return KW_ERR_DB;
    if (!n) return KW_OK;
    int own;
    int rc = batch_begin(db, &own);
    if (rc) return rc;
    for (size_t i = 0; !rc && i < n; i++) {
        if (t[i].kind == KW_KEY_SECRET)
            rc = kw_sq_psk_touch(b, t[i].id, t[i].when, interval);
        else
            rc = kw_sq_pkey_touch(b, t[i].id, t[i].when, interval);
    }
    return batch_end(db, own, rc);
}

int kw_sq_user_list(kw_store *b, kw_user_cb cb, void *ctx)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "SELECT id, uuid, email, first_name, is_active, created_at FROM users "
                        "ORDER BY id", &st);
    if (rc) return rc;
    int stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_user u;
        memset(&u, 0, sizeof u);
        u.id = sqlite3_column_int64(st, 0);
        kw_sq_copy_col(st, 1, u.uuid, sizeof u.uuid);
        kw_sq_copy_col(st, 2, u.email, sizeof u.email);
        kw_sq_copy_col(st, 3, u.first_name, sizeof u.first_name);
        u.is_active = sqlite3_column_int(st, 4);
        u.created_at = sqlite3_column_int64(st, 5);
        stop = cb(ctx, &u);
    }
    sqlite3_finalize(st);
    return stop ? stop : kw_sq_map_rc(rc);
}

int kw_sq_project_list(kw_store *b, kw_project_cb cb, void *ctx)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "SELECT id, uuid, org_id, name, api_token, created_at FROM projects "
                        "ORDER BY id", &st);
    if (rc) return rc;
    int stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_project p;
        memset(&p, 0, sizeof p);
        p.id = sqlite3_column_int64(st, 0);
        kw_sq_copy_col(st, 1, p.uuid, sizeof p.uuid);
        kw_sq_copy_col(st, 2, p.org_id, sizeof p.org_id);
        kw_sq_copy_col(st, 3, p.name, sizeof p.name);
        kw_sq_copy_col(st, 4, p.api_token, sizeof p.api_token);
        p.created_at = sqlite3_column_int64(st, 5);
        stop = cb(ctx, &p);
    }
    sqlite3_finalize(st);
    return stop ? stop : kw_sq_map_rc(rc);
}

int kw_sq_import_user(kw_store *b, const kw_user *u)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "INSERT OR IGNORE INTO users(id, uuid, email, first_name, is_active, "
                        "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, u->id);
    kw_sq_bind_text(st, 2, u->uuid);
    kw_sq_bind_text(st, 3, u->email);
    sqlite3_bind_text(st, 4, u->first_name, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, u->is_active);
    sqlite3_bind_int64(st, 6, u->created_at);
    return run_write(b, st, 1);
}

int kw_sq_import_org(kw_store *b, const kw_org *o)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "INSERT OR IGNORE INTO organizations(id, name, created_at) "
                        "VALUES (?1, ?2, ?3)", &st);
    if (rc) return rc;
    kw_sq_bind_text(st, 1, o->id);
    sqlite3_bind_text(st, 2, o->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, o->created_at);
    return run_write(b, st, 1);
}

int kw_sq_import_project(kw_store *b, const kw_project *p)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "INSERT OR IGNORE INTO projects(id, uuid, org_id, name, api_token, "
                        "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &st);
    if (rc) return rc;
    sqlite3_bind_int64(st, 1, p->id);
    kw_sq_bind_text(st, 2, p->uuid);
    kw_sq_bind_text(st, 3, p->org_id);
    sqlite3_bind_text(st, 4, p->name, -1, SQLITE_STATIC);
    kw_sq_bind_text(st, 5, p->api_token);
    sqlite3_bind_int64(st, 6, p->created_at);
    return run_write(b, st, 1);
}

int kw_sq_import_pkey(kw_store *b, const kw_pkey *k)
{
    sqlite3_stmt *st;
    int rc = prepare(b, "INSERT OR IGNORE INTO personal_api_keys(id, user_id, label, secure_value, "
                        "mask_value, created_at, last_used_at, last_rolled_at, scopes, scoped_teams, "
                        "scoped_organizations, expires_at, rate_limit_per_minute, scopes_used) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, NULL)", &st);
    if (rc) return rc;
    kw_sq_bind_text(st, 1, k->id);
    sqlite3_bind_int64(st, 2, k->user_id);
    sqlite3_bind_text(st, 3, k->label, -1, SQLITE_STATIC);
    kw_sq_bind_text(st, 4, k->secure_value);
    kw_sq_bind_text(st, 5, k->mask_value);
    sqlite3_bind_int64(st, 6, k->created_at);
    kw_sq_bind_int64_or_null(st, 7, k->last_used_at);
    kw_sq_bind_int64_or_null(st, 8, k->last_rolled_at);
    kw_sq_bind_text(st, 9, k->scopes);
    kw_sq_bind_text(st, 10, k->scoped_teams);
    kw_sq_bind_text(st, 11, k->scoped_orgs);
    kw_sq_bind_int64_or_null(st, 12, k->expires_at);
    kw_sq_bind_int64_or_null(st, 13, k->rate_limit_per_minute);
    return run_write(b, st, 1);
}

/* INTEGER PRIMARY KEY already continues after the largest id. */
int kw_sq_import_done(kw_store *b)
{
    (void)b;
    return KW_OK;
}
