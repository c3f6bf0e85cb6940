/* store_pg.c — the PostgreSQL backend (libpq), for several keyward
 * instances sharing one database.
 *
 * Same schema and semantics as the SQLite backend (store_sqlite.c): times
 * are int64 microseconds (NULL reads as 0), "" scopes / scoped_* are stored
 * as NULL, writes that must hit a row return KW_ERR_NOTFOUND when they hit
 * none, constraint violations return KW_ERR_EXISTS, and lists come in the
 * same order.  Connections, statement preparation and error mapping live in
 * store_pg_conn.c (one connection per thread; see there for why); this file
 * holds the fixed SQL, the helpers that run it, the migrations and the ops
 * table; each kind of stored object has its own store_pg_*.c file (see
 * store_pg.h).
 *
 * Migrations run in one transaction that first takes
 * pg_advisory_xact_lock(MIGRATION_LOCK): several instances starting at once
 * queue on the lock and the later ones find the schema already current. */
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>

#include "keyward/keyward.h"
#include "store_schema.h"

/* Arbitrary, fixed: "kwmg" in ASCII.  Only keyward's migrations take it. */
#define MIGRATION_LOCK 0x6b776d67

#define USER_COLS "id, uuid, email, first_name, is_active, created_at"
#define PROJECT_COLS "id, uuid, org_id, name, api_token, created_at"
#define PKEY_COLS "id, user_id, label, secure_value, mask_value, created_at, last_used_at, " \
                  "last_rolled_at, scopes, scoped_teams, scoped_organizations, expires_at, " \
                  "rate_limit_per_minute, scopes_used"
#define FLAG_COLS "id, project_id, key, name, filters, active, deleted, " \
                  "ensure_experience_continuity, version, created_by, created_at, updated_at"
#define PSK_COLS "id, project_id, label, secure_value, mask_value, created_at, created_by, " \
                 "last_used_at, last_rolled_at, scopes, expires_at, rate_limit_per_minute, scopes_used"
#define ACTIVITY_COLS "id, project_id, org_id, user_id, activity, scope, item_id, detail, " \
                      "ip_address, created_at"

/* Every fixed statement of the backend, prepared once per connection on
 * first use (kw_pg_run); each runs in the store_pg_*.c file of its object.
 * They share one table because store_pg_conn.c numbers the prepared
 * statements of a connection by their index here. */
