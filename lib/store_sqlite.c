/* store_sqlite.c — the embedded SQLite backend (the default).
 *
 * Concurrency model: one connection per thread, opened lazily and kept for
 * the thread's life (the HTTP server uses a fixed thread pool), each with
 * its own cache of prepared statements.  The database runs in WAL mode, so
 * readers never block on the writer and the verification path takes no
 * lock of ours at all; writers queue on SQLite's own lock (busy_timeout).
 * Multi-row writes use BEGIN IMMEDIATE so the write lock is taken up front
 * instead of failing half-way on an upgrade. */
#include "store_backend.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store_schema.h"

enum stmt_id {
    ST_USER_COUNT, ST_USER_INSERT, ST_USER_GET, ST_USER_BY_EMAIL, ST_USER_SET_ACTIVE,
    ST_ORG_INSERT, ST_ORG_GET, ST_MEMBER_SET, ST_MEMBER_LEVEL, ST_USER_ORGS,
    ST_PROJECT_INSERT, ST_PROJECT_GET, ST_PROJECT_BY_TOKEN, ST_USER_PROJECTS, ST_PROJECT_SET_TOKEN,
    ST_PKEY_INSERT, ST_PKEY_GET, ST_PKEY_LIST, ST_PKEY_UPDATE, ST_PKEY_ROLL, ST_PKEY_DELETE,
    ST_PKEY_BY_HASH, ST_PKEY_TOUCH, ST_PKEY_REHASH, ST_PKEY_LEGACY_COUNT,
    ST_FLAG_INSERT, ST_FLAG_GET, ST_FLAG_LIST_NEWEST, ST_FLAG_LIST_BY_KEY, ST_FLAG_UPDATE,
    ST_ACTIVITY_INSERT,
    ST_AUTH_GENERATION,
    ST_FLAGS_GENERATION,
    ST_PKEY_AUTH_BY_HASH,
    ST_COUNT
};

#define USER_COLS "id, uuid, email, first_name, is_active, created_at"
#define PROJECT_COLS "id, uuid, org_id, name, api_token, created_at"
#define PKEY_COLS "id, user_id, label, secure_value, mask_value, created_at, last_used_at, " \
                  "last_rolled_at, scopes, scoped_teams, scoped_organizations, expires_at, " \
                  "rate_limit_per_minute, scopes_used"
#define FLAG_COLS "id, project_id, key, name, filters, active, deleted, " \
                  "ensure_experience_continuity, version, created_by, created_at, updated_at"

static const char *const SQL[ST_COUNT] = {
    [ST_USER_COUNT] = "SELECT COUNT(*) FROM users",
    [ST_USER_INSERT] = "INSERT INTO users(uuid, email, first_name, is_active, created_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = ?1",
    [ST_USER_BY_EMAIL] = "SELECT " USER_COLS " FROM users WHERE email = ?1",
    [ST_USER_SET_ACTIVE] = "UPDATE users SET is_active = ?2 WHERE id = ?1",
    [ST_ORG_INSERT] = "INSERT INTO organizations(id, name, created_at) VALUES (?1, ?2, ?3)",
    [ST_ORG_GET] = "SELECT id, name, created_at FROM organizations WHERE id = ?1",
    [ST_MEMBER_SET] = "INSERT INTO memberships(user_id, org_id, level, created_at) "
                      "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(user_id, org_id) DO UPDATE SET level = ?3",
    [ST_MEMBER_LEVEL] = "SELECT level FROM memberships WHERE user_id = ?1 AND org_id = ?2",
    [ST_USER_ORGS] = "SELECT o.id, o.name, o.created_at, m.level FROM organizations o "
                     "JOIN memberships m ON m.org_id = o.id WHERE m.user_id = ?1 ORDER BY o.created_at",
    [ST_PROJECT_INSERT] = "INSERT INTO projects(uuid, org_id, name, api_token, created_at) "
                          "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_PROJECT_GET] = "SELECT " PROJECT_COLS " FROM projects WHERE id = ?1",
    [ST_PROJECT_BY_TOKEN] = "SELECT " PROJECT_COLS " FROM projects WHERE api_token = ?1",
    [ST_USER_PROJECTS] = "SELECT p.id, p.uuid, p.org_id, p.name, p.api_token, p.created_at "
                         "FROM projects p JOIN memberships m ON m.org_id = p.org_id "
                         "WHERE m.user_id = ?1 ORDER BY p.id",
    [ST_PROJECT_SET_TOKEN] = "UPDATE projects SET api_token = ?2 WHERE id = ?1",
    /* The count check and the insert are one statement, so two concurrent
     * creations cannot both pass a limit of 10. */
    [ST_PKEY_INSERT] = "INSERT INTO personal_api_keys(" PKEY_COLS ") "
                       "SELECT ?1, ?2, ?3, ?4, ?5, ?6, NULL, NULL, ?7, ?8, ?9, ?11, ?12, NULL "
                       "WHERE (SELECT COUNT(*) FROM personal_api_keys WHERE user_id = ?2) < ?10",
    [ST_PKEY_GET] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE user_id = ?1 AND id = ?2",
    [ST_PKEY_LIST] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE user_id = ?1 "
                     "ORDER BY created_at DESC, id DESC",
    [ST_PKEY_UPDATE] = "UPDATE personal_api_keys SET label = ?3, scopes = ?4, scoped_teams = ?5, "
                       "scoped_organizations = ?6, expires_at = ?7, rate_limit_per_minute = ?8 "
                       "WHERE user_id = ?1 AND id = ?2",
    [ST_PKEY_ROLL] = "UPDATE personal_api_keys SET secure_value = ?3, mask_value = ?4, "
                     "last_rolled_at = ?5 WHERE user_id = ?1 AND id = ?2",
    [ST_PKEY_DELETE] = "DELETE FROM personal_api_keys WHERE user_id = ?1 AND id = ?2",
    [ST_PKEY_BY_HASH] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE secure_value = ?1",
    [ST_PKEY_TOUCH] = "UPDATE personal_api_keys SET last_used_at = ?2 WHERE id = ?1 "
                      "AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
    [ST_PKEY_REHASH] = "UPDATE personal_api_keys SET secure_value = ?3 "
                       "WHERE id = ?1 AND secure_value = ?2",
    /* A range on the unique index: O(log n), not a scan, since it is
     * asked again whenever a legacy-length key misses. */
    [ST_PKEY_LEGACY_COUNT] = "SELECT COUNT(*) FROM personal_api_keys "
                             "WHERE secure_value >= 'pbkdf2_sha256$' AND secure_value < 'pbkdf2_sha256%'",
    [ST_FLAG_INSERT] = "INSERT INTO feature_flags(project_id, key, name, filters, active, deleted, "
                       "ensure_experience_continuity, version, created_by, created_at, updated_at) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, 1, ?7, ?8, ?8)",
    [ST_FLAG_GET] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = ?1 AND id = ?2",
    [ST_FLAG_LIST_NEWEST] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = ?1 "
                            "AND (?2 OR deleted = 0) ORDER BY created_at DESC, id DESC",
    [ST_FLAG_LIST_BY_KEY] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = ?1 "
                            "AND (?2 OR deleted = 0) ORDER BY key, id",
    [ST_FLAG_UPDATE] = "UPDATE feature_flags SET key = ?3, name = ?4, filters = ?5, active = ?6, "
                       "deleted = ?7, ensure_experience_continuity = ?8, version = version + 1, "
                       "updated_at = ?9 WHERE project_id = ?1 AND id = ?2",
    [ST_ACTIVITY_INSERT] = "INSERT INTO activity_log(id, project_id, org_id, user_id, activity, "
                           "scope, item_id, detail, ip_address, created_at) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [ST_AUTH_GENERATION] = "SELECT value FROM kw_meta WHERE name = 'auth_generation'",
    [ST_FLAGS_GENERATION] = "SELECT value FROM kw_meta WHERE name = 'flags_generation'",
    /* The verification miss path: key and owner's active flag in one read
     * transaction (one WAL read-lock round instead of two). */
    [ST_PKEY_AUTH_BY_HASH] = "SELECT k.id, k.user_id, k.label, k.secure_value, k.mask_value, "
                             "k.created_at, k.last_used_at, k.last_rolled_at, k.scopes, "
                             "k.scoped_teams, k.scoped_organizations, k.expires_at, "
                             "k.rate_limit_per_minute, k.scopes_used, u.is_active "
                             "FROM personal_api_keys k JOIN users u ON u.id = k.user_id "
                             "WHERE k.secure_value = ?1",
};

struct conn {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    sqlite3_stmt *psk_stmts[KW_SQ_PSK_COUNT_STMTS];  /* store_sqlite_psk.c's */
    sqlite3_stmt *ev_stmts[KW_SQ_EV_COUNT_STMTS];    /* store_sqlite_events.c's */
    struct conn *next;  /* every connection, for close */
};

struct sqlite_store {
    kw_store base;
    char *path;
    pthread_key_t tls;
    pthread_mutex_t conns_lock;  /* guards the list only; taken once per thread */
    struct conn *conns;
};

static int map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return KW_OK;
    case SQLITE_CONSTRAINT: return KW_ERR_EXISTS;
    case SQLITE_NOMEM: return KW_ERR_NOMEM;
    case SQLITE_BUSY: case SQLITE_LOCKED: return KW_ERR_UNAVAILABLE;
    default: return KW_ERR_DB;
    }
}

static int open_db(const char *path, sqlite3 **out)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return KW_ERR_DB;
    }
    sqlite3_busy_timeout(db, 5000);
    /* WAL: readers do not block the writer or each other.  NORMAL sync is
     * durable across process crashes (the crash test's concern); FULL would
     * add an fsync per commit for power loss. */
    rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                          "PRAGMA foreign_keys=ON;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_close(db);
        return KW_ERR_DB;
    }
    *out = db;
    return KW_OK;
}

static struct conn *conn_get(struct sqlite_store *s)
{
    struct conn *c = pthread_getspecific(s->tls);
    if (c) return c;
    c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (open_db(s->path, &c->db)) {
        free(c);
        return NULL;
    }
    pthread_mutex_lock(&s->conns_lock);
    c->next = s->conns;
    s->conns = c;
    pthread_mutex_unlock(&s->conns_lock);
    pthread_setspecific(s->tls, c);
    return c;
}