static const char *const SQL[KW_PG_STMT_COUNT] = {
    [KW_PG_USER_COUNT] = "SELECT COUNT(*) FROM users",
    [KW_PG_USER_INSERT] = "INSERT INTO users(uuid, email, first_name, is_active, created_at) "
                          "VALUES ($1, $2, $3, $4::integer <> 0, $5) RETURNING id",
    [KW_PG_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = $1",
    [KW_PG_USER_BY_EMAIL] = "SELECT " USER_COLS " FROM users WHERE email = $1",
    [KW_PG_USER_SET_ACTIVE] = "UPDATE users SET is_active = $2::integer <> 0 WHERE id = $1",
    [KW_PG_ORG_INSERT] = "INSERT INTO organizations(id, name, created_at) VALUES ($1, $2, $3)",
    [KW_PG_ORG_GET] = "SELECT id, name, created_at FROM organizations WHERE id = $1",
    [KW_PG_MEMBER_SET] = "INSERT INTO memberships(user_id, org_id, level, created_at) "
                         "VALUES ($1, $2, $3, $4) ON CONFLICT(user_id, org_id) DO UPDATE SET level = $3",
    [KW_PG_MEMBER_LEVEL] = "SELECT level FROM memberships WHERE user_id = $1 AND org_id = $2",
    [KW_PG_USER_ORGS] = "SELECT o.id, o.name, o.created_at, m.level FROM organizations o "
                        "JOIN memberships m ON m.org_id = o.id WHERE m.user_id = $1 ORDER BY o.created_at",
    [KW_PG_PROJECT_INSERT] = "INSERT INTO projects(uuid, org_id, name, api_token, created_at) "
                             "VALUES ($1, $2, $3, $4, $5) RETURNING id",
    [KW_PG_PROJECT_GET] = "SELECT " PROJECT_COLS " FROM projects WHERE id = $1",
    [KW_PG_PROJECT_BY_TOKEN] = "SELECT " PROJECT_COLS " FROM projects WHERE api_token = $1",
    [KW_PG_USER_PROJECTS] = "SELECT p.id, p.uuid, p.org_id, p.name, p.api_token, p.created_at "
                            "FROM projects p JOIN memberships m ON m.org_id = p.org_id "
                            "WHERE m.user_id = $1 ORDER BY p.id",
    [KW_PG_PROJECT_SET_TOKEN] = "UPDATE projects SET api_token = $2 WHERE id = $1",
    /* The limit check and the insert are one statement; the function takes
     * a row lock first so concurrent sessions cannot both pass it (see
     * store_schema_pg.c). */
    [KW_PG_PKEY_INSERT] = "SELECT kw_pkey_insert($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    [KW_PG_PKEY_GET] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE user_id = $1 AND id = $2",
    [KW_PG_PKEY_LIST] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE user_id = $1 "
                        "ORDER BY created_at DESC, id DESC",
    [KW_PG_PKEY_UPDATE] = "UPDATE personal_api_keys SET label = $3, scopes = $4, scoped_teams = $5, "
                          "scoped_organizations = $6, expires_at = $7, rate_limit_per_minute = $8 "
                          "WHERE user_id = $1 AND id = $2",
    [KW_PG_PKEY_ROLL] = "UPDATE personal_api_keys SET secure_value = $3, mask_value = $4, "
                        "last_rolled_at = $5 WHERE user_id = $1 AND id = $2",
    [KW_PG_PKEY_DELETE] = "DELETE FROM personal_api_keys WHERE user_id = $1 AND id = $2",
    [KW_PG_PKEY_BY_HASH] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE secure_value = $1",
    /* A concurrent second UPDATE waits for the first, then re-checks the
     * WHERE clause against the new row and changes nothing. */
    [KW_PG_PKEY_TOUCH] = "UPDATE personal_api_keys SET last_used_at = $2::bigint WHERE id = $1 "
                         "AND (last_used_at IS NULL OR last_used_at <= $2::bigint - $3::bigint)",
    [KW_PG_PKEY_REHASH] = "UPDATE personal_api_keys SET secure_value = $3 "
                          "WHERE id = $1 AND secure_value = $2",
    /* A range on the unique index: O(log n), not a scan, since it is
     * asked again whenever a legacy-length key misses. */
    [KW_PG_PKEY_LEGACY_COUNT] = "SELECT COUNT(*) FROM personal_api_keys "
                                "WHERE secure_value >= 'pbkdf2_sha256$' AND secure_value < 'pbkdf2_sha256%'",
    [KW_PG_AUTH_GENERATION] = "SELECT value FROM kw_meta WHERE name = 'auth_generation'",
    [KW_PG_FLAGS_GENERATION] = "SELECT value FROM kw_meta WHERE name = 'flags_generation'",
    /* The verification miss path: key and owner's active flag in one round
     * trip (see kw_store_pkey_auth_by_hash). */
    [KW_PG_PKEY_AUTH_BY_HASH] = "SELECT k.id, k.user_id, k.label, k.secure_value, k.mask_value, "
                                "k.created_at, k.last_used_at, k.last_rolled_at, k.scopes, "
                                "k.scoped_teams, k.scoped_organizations, k.expires_at, "
                                "k.rate_limit_per_minute, k.scopes_used, u.is_active "
                                "FROM personal_api_keys k JOIN users u ON u.id = k.user_id "
                                "WHERE k.secure_value = $1",
    [KW_PG_FLAG_INSERT] = "INSERT INTO feature_flags(project_id, key, name, filters, active, deleted, "
                          "ensure_experience_continuity, version, created_by, created_at, updated_at) "
                          "VALUES ($1, $2, $3, $4, $5::integer <> 0, FALSE, $6::integer <> 0, 1, $7, "
                          "$8, $8) RETURNING id",
    [KW_PG_FLAG_GET] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = $1 AND id = $2",
    [KW_PG_FLAG_LIST_NEWEST] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = $1 "
                               "AND ($2::integer <> 0 OR NOT deleted) ORDER BY created_at DESC, id DESC",
    [KW_PG_FLAG_LIST_BY_KEY] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = $1 "
                               "AND ($2::integer <> 0 OR NOT deleted) ORDER BY key, id",
    [KW_PG_FLAG_UPDATE] = "UPDATE feature_flags SET key = $3, name = $4, filters = $5, "
                          "active = $6::integer <> 0, deleted = $7::integer <> 0, "
                          "ensure_experience_continuity = $8::integer <> 0, version = version + 1, "
                          "updated_at = $9 WHERE project_id = $1 AND id = $2",
    [KW_PG_ACTIVITY_INSERT] = "INSERT INTO activity_log(" ACTIVITY_COLS ") "
                              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    [KW_PG_SCHEMA_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    /* Limit check + insert in one call: see kw_psk_insert in migration 2. */
    [KW_PG_PSK_INSERT] = "SELECT kw_psk_insert($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    [KW_PG_PSK_GET] = "SELECT " PSK_COLS " FROM project_secret_api_keys "
                      "WHERE project_id = $1 AND id = $2",
    [KW_PG_PSK_LIST] = "SELECT " PSK_COLS " FROM project_secret_api_keys WHERE project_id = $1 "
                       "ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    [KW_PG_PSK_COUNT] = "SELECT COUNT(*) FROM project_secret_api_keys WHERE project_id = $1",
    [KW_PG_PSK_UPDATE] = "UPDATE project_secret_api_keys SET label = $3, scopes = $4, expires_at = $5, "
                         "rate_limit_per_minute = $6 "
                         "WHERE project_id = $1 AND id = $2",
    [KW_PG_PSK_ROLL] = "UPDATE project_secret_api_keys SET secure_value = $3, mask_value = $4, "
                       "last_rolled_at = $5 WHERE project_id = $1 AND id = $2",
    [KW_PG_PSK_DELETE] = "DELETE FROM project_secret_api_keys WHERE project_id = $1 AND id = $2",
    [KW_PG_PSK_BY_HASH] = "SELECT " PSK_COLS " FROM project_secret_api_keys WHERE secure_value = $1",
    [KW_PG_PSK_TOUCH] = "UPDATE project_secret_api_keys SET last_used_at = $2::bigint WHERE id = $1 "
                        "AND (last_used_at IS NULL OR last_used_at <= $2::bigint - $3::bigint)",
};
_Static_assert(KW_PG_STMT_COUNT <= PG_MAX_STMTS, "raise PG_MAX_STMTS");

#define P(base) ((struct pg_store *)(base))

/* ---- statement helpers --------------------------------------------------- */

/* A write; KW_ERR_NOTFOUND when it changed no row and `must_change` is set. */
int kw_pg_write(struct pg_store *s, int id, const struct pg_params *p, int must_change)
{
    PGresult *r;
    int rc = kw_pg_run(s, id, p, &r);
    if (rc) return rc;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return must_change && changed == 0 ? KW_ERR_NOTFOUND : KW_OK;
}

/* A single-row query: KW_ERR_NOTFOUND when there is no row.  On KW_OK the
 * caller reads row 0 of *out and clears it. */
int kw_pg_query_one(struct pg_store *s, int id, const struct pg_params *p, PGresult **out)
{
    int rc = kw_pg_run(s, id, p, out);
    if (rc) return rc;
    if (PQntuples(*out) == 0) {
        PQclear(*out);
        *out = NULL;
        return KW_ERR_NOTFOUND;
    }
    return KW_OK;
}

int kw_pg_count(struct pg_store *s, int id, int64_t *count)
{
    PGresult *r;
    int rc = kw_pg_query_one(s, id, NULL, &r);
    if (rc) return rc;
    *count = kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

/* An INSERT … RETURNING id. */
int kw_pg_insert_returning(struct pg_store *s, int id, const struct pg_params *p, int64_t *new_id)
{
    PGresult *r;
    int rc = kw_pg_query_one(s, id, p, &r);
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    *new_id = kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

/* ---- schema, transactions, lifecycle ------------------------------------- */

static int migrate(struct pg_store *s)
{
    struct pg_conn *c;
    int rc = kw_pg_conn_get(s, &c);
    if (rc) return rc;
    char sql[160];
    snprintf(sql, sizeof sql, "BEGIN; SELECT pg_advisory_xact_lock(%d)", MIGRATION_LOCK);
    rc = kw_pg_exec(c, sql);
    if (rc) {
        kw_pg_exec(c, "ROLLBACK");
        return rc;
    }
    rc = kw_pg_exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations("
                       "version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
    int current = 0;
    PGresult *r = NULL;
    if (!rc) rc = kw_pg_run(s, KW_PG_SCHEMA_VERSION, NULL, &r);
    if (!rc) current = (int)kw_pg_col_int(r, 0, 0);
    PQclear(r);
    for (int v = current + 1; !rc && v <= kw_pg_migration_count; v++) {
        rc = kw_pg_exec(c, kw_pg_migrations[v - 1]);
        if (rc) break;
        struct pg_params p = {0};
        kw_pg_int(&p, v);
        kw_pg_int(&p, kw_now());
        rc = kw_pg_run_sql(s, "INSERT INTO schema_migrations(version, applied_at) VALUES ($1, $2)",
                           &p, &r);
        PQclear(r);
    }
    if (rc) {
        kw_pg_exec(c, "ROLLBACK");
        return rc;
    }
    return kw_pg_exec(c, "COMMIT");
}

static int pg_schema_version(kw_store *b, int *version)
{
    PGresult *r;
    int rc = kw_pg_query_one(P(b), KW_PG_SCHEMA_VERSION, NULL, &r);
    if (rc) return rc;
    *version = (int)kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

static int pg_begin(kw_store *b)
{
    struct pg_conn *c;
    int rc = kw_pg_conn_get(P(b), &c);
    return rc ? rc : kw_pg_exec(c, "BEGIN");
}

static int pg_commit(kw_store *b)
{
    struct pg_conn *c;
    int rc = kw_pg_conn_get(P(b), &c);
    if (rc) return rc;
    /* COMMIT of a transaction that saw an error "succeeds" as a ROLLBACK;
     * report it as the failure it is. */
    if (PQtransactionStatus(c->db) == PQTRANS_INERROR) {
        kw_pg_exec(c, "ROLLBACK");
        return KW_ERR_DB;
    }
    return kw_pg_exec(c, "COMMIT");
}

static void pg_rollback(kw_store *b)
{
    struct pg_conn *c;
    if (kw_pg_conn_get(P(b), &c) == KW_OK) kw_pg_exec(c, "ROLLBACK");
}

/* Looks, never connects: it runs after every request, and must not try to
 * reach a database that is down (a lost session has no transaction left). */
static int pg_in_transaction(kw_store *b)
{
    struct pg_conn *c = pthread_getspecific(P(b)->tls);
    return c && PQstatus(c->db) == CONNECTION_OK && PQtransactionStatus(c->db) != PQTRANS_IDLE;
}

static void pg_close(kw_store *b)
{
    kw_pg_store_fini(P(b));
    free(b);
}

static const struct kw_store_ops PG_OPS = {
    .name = "postgresql",
    .close = pg_close,
    .schema_version = pg_schema_version,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_transaction = pg_in_transaction,
    .user_count = kw_pg_user_count,
    .user_create = kw_pg_user_create,
    .user_get = kw_pg_user_get,
    .user_by_email = kw_pg_user_by_email,
    .user_set_active = kw_pg_user_set_active,
    .org_create = kw_pg_org_create,
    .org_get = kw_pg_org_get,
    .membership_set = kw_pg_membership_set,
    .membership_level = kw_pg_membership_level,
    .user_orgs = kw_pg_user_orgs,
    .project_create = kw_pg_project_create,
    .project_get = kw_pg_project_get,
    .project_by_token = kw_pg_project_by_token,
    .user_projects = kw_pg_user_projects,
    .project_set_token = kw_pg_project_set_token,
    .pkey_insert = kw_pg_pkey_insert,
    .pkey_get = kw_pg_pkey_get,
    .pkey_list = kw_pg_pkey_list,
    .pkey_update = kw_pg_pkey_update,
    .pkey_roll = kw_pg_pkey_roll,
    .pkey_delete = kw_pg_pkey_delete,
    .pkey_by_hash = kw_pg_pkey_by_hash,
    .pkey_touch = kw_pg_pkey_touch,
    .pkey_rehash = kw_pg_pkey_rehash,
    .pkey_legacy_count = kw_pg_pkey_legacy_count,
    .auth_generation = kw_pg_auth_generation,
    .flags_generation = kw_pg_flags_generation,
    .pkey_auth_by_hash = kw_pg_pkey_auth_by_hash,
    .wait_change = kw_pg_wait_change,
    .key_scopes_used_many = kw_pg_key_scopes_used_many,
    .key_touch_many = kw_pg_key_touch_many,
    .rolled_set = kw_pg_rolled_set,
    .rolled_get = kw_pg_rolled_get,
    .rolled_expiry = kw_pg_rolled_expiry,
    .rolled_live = kw_pg_rolled_live,
    .user_list = kw_pg_user_list,
    .project_list = kw_pg_project_list,
    .import_user = kw_pg_import_user,
    .import_org = kw_pg_import_org,
    .import_project = kw_pg_import_project,
    .import_pkey = kw_pg_import_pkey,
    .import_done = kw_pg_import_done,
    .psk_insert = kw_pg_psk_insert,
    .psk_get = kw_pg_psk_get,
    .psk_list = kw_pg_psk_list,
    .psk_count = kw_pg_psk_count,
    .psk_update = kw_pg_psk_update,
    .psk_roll = kw_pg_psk_roll,
    .psk_delete = kw_pg_psk_delete,
    .psk_by_hash = kw_pg_psk_by_hash,
    .psk_touch = kw_pg_psk_touch,
    .flag_insert = kw_pg_flag_insert,
    .flag_get = kw_pg_flag_get,
    .flag_list = kw_pg_flag_list,
    .flag_update = kw_pg_flag_update,
    .activity_insert = kw_pg_activity_insert,
    .activity_list = kw_pg_activity_list,
    .activity_count = kw_pg_activity_count,
    .events_insert = kw_pg_events_insert,
    .events_query = kw_pg_events_query,
    .endpoint_insert = kw_pg_endpoint_insert,
    .endpoint_get = kw_pg_endpoint_get,
    .endpoint_list = kw_pg_endpoint_list,
    .endpoint_count = kw_pg_endpoint_count,
    .endpoint_update = kw_pg_endpoint_update,
    .endpoint_delete = kw_pg_endpoint_delete,
    .user_password_get = kw_pg_password_get,
    .user_password_set = kw_pg_password_set,
    .session_insert = kw_pg_session_insert,
    .session_get = kw_pg_session_get,
    .session_touch = kw_pg_session_touch,
    .session_delete = kw_pg_session_delete,
    .session_delete_user = kw_pg_session_delete_user,
    .invite_insert = kw_pg_invite_insert,
    .invite_by_hash = kw_pg_invite_by_hash,
    .invite_accept = kw_pg_invite_accept,
    .login_failure_add = kw_pg_login_failure_add,
    .login_failure_nth = kw_pg_login_failure_nth,
    .login_failure_clear = kw_pg_login_failure_clear,
    .meta_secret = kw_pg_meta_secret,
};

int kw_store_pg_open(const char *url, kw_store **out)
{
    *out = NULL;
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    s->base.ops = &PG_OPS;
    int rc = kw_pg_store_init(s, url, SQL, KW_PG_STMT_COUNT);
    if (rc) {
        free(s);
        return rc;
    }
    rc = migrate(s);
    if (rc) {
        pg_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return KW_OK;
}