/* The cached prepared statement, reset and ready to bind. */
static sqlite3_stmt *stmt(struct sqlite_store *s, enum stmt_id id)
{
    struct conn *c = conn_get(s);
    if (!c) return NULL;
    if (!c->stmts[id]) {
        if (sqlite3_prepare_v3(c->db, SQL[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmts[id], NULL) !=
            SQLITE_OK)
            return NULL;
    }
    return c->stmts[id];
}

static int finish(sqlite3_stmt *st, int rc)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* "" is stored as NULL (for the JSON list columns where NULL means "none"). */
static void bind_text_or_null(sqlite3_stmt *st, int i, const char *v)
{
    if (v && *v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* 0 is stored as NULL (times and limits where NULL means "none"). */
static void bind_int64_or_null(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t size)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    size_t n = v ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= size) n = size - 1;
    if (n) memcpy(dst, v, n);
    dst[n] = '\0';
}

static char *dup_col(sqlite3_stmt *st, int col)
{
    const unsigned char *v = sqlite3_column_text(st, col);
    return strdup(v ? (const char *)v : "");
}

/* Runs a statement that returns no rows; KW_ERR_NOTFOUND when it changed
 * nothing and `must_change` is set. */
static int exec_write(struct sqlite_store *s, sqlite3_stmt *st, int must_change)
{
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE) return finish(st, map_rc(rc));
    int changed = sqlite3_changes(conn_get(s)->db);
    return finish(st, must_change && changed == 0 ? KW_ERR_NOTFOUND : KW_OK);
}

/* Steps a single-row query; KW_ERR_NOTFOUND when there is no row.  The
 * caller reads columns and then calls finish(). */
static int step_one(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return KW_OK;
    finish(st, 0);
    return rc == SQLITE_DONE ? KW_ERR_NOTFOUND : map_rc(rc);
}

static int exec_sql(sqlite3 *db, const char *sql)
{
    return map_rc(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

/* The helpers store_sqlite_psk.c uses (declared in store_backend.h). */
sqlite3_stmt *kw_sq_stmt(kw_store *b, int id)
{
    struct conn *c = conn_get((struct sqlite_store *)b);
    if (!c || id < 0 || id >= KW_SQ_PSK_COUNT_STMTS) return NULL;
    if (!c->psk_stmts[id] && sqlite3_prepare_v3(c->db, kw_sq_psk_sql[id], -1,
                                                SQLITE_PREPARE_PERSISTENT, &c->psk_stmts[id],
                                                NULL) != SQLITE_OK)
        return NULL;
    return c->psk_stmts[id];
}
sqlite3_stmt *kw_sq_ev_stmt(kw_store *b, int id)
{
    struct conn *c = conn_get((struct sqlite_store *)b);
    if (!c || id < 0 || id >= KW_SQ_EV_COUNT_STMTS) return NULL;
    if (!c->ev_stmts[id] && sqlite3_prepare_v3(c->db, kw_sq_ev_sql[id], -1,
                                               SQLITE_PREPARE_PERSISTENT, &c->ev_stmts[id],
                                               NULL) != SQLITE_OK)
        return NULL;
    return c->ev_stmts[id];
}
sqlite3 *kw_sq_db(kw_store *b)
{
    struct conn *c = conn_get((struct sqlite_store *)b);
    return c ? c->db : NULL;
}
int kw_sq_finish(sqlite3_stmt *st, int rc) { return finish(st, rc); }
int kw_sq_step_one(sqlite3_stmt *st) { return step_one(st); }
int kw_sq_exec_write(kw_store *b, sqlite3_stmt *st, int must_change)
{
    return exec_write((struct sqlite_store *)b, st, must_change);
}
int kw_sq_map_rc(int rc) { return map_rc(rc); }
void kw_sq_copy_col(sqlite3_stmt *st, int col, char *dst, size_t size) { copy_col(st, col, dst, size); }
/* The thread's connection, for store_sqlite_console.c. */

/* ---- rows ---------------------------------------------------------------- */

#define S(base) ((struct sqlite_store *)(base))

static void read_user(sqlite3_stmt *st, kw_user *u)
{
    memset(u, 0, sizeof *u);
    u->id = sqlite3_column_int64(st, 0);
    copy_col(st, 1, u->uuid, sizeof u->uuid);
    copy_col(st, 2, u->email, sizeof u->email);
    copy_col(st, 3, u->first_name, sizeof u->first_name);
    u->is_active = sqlite3_column_int(st, 4);
    u->created_at = sqlite3_column_int64(st, 5);
}

static void read_project(sqlite3_stmt *st, kw_project *p)
{
    memset(p, 0, sizeof *p);
    p->id = sqlite3_column_int64(st, 0);
    copy_col(st, 1, p->uuid, sizeof p->uuid);
    copy_col(st, 2, p->org_id, sizeof p->org_id);
    copy_col(st, 3, p->name, sizeof p->name);
    copy_col(st, 4, p->api_token, sizeof p->api_token);
    p->created_at = sqlite3_column_int64(st, 5);
}

static void read_pkey(sqlite3_stmt *st, kw_pkey *k)
{
    copy_col(st, 0, k->id, sizeof k->id);
    k->user_id = sqlite3_column_int64(st, 1);
    copy_col(st, 2, k->label, sizeof k->label);
    copy_col(st, 3, k->secure_value, sizeof k->secure_value);
    copy_col(st, 4, k->mask_value, sizeof k->mask_value);
    k->created_at = sqlite3_column_int64(st, 5);
    k->last_used_at = sqlite3_column_int64(st, 6);
    k->last_rolled_at = sqlite3_column_int64(st, 7);
    copy_col(st, 8, k->scopes, sizeof k->scopes);
    copy_col(st, 9, k->scoped_teams, sizeof k->scoped_teams);
    copy_col(st, 10, k->scoped_orgs, sizeof k->scoped_orgs);
    k->expires_at = sqlite3_column_int64(st, 11);
    k->rate_limit_per_minute = sqlite3_column_int(st, 12);
    copy_col(st, 13, k->scopes_used, sizeof k->scopes_used);
}

static int read_flag(sqlite3_stmt *st, kw_flag *f)
{
    memset(f, 0, sizeof *f);
    f->id = sqlite3_column_int64(st, 0);
    f->project_id = sqlite3_column_int64(st, 1);
    copy_col(st, 2, f->key, sizeof f->key);
    copy_col(st, 3, f->name, sizeof f->name);
    f->filters = dup_col(st, 4);
    f->active = sqlite3_column_int(st, 5);
    f->deleted = sqlite3_column_int(st, 6);
    f->ensure_experience_continuity = sqlite3_column_int(st, 7);
    f->version = sqlite3_column_int64(st, 8);
    f->created_by = sqlite3_column_int64(st, 9);
    f->created_at = sqlite3_column_int64(st, 10);
    f->updated_at = sqlite3_column_int64(st, 11);
    return f->filters ? KW_OK : KW_ERR_NOMEM;
}

static int count_query(struct sqlite_store *s, enum stmt_id id, int64_t *count)
{
    sqlite3_stmt *st = stmt(s, id);
    if (!st) return KW_ERR_DB;
    int rc = step_one(st);
    if (rc) return rc;
    *count = sqlite3_column_int64(st, 0);
    return finish(st, KW_OK);
}

static int sq_user_count(kw_store *b, int64_t *count) { return count_query(S(b), ST_USER_COUNT, count); }

static int sq_user_create(kw_store *b, kw_user *u)
{
    sqlite3_stmt *st = stmt(S(b), ST_USER_INSERT);
    if (!st) return KW_ERR_DB;
    int rc = kw_uuid_v4(u->uuid);
    if (rc) return finish(st, rc);
    u->created_at = kw_now();
    bind_text(st, 1, u->uuid);
    bind_text(st, 2, u->email);
    bind_text(st, 3, u->first_name);
    sqlite3_bind_int(st, 4, u->is_active);
    sqlite3_bind_int64(st, 5, u->created_at);
    rc = exec_write(S(b), st, 0);
    if (!rc) u->id = sqlite3_last_insert_rowid(conn_get(S(b))->db);
    return rc;
}

static int user_lookup(struct sqlite_store *s, sqlite3_stmt *st, kw_user *out)
{
    (void)s;
    int rc = step_one(st);
    if (rc) return rc;
    read_user(st, out);
    return finish(st, KW_OK);
}

static int sq_user_get(kw_store *b, int64_t id, kw_user *out)
{
    sqlite3_stmt *st = stmt(S(b), ST_USER_GET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    return user_lookup(S(b), st, out);
}

static int sq_user_by_email(kw_store *b, const char *email, kw_user *out)
{
    sqlite3_stmt *st = stmt(S(b), ST_USER_BY_EMAIL);
    if (!st) return KW_ERR_DB;
    bind_text(st, 1, email);
    return user_lookup(S(b), st, out);
}

static int sq_user_set_active(kw_store *b, int64_t id, int active)
{
    sqlite3_stmt *st = stmt(S(b), ST_USER_SET_ACTIVE);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, active);
    return exec_write(S(b), st, 1);
}

static int sq_org_create(kw_store *b, kw_org *o)
{
    sqlite3_stmt *st = stmt(S(b), ST_ORG_INSERT);
    if (!st) return KW_ERR_DB;
    int rc = kw_uuid_v4(o->id);
    if (rc) return finish(st, rc);
    o->created_at = kw_now();
    bind_text(st, 1, o->id);
    bind_text(st, 2, o->name);
    sqlite3_bind_int64(st, 3, o->created_at);
    return exec_write(S(b), st, 0);
}

static int sq_org_get(kw_store *b, const char *id, kw_org *o)
{
    sqlite3_stmt *st = stmt(S(b), ST_ORG_GET);
    if (!st) return KW_ERR_DB;
    bind_text(st, 1, id);
    int rc = step_one(st);
    if (rc) return rc;
    copy_col(st, 0, o->id, sizeof o->id);
    copy_col(st, 1, o->name, sizeof o->name);
    o->created_at = sqlite3_column_int64(st, 2);
    return finish(st, KW_OK);
}

static int sq_membership_set(kw_store *b, int64_t user_id, const char *org_id, int level)
{
    sqlite3_stmt *st = stmt(S(b), ST_MEMBER_SET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    bind_text(st, 2, org_id);
    sqlite3_bind_int(st, 3, level);
    sqlite3_bind_int64(st, 4, kw_now());
    return exec_write(S(b), st, 0);
}

static int sq_membership_level(kw_store *b, int64_t user_id, const char *org_id, int *level)
{
    sqlite3_stmt *st = stmt(S(b), ST_MEMBER_LEVEL);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    bind_text(st, 2, org_id);
    int rc = step_one(st);
    if (rc) return rc;
    *level = sqlite3_column_int(st, 0);
    return finish(st, KW_OK);
}

static int sq_user_orgs(kw_store *b, int64_t user_id, kw_org_cb cb, void *ctx)
{
    sqlite3_stmt *st = stmt(S(b), ST_USER_ORGS);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_org o;
        copy_col(st, 0, o.id, sizeof o.id);
        copy_col(st, 1, o.name, sizeof o.name);
        o.created_at = sqlite3_column_int64(st, 2);
        int stop = cb(ctx, &o, sqlite3_column_int(st, 3));
        if (stop) return finish(st, stop);
    }
    return finish(st, map_rc(rc));
}

static int sq_project_create(kw_store *b, kw_project *p)
{
    sqlite3_stmt *st = stmt(S(b), ST_PROJECT_INSERT);
    if (!st) return KW_ERR_DB;
    int rc = kw_uuid_v4(p->uuid);
    if (rc) return finish(st, rc);
    p->created_at = kw_now();
    bind_text(st, 1, p->uuid);
    bind_text(st, 2, p->org_id);
    bind_text(st, 3, p->name);
    bind_text(st, 4, p->api_token);
    sqlite3_bind_int64(st, 5, p->created_at);
    rc = exec_write(S(b), st, 0);
    if (!rc) p->id = sqlite3_last_insert_rowid(conn_get(S(b))->db);
    return rc;
}

static int project_lookup(sqlite3_stmt *st, kw_project *out)
{
    int rc = step_one(st);
    if (rc) return rc;
    read_project(st, out);
    return finish(st, KW_OK);
}

static int sq_project_get(kw_store *b, int64_t id, kw_project *out)
{
    sqlite3_stmt *st = stmt(S(b), ST_PROJECT_GET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    return project_lookup(st, out);
}

static int sq_project_by_token(kw_store *b, const char *token, kw_project *out)
{
    sqlite3_stmt *st = stmt(S(b), ST_PROJECT_BY_TOKEN);
    if (!st) return KW_ERR_DB;
    bind_text(st, 1, token);
    return project_lookup(st, out);
}

static int sq_user_projects(kw_store *b, int64_t user_id, kw_project_cb cb, void *ctx)
{
    sqlite3_stmt *st = stmt(S(b), ST_USER_PROJECTS);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_project p;
        read_project(st, &p);
        int stop = cb(ctx, &p);
        if (stop) return finish(st, stop);
    }
    return finish(st, map_rc(rc));
}

static int sq_project_set_token(kw_store *b, int64_t id, const char *token)
{
    sqlite3_stmt *st = stmt(S(b), ST_PROJECT_SET_TOKEN);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, token);
    return exec_write(S(b), st, 1);
}

static int sq_pkey_insert(kw_store *b, const kw_pkey *k, int max_per_user)
{
    sqlite3_stmt *st = stmt(S(b), ST_PKEY_INSERT);
    if (!st) return KW_ERR_DB;
    bind_text(st, 1, k->id);
    sqlite3_bind_int64(st, 2, k->user_id);
    bind_text(st, 3, k->label);
    bind_text(st, 4, k->secure_value);
    bind_text(st, 5, k->mask_value);
    sqlite3_bind_int64(st, 6, k->created_at);
    bind_text_or_null(st, 7, k->scopes);
    bind_text_or_null(st, 8, k->scoped_teams);
    bind_text_or_null(st, 9, k->scoped_orgs);
    sqlite3_bind_int(st, 10, max_per_user);
    bind_int64_or_null(st, 11, k->expires_at);
    bind_int64_or_null(st, 12, k->rate_limit_per_minute);
    int rc = exec_write(S(b), st, 1);
    return rc == KW_ERR_NOTFOUND ? KW_ERR_LIMIT : rc;
}

static int pkey_lookup(sqlite3_stmt *st, kw_pkey *out)
{
    int rc = step_one(st);
    if (rc) return rc;
    read_pkey(st, out);
    return finish(st, KW_OK);
}

static int sq_pkey_get(kw_store *b, int64_t user_id, const char *id, kw_pkey *out)
{
    sqlite3_stmt *st = stmt(S(b), ST_PKEY_GET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    bind_text(st, 2, id);
    return pkey_lookup(st, out);
}

static int sq_pkey_by_hash(kw_store *b, const char *secure_value, kw_pkey *out)
{
    sqlite3_stmt *st = stmt(S(b), ST_PKEY_BY_HASH);
    if (!st) return KW_ERR_DB;
    bind_text(st, 1, secure_value);
    return pkey_lookup(st, out);
}

static int sq_pkey_auth_by_hash(kw_store *b, const char *secure_value, kw_pkey *out, int *active)
{
    sqlite3_stmt *st = stmt(S(b), ST_PKEY_AUTH_BY_HASH);
    if (!st) return KW_ERR_DB;
    bind_text(st, 1, secure_value);
    int rc = step_one(st);
    if (rc) return rc;
    read_pkey(st, out);
    *active = sqlite3_column_int(st, 14) != 0;
    return finish(st, KW_OK);
}

static int sq_pkey_list(kw_store *b, int64_t user_id, kw_pkey_cb cb, void *ctx)
{
    sqlite3_stmt *st = stmt(S(b), ST_PKEY_LIST);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    kw_pkey *k = malloc(sizeof *k);  /* 12 KiB: keep it off the callback's stack */
    if (!k) return finish(st, KW_ERR_NOMEM);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_pkey(st, k);
        stop = cb(ctx, k);
    }
    free(k);
    return finish(st, stop ? stop : map_rc(rc));
}

static int sq_pkey_update(kw_store *b, const kw_pkey *k)
{
    sqlite3_stmt *st = stmt(S(b), ST_PKEY_UPDATE);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, k->user_id);
    bind_text(st, 2, k->id);
    bind_text(st, 3, k->label);
    bind_text_or_null(st, 4, k->scopes);
    bind_text_or_null(st, 5, k->scoped_teams);
    bind_text_or_null(st, 6, k->scoped_orgs);
    bind_int64_or_null(st, 7, k->expires_at);
    bind_int64_or_null(st, 8, k->rate_limit_per_minute);
    return exec_write(S(b), st, 1);
}

static int sq_pkey_roll(kw_store *b, int64_t user_id, const char *id, const char *secure_value,
                        const char *mask_value, kw_time now)
{
    sqlite3_stmt *st = stmt(S(b), ST_PKEY_ROLL);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    bind_text(st, 2, id);
    bind_text(st, 3, secure_value);
    bind_text(st, 4, mask_value);
    sqlite3_bind_int64(st, 5, now);
    return exec_write(S(b), st, 1);
}

static int sq_pkey_delete(kw_store *b, int64_t user_id, const char *id)
{
    sqlite3_stmt *st = stmt(S(b), ST_PKEY_DELETE);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, user_id);
    bind_text(st, 2, id);
    return exec_write(S(b), st, 1);
}

static int sq_pkey_touch(kw_store *b, const char *id, kw_time now, kw_time interval)
{
    sqlite3_stmt *st = stmt(S(b), ST_PKEY_TOUCH);
    if (!st) return KW_ERR_DB;
    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, interval);
    return exec_write(S(b), st, 0);
}

static int sq_pkey_rehash(kw_store *b, const char *id, const char *old_value, const char *new_value)
{
    sqlite3_stmt *st = stmt(S(b), ST_PKEY_REHASH);
    if (!st) return KW_ERR_DB;
    bind_text(st, 1, id);
    bind_text(st, 2, old_value);
    bind_text(st, 3, new_value);
    return exec_write(S(b), st, 0);
}

static int sq_pkey_legacy_count(kw_store *b, int64_t *count)
{
    return count_query(S(b), ST_PKEY_LEGACY_COUNT, count);
}

static int sq_auth_generation(kw_store *b, int64_t *generation)
{
    return count_query(S(b), ST_AUTH_GENERATION, generation);
}

static int sq_flags_generation(kw_store *b, int64_t *generation)
{
    return count_query(S(b), ST_FLAGS_GENERATION, generation);
}

static int sq_flag_insert(kw_store *b, kw_flag *f)
{
    sqlite3_stmt *st = stmt(S(b), ST_FLAG_INSERT);
    if (!st) return KW_ERR_DB;
    f->created_at = f->updated_at = kw_now();
    f->version = 1;
    f->deleted = 0;
    sqlite3_bind_int64(st, 1, f->project_id);
    bind_text(st, 2, f->key);
    bind_text(st, 3, f->name);
    bind_text(st, 4, f->filters ? f->filters : "{}");
    sqlite3_bind_int(st, 5, f->active);
    sqlite3_bind_int(st, 6, f->ensure_experience_continuity);
    if (f->created_by)
        sqlite3_bind_int64(st, 7, f->created_by);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int64(st, 8, f->created_at);
    int rc = exec_write(S(b), st, 0);
    if (!rc) f->id = sqlite3_last_insert_rowid(conn_get(S(b))->db);
    return rc;
}

static int sq_flag_get(kw_store *b, int64_t project_id, int64_t id, kw_flag *out)
{
    sqlite3_stmt *st = stmt(S(b), ST_FLAG_GET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_int64(st, 2, id);
    int rc = step_one(st);
    if (rc) return rc;
    return finish(st, read_flag(st, out));
}

static int sq_flag_list(kw_store *b, int64_t project_id, enum kw_flag_order order,
                        int include_deleted, kw_flag_cb cb, void *ctx)
{
    sqlite3_stmt *st = stmt(S(b), order == KW_FLAG_BY_KEY ? ST_FLAG_LIST_BY_KEY : ST_FLAG_LIST_NEWEST);
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
    return finish(st, stop ? stop : map_rc(rc));
}

static int sq_flag_update(kw_store *b, kw_flag *f)
{
    sqlite3_stmt *st = stmt(S(b), ST_FLAG_UPDATE);
    if (!st) return KW_ERR_DB;
    f->updated_at = kw_now();
    sqlite3_bind_int64(st, 1, f->project_id);
    sqlite3_bind_int64(st, 2, f->id);
    bind_text(st, 3, f->key);
    bind_text(st, 4, f->name);
    bind_text(st, 5, f->filters ? f->filters : "{}");
    sqlite3_bind_int(st, 6, f->active);
    sqlite3_bind_int(st, 7, f->deleted);
    sqlite3_bind_int(st, 8, f->ensure_experience_continuity);
    sqlite3_bind_int64(st, 9, f->updated_at);
    int rc = exec_write(S(b), st, 1);
    if (!rc) f->version++;
    return rc;
}

static int sq_activity_insert(kw_store *b, kw_activity *a)
{
    sqlite3_stmt *st = stmt(S(b), ST_ACTIVITY_INSERT);
    if (!st) return KW_ERR_DB;
    if (!a->id[0] && kw_uuid_v4(a->id)) return finish(st, KW_ERR_CRYPTO);
    if (!a->created_at) a->created_at = kw_now();
    bind_text(st, 1, a->id);
    if (a->project_id)
        sqlite3_bind_int64(st, 2, a->project_id);
    else
        sqlite3_bind_null(st, 2);
    bind_text_or_null(st, 3, a->org_id);
    if (a->user_id)
        sqlite3_bind_int64(st, 4, a->user_id);
    else
        sqlite3_bind_null(st, 4);
    bind_text(st, 5, a->activity);
    bind_text(st, 6, a->scope);
    bind_text_or_null(st, 7, a->item_id);
    bind_text(st, 8, a->detail ? a->detail : "{}");
    bind_text_or_null(st, 9, a->ip_address);
    sqlite3_bind_int64(st, 10, a->created_at);
    return exec_write(S(b), st, 0);
}

/* The activity filters are optional, so the statement is composed from
 * fixed fragments; every value is still a bound parameter. */
static int activity_prepare(struct sqlite_store *s, const kw_activity_query *q, int count_only,
                            sqlite3_stmt **out)
{
    char sql[1024];
    size_t n = (size_t)snprintf(sql, sizeof sql, "%s FROM activity_log WHERE project_id = ?1",
                                count_only ? "SELECT COUNT(*)"
                                           : "SELECT id, project_id, org_id, user_id, activity, "
                                             "scope, item_id, detail, ip_address, created_at");
    int scope_count = 0;
    if (q->scopes) {
        while (q->scopes[scope_count] && scope_count < 16) scope_count++;
        if (scope_count) {
            n += (size_t)snprintf(sql + n, sizeof sql - n, " AND scope IN (");
            for (int i = 0; i < scope_count; i++)
                n += (size_t)snprintf(sql + n, sizeof sql - n, "%s?%d", i ? ", " : "", 10 + i);
            n += (size_t)snprintf(sql + n, sizeof sql - n, ")");
        }
    }
    if (q->user_id) n += (size_t)snprintf(sql + n, sizeof sql - n, " AND user_id = ?2");
    if (q->item_id) n += (size_t)snprintf(sql + n, sizeof sql - n, " AND item_id = ?3");
    if (q->before && !count_only)
        n += (size_t)snprintf(sql + n, sizeof sql - n, q->ascending
                                  ? " AND (created_at > ?4 OR (created_at = ?4 AND id > ?5))"
                                  : " AND (created_at < ?4 OR (created_at = ?4 AND id < ?5))");
    if (!count_only)
        snprintf(sql + n, sizeof sql - n, " ORDER BY created_at %s, id %s LIMIT ?6 OFFSET ?7",
                 q->ascending ? "ASC" : "DESC", q->ascending ? "ASC" : "DESC");
    struct conn *c = conn_get(s);
    if (!c) return KW_ERR_DB;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, q->project_id);
    if (q->user_id) sqlite3_bind_int64(st, 2, q->user_id);
    if (q->item_id) bind_text(st, 3, q->item_id);
    if (q->before && !count_only) {
        sqlite3_bind_int64(st, 4, q->before);
        bind_text(st, 5, q->before_id ? q->before_id : (q->ascending ? "" : "~"));
    }
    if (!count_only) {
        sqlite3_bind_int64(st, 6, q->limit > 0 ? q->limit : 100);
        sqlite3_bind_int64(st, 7, q->offset > 0 ? q->offset : 0);
    }
    for (int i = 0; i < scope_count; i++) bind_text(st, 10 + i, q->scopes[i]);
    *out = st;
    return KW_OK;
}

static int sq_activity_list(kw_store *b, const kw_activity_query *q, kw_activity_cb cb, void *ctx)
{
    sqlite3_stmt *st;
    int rc = activity_prepare(S(b), q, 0, &st);
    if (rc) return rc;
    int stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_activity a;
        memset(&a, 0, sizeof a);
        copy_col(st, 0, a.id, sizeof a.id);
        a.project_id = sqlite3_column_int64(st, 1);
        copy_col(st, 2, a.org_id, sizeof a.org_id);
        a.user_id = sqlite3_column_int64(st, 3);
        copy_col(st, 4, a.activity, sizeof a.activity);
        copy_col(st, 5, a.scope, sizeof a.scope);
        copy_col(st, 6, a.item_id, sizeof a.item_id);
        a.detail = dup_col(st, 7);
        copy_col(st, 8, a.ip_address, sizeof a.ip_address);
        a.created_at = sqlite3_column_int64(st, 9);
        stop = a.detail ? cb(ctx, &a) : KW_ERR_NOMEM;
        kw_activity_clear(&a);
    }
    rc = stop ? stop : map_rc(rc);
    sqlite3_finalize(st);
    return rc;
}

static int sq_activity_count(kw_store *b, const kw_activity_query *q, int64_t *count)
{
    sqlite3_stmt *st;
    int rc = activity_prepare(S(b), q, 1, &st);
    if (rc) return rc;
    rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = rc == SQLITE_ROW ? KW_OK : map_rc(rc);
    sqlite3_finalize(st);
    return rc;
}

static int migrate(struct sqlite_store *s)
{
    struct conn *c = conn_get(s);
    if (!c) return KW_ERR_DB;
    /* BEGIN IMMEDIATE: two processes starting on one file apply each
     * migration once; the second sees the version the first wrote. */
    int rc = exec_sql(c->db, "BEGIN IMMEDIATE");
    if (rc) return rc;
    rc = exec_sql(c->db, "CREATE TABLE IF NOT EXISTS schema_migrations("
                         "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    int current = 0;
    sqlite3_stmt *st = NULL;
    if (!rc && sqlite3_prepare_v2(c->db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                                  -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        current = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    for (int v = current + 1; !rc && v <= kw_sqlite_migration_count; v++) {
        rc = exec_sql(c->db, kw_sqlite_migrations[v - 1]);
        if (!rc) {
            char sql[128];
            snprintf(sql, sizeof sql, "INSERT INTO schema_migrations VALUES (%d, %lld)", v,
                     (long long)kw_now());
            rc = exec_sql(c->db, sql);
        }
    }
    if (rc) {
        exec_sql(c->db, "ROLLBACK");
        return rc;
    }
    return exec_sql(c->db, "COMMIT");
}

static void sqlite_close(kw_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    for (struct conn *c = s->conns, *next; c; c = next) {
        next = c->next;
        for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(c->stmts[i]);
        for (int i = 0; i < KW_SQ_PSK_COUNT_STMTS; i++) sqlite3_finalize(c->psk_stmts[i]);
        for (int i = 0; i < KW_SQ_EV_COUNT_STMTS; i++) sqlite3_finalize(c->ev_stmts[i]);
        sqlite3_close(c->db);
        free(c);
    }
    pthread_key_delete(s->tls);
    pthread_mutex_destroy(&s->conns_lock);
    free(s->path);
    free(s);
}

static int sqlite_schema_version(kw_store *base, int *version)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    struct conn *c = conn_get(s);
    if (!c) return KW_ERR_DB;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->db, "SELECT MAX(version) FROM schema_migrations", -1, &st, NULL))
        return KW_ERR_DB;
    int rc = sqlite3_step(st) == SQLITE_ROW ? KW_OK : KW_ERR_DB;
    *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

static int sqlite_begin(kw_store *base)
{
    struct conn *c = conn_get((struct sqlite_store *)base);
    return c ? exec_sql(c->db, "BEGIN IMMEDIATE") : KW_ERR_DB;
}

static int sqlite_commit(kw_store *base)
{
    struct conn *c = conn_get((struct sqlite_store *)base);
    return c ? exec_sql(c->db, "COMMIT") : KW_ERR_DB;
}

static void sqlite_rollback(kw_store *base)
{
    struct conn *c = conn_get((struct sqlite_store *)base);
    if (c) exec_sql(c->db, "ROLLBACK");
}

static const struct kw_store_ops SQLITE_OPS = {
    .name = "sqlite",
    .close = sqlite_close,
    .schema_version = sqlite_schema_version,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .user_count = sq_user_count,
    .user_create = sq_user_create,
    .user_get = sq_user_get,
    .user_by_email = sq_user_by_email,
    .user_set_active = sq_user_set_active,
    .org_create = sq_org_create,
    .org_get = sq_org_get,
    .membership_set = sq_membership_set,
    .membership_level = sq_membership_level,
    .user_orgs = sq_user_orgs,
    .project_create = sq_project_create,
    .project_get = sq_project_get,
    .project_by_token = sq_project_by_token,
    .user_projects = sq_user_projects,
    .project_set_token = sq_project_set_token,
    .pkey_insert = sq_pkey_insert,
    .pkey_get = sq_pkey_get,
    .pkey_list = sq_pkey_list,
    .pkey_update = sq_pkey_update,
    .pkey_roll = sq_pkey_roll,
    .pkey_delete = sq_pkey_delete,
    .pkey_by_hash = sq_pkey_by_hash,
    .pkey_touch = sq_pkey_touch,
    .pkey_rehash = sq_pkey_rehash,
    .pkey_legacy_count = sq_pkey_legacy_count,
    .psk_insert = kw_sq_psk_insert,
    .psk_get = kw_sq_psk_get,
    .psk_list = kw_sq_psk_list,
    .psk_count = kw_sq_psk_count,
    .psk_update = kw_sq_psk_update,
    .psk_roll = kw_sq_psk_roll,
    .psk_delete = kw_sq_psk_delete,
    .psk_by_hash = kw_sq_psk_by_hash,
    .psk_touch = kw_sq_psk_touch,
    .flag_insert = sq_flag_insert,
    .flag_get = sq_flag_get,
    .flag_list = sq_flag_list,
    .flag_update = sq_flag_update,
    .activity_insert = sq_activity_insert,
    .activity_list = sq_activity_list,
    .activity_count = sq_activity_count,
    .auth_generation = sq_auth_generation,
    .flags_generation = sq_flags_generation,
    .pkey_auth_by_hash = sq_pkey_auth_by_hash,
    .events_insert = kw_sq_events_insert,
    .events_query = kw_sq_events_query,
    .endpoint_insert = kw_sq_endpoint_insert,
    .endpoint_get = kw_sq_endpoint_get,
    .endpoint_list = kw_sq_endpoint_list,
    .endpoint_count = kw_sq_endpoint_count,
    .endpoint_update = kw_sq_endpoint_update,
    .endpoint_delete = kw_sq_endpoint_delete,
    .key_scopes_used_many = kw_sq_key_scopes_used_many,
    .rolled_set = kw_sq_rolled_set,
    .rolled_get = kw_sq_rolled_get,
    .rolled_expiry = kw_sq_rolled_expiry,
    .rolled_live = kw_sq_rolled_live,
    .user_list = kw_sq_user_list,
    .project_list = kw_sq_project_list,
    .import_user = kw_sq_import_user,
    .import_org = kw_sq_import_org,
    .import_project = kw_sq_import_project,
    .import_pkey = kw_sq_import_pkey,
    .import_done = kw_sq_import_done,
    .user_password_get = kw_sq_user_password_get,
    .user_password_set = kw_sq_user_password_set,
    .session_insert = kw_sq_session_insert,
    .session_get = kw_sq_session_get,
    .session_touch = kw_sq_session_touch,
    .session_delete = kw_sq_session_delete,
    .session_delete_user = kw_sq_session_delete_user,
    .invite_insert = kw_sq_invite_insert,
    .invite_by_hash = kw_sq_invite_by_hash,
    .invite_accept = kw_sq_invite_accept,
    .login_failure_add = kw_sq_login_failure_add,
    .login_failure_nth = kw_sq_login_failure_nth,
    .login_failure_clear = kw_sq_login_failure_clear,
    .meta_secret = kw_sq_meta_secret,
};

int kw_store_sqlite_open(const char *path, kw_store **out)
{
    *out = NULL;
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    s->base.ops = &SQLITE_OPS;
    s->path = strdup(path);
    pthread_mutex_init(&s->conns_lock, NULL);
    if (!s->path || pthread_key_create(&s->tls, NULL)) {
        free(s->path);
        free(s);
        return KW_ERR_NOMEM;
    }
    int rc = migrate(s);
    if (rc) {
        sqlite_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return KW_OK;
}
