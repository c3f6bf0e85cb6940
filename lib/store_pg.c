/* store_pg.c — the PostgreSQL backend (libpq), for several keyward
 * instances sharing one database.
 *
 * Same schema and semantics as the SQLite backend (store_sqlite.c): times
 * are int64 microseconds (NULL reads as 0), "" scopes / scoped_* are stored
 * as NULL, writes that must hit a row return KW_ERR_NOTFOUND when they hit
 * none, constraint violations return KW_ERR_EXISTS, and lists come in the
 * same order.  Connections, statement preparation and error mapping live in
 * store_pg_conn.c (one connection per thread; see there for why); this file
 * holds the SQL, the row decoding and the migrations; the activity log's
 * composed queries are in store_pg_activity.c.
 *
 * Migrations run in one transaction that first takes
 * pg_advisory_xact_lock(MIGRATION_LOCK): several instances starting at once
 * queue on the lock and the later ones find the schema already current. */
#include "store_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store_schema.h"

/* Arbitrary, fixed: "kwmg" in ASCII.  Only keyward's migrations take it. */
#define MIGRATION_LOCK 0x6b776d67

enum stmt_id {
    ST_USER_COUNT, ST_USER_INSERT, ST_USER_GET, ST_USER_BY_EMAIL, ST_USER_SET_ACTIVE,
    ST_ORG_INSERT, ST_ORG_GET, ST_MEMBER_SET, ST_MEMBER_LEVEL, ST_USER_ORGS,
    ST_PROJECT_INSERT, ST_PROJECT_GET, ST_PROJECT_BY_TOKEN, ST_USER_PROJECTS, ST_PROJECT_SET_TOKEN,
    ST_PKEY_INSERT, ST_PKEY_GET, ST_PKEY_LIST, ST_PKEY_UPDATE, ST_PKEY_ROLL, ST_PKEY_DELETE,
    ST_PKEY_BY_HASH, ST_PKEY_TOUCH, ST_PKEY_REHASH, ST_PKEY_LEGACY_COUNT,
    ST_FLAG_INSERT, ST_FLAG_GET, ST_FLAG_LIST_NEWEST, ST_FLAG_LIST_BY_KEY, ST_FLAG_UPDATE,
    ST_ACTIVITY_INSERT, ST_SCHEMA_VERSION, ST_AUTH_GENERATION,
    ST_PSK_INSERT, ST_PSK_GET, ST_PSK_LIST, ST_PSK_COUNT, ST_PSK_UPDATE, ST_PSK_ROLL, ST_PSK_DELETE,
    ST_PSK_BY_HASH, ST_PSK_TOUCH,
    ST_FLAGS_GENERATION, ST_PKEY_AUTH_BY_HASH,
    ST_COUNT
};

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

static const char *const SQL[ST_COUNT] = {
    [ST_USER_COUNT] = "SELECT COUNT(*) FROM users",
    [ST_USER_INSERT] = "INSERT INTO users(uuid, email, first_name, is_active, created_at) "
                       "VALUES ($1, $2, $3, $4::integer <> 0, $5) RETURNING id",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE id = $1",
    [ST_USER_BY_EMAIL] = "SELECT " USER_COLS " FROM users WHERE email = $1",
    [ST_USER_SET_ACTIVE] = "UPDATE users SET is_active = $2::integer <> 0 WHERE id = $1",
    [ST_ORG_INSERT] = "INSERT INTO organizations(id, name, created_at) VALUES ($1, $2, $3)",
    [ST_ORG_GET] = "SELECT id, name, created_at FROM organizations WHERE id = $1",
    [ST_MEMBER_SET] = "INSERT INTO memberships(user_id, org_id, level, created_at) "
                      "VALUES ($1, $2, $3, $4) ON CONFLICT(user_id, org_id) DO UPDATE SET level = $3",
    [ST_MEMBER_LEVEL] = "SELECT level FROM memberships WHERE user_id = $1 AND org_id = $2",
    [ST_USER_ORGS] = "SELECT o.id, o.name, o.created_at, m.level FROM organizations o "
                     "JOIN memberships m ON m.org_id = o.id WHERE m.user_id = $1 ORDER BY o.created_at",
    [ST_PROJECT_INSERT] = "INSERT INTO projects(uuid, org_id, name, api_token, created_at) "
                          "VALUES ($1, $2, $3, $4, $5) RETURNING id",
    [ST_PROJECT_GET] = "SELECT " PROJECT_COLS " FROM projects WHERE id = $1",
    [ST_PROJECT_BY_TOKEN] = "SELECT " PROJECT_COLS " FROM projects WHERE api_token = $1",
    [ST_USER_PROJECTS] = "SELECT p.id, p.uuid, p.org_id, p.name, p.api_token, p.created_at "
                         "FROM projects p JOIN memberships m ON m.org_id = p.org_id "
                         "WHERE m.user_id = $1 ORDER BY p.id",
    [ST_PROJECT_SET_TOKEN] = "UPDATE projects SET api_token = $2 WHERE id = $1",
    /* The limit check and the insert are one statement; the function takes
     * a row lock first so concurrent sessions cannot both pass it (see
     * store_schema_pg.c). */
    [ST_PKEY_INSERT] = "SELECT kw_pkey_insert($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    [ST_PKEY_GET] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE user_id = $1 AND id = $2",
    [ST_PKEY_LIST] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE user_id = $1 "
                     "ORDER BY created_at DESC, id DESC",
    [ST_PKEY_UPDATE] = "UPDATE personal_api_keys SET label = $3, scopes = $4, scoped_teams = $5, "
                       "scoped_organizations = $6, expires_at = $7, rate_limit_per_minute = $8 "
                       "WHERE user_id = $1 AND id = $2",
    [ST_PKEY_ROLL] = "UPDATE personal_api_keys SET secure_value = $3, mask_value = $4, "
                     "last_rolled_at = $5 WHERE user_id = $1 AND id = $2",
    [ST_PKEY_DELETE] = "DELETE FROM personal_api_keys WHERE user_id = $1 AND id = $2",
    [ST_PKEY_BY_HASH] = "SELECT " PKEY_COLS " FROM personal_api_keys WHERE secure_value = $1",
    /* A concurrent second UPDATE waits for the first, then re-checks the
     * WHERE clause against the new row and changes nothing. */
    [ST_PKEY_TOUCH] = "UPDATE personal_api_keys SET last_used_at = $2::bigint WHERE id = $1 "
                      "AND (last_used_at IS NULL OR last_used_at <= $2::bigint - $3::bigint)",
    [ST_PKEY_REHASH] = "UPDATE personal_api_keys SET secure_value = $3 "
                       "WHERE id = $1 AND secure_value = $2",
    /* A range on the unique index: O(log n), not a scan, since it is
     * asked again whenever a legacy-length key misses. */
    [ST_PKEY_LEGACY_COUNT] = "SELECT COUNT(*) FROM personal_api_keys "
                             "WHERE secure_value >= 'pbkdf2_sha256$' AND secure_value < 'pbkdf2_sha256%'",
    [ST_AUTH_GENERATION] = "SELECT value FROM kw_meta WHERE name = 'auth_generation'",
    [ST_FLAGS_GENERATION] = "SELECT value FROM kw_meta WHERE name = 'flags_generation'",
    /* The verification miss path: key and owner's active flag in one round
     * trip (see kw_store_pkey_auth_by_hash). */
    [ST_PKEY_AUTH_BY_HASH] = "SELECT k.id, k.user_id, k.label, k.secure_value, k.mask_value, "
                             "k.created_at, k.last_used_at, k.last_rolled_at, k.scopes, "
                             "k.scoped_teams, k.scoped_organizations, k.expires_at, "
                             "k.rate_limit_per_minute, k.scopes_used, u.is_active "
                             "FROM personal_api_keys k JOIN users u ON u.id = k.user_id "
                             "WHERE k.secure_value = $1",
    [ST_FLAG_INSERT] = "INSERT INTO feature_flags(project_id, key, name, filters, active, deleted, "
                       "ensure_experience_continuity, version, created_by, created_at, updated_at) "
                       "VALUES ($1, $2, $3, $4, $5::integer <> 0, FALSE, $6::integer <> 0, 1, $7, "
                       "$8, $8) RETURNING id",
    [ST_FLAG_GET] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = $1 AND id = $2",
    [ST_FLAG_LIST_NEWEST] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = $1 "
                            "AND ($2::integer <> 0 OR NOT deleted) ORDER BY created_at DESC, id DESC",
    [ST_FLAG_LIST_BY_KEY] = "SELECT " FLAG_COLS " FROM feature_flags WHERE project_id = $1 "
                            "AND ($2::integer <> 0 OR NOT deleted) ORDER BY key, id",
    [ST_FLAG_UPDATE] = "UPDATE feature_flags SET key = $3, name = $4, filters = $5, "
                       "active = $6::integer <> 0, deleted = $7::integer <> 0, "
                       "ensure_experience_continuity = $8::integer <> 0, version = version + 1, "
                       "updated_at = $9 WHERE project_id = $1 AND id = $2",
    [ST_ACTIVITY_INSERT] = "INSERT INTO activity_log(" ACTIVITY_COLS ") "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    [ST_SCHEMA_VERSION] = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
    /* Limit check + insert in one call: see kw_psk_insert in migration 2. */
    [ST_PSK_INSERT] = "SELECT kw_psk_insert($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    [ST_PSK_GET] = "SELECT " PSK_COLS " FROM project_secret_api_keys "
                   "WHERE project_id = $1 AND id = $2",
    [ST_PSK_LIST] = "SELECT " PSK_COLS " FROM project_secret_api_keys WHERE project_id = $1 "
                    "ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
    [ST_PSK_COUNT] = "SELECT COUNT(*) FROM project_secret_api_keys WHERE project_id = $1",
    [ST_PSK_UPDATE] = "UPDATE project_secret_api_keys SET label = $3, scopes = $4, expires_at = $5, "
                      "rate_limit_per_minute = $6 "
                      "WHERE project_id = $1 AND id = $2",
    [ST_PSK_ROLL] = "UPDATE project_secret_api_keys SET secure_value = $3, mask_value = $4, "
                    "last_rolled_at = $5 WHERE project_id = $1 AND id = $2",
    [ST_PSK_DELETE] = "DELETE FROM project_secret_api_keys WHERE project_id = $1 AND id = $2",
    [ST_PSK_BY_HASH] = "SELECT " PSK_COLS " FROM project_secret_api_keys WHERE secure_value = $1",
    [ST_PSK_TOUCH] = "UPDATE project_secret_api_keys SET last_used_at = $2::bigint WHERE id = $1 "
                     "AND (last_used_at IS NULL OR last_used_at <= $2::bigint - $3::bigint)",
};
_Static_assert(ST_COUNT <= PG_MAX_STMTS, "raise PG_MAX_STMTS");

#define P(base) ((struct pg_store *)(base))

/* ---- columns ------------------------------------------------------------- */

static void read_user(const PGresult *r, int i, kw_user *u)
{
    memset(u, 0, sizeof *u);
    u->id = kw_pg_col_int(r, i, 0);
    kw_pg_col_copy(r, i, 1, u->uuid, sizeof u->uuid);
    kw_pg_col_copy(r, i, 2, u->email, sizeof u->email);
    kw_pg_col_copy(r, i, 3, u->first_name, sizeof u->first_name);
    u->is_active = kw_pg_col_bool(r, i, 4);
    u->created_at = kw_pg_col_int(r, i, 5);
}

static void read_project(const PGresult *r, int i, kw_project *p)
{
    memset(p, 0, sizeof *p);
    p->id = kw_pg_col_int(r, i, 0);
    kw_pg_col_copy(r, i, 1, p->uuid, sizeof p->uuid);
    kw_pg_col_copy(r, i, 2, p->org_id, sizeof p->org_id);
    kw_pg_col_copy(r, i, 3, p->name, sizeof p->name);
    kw_pg_col_copy(r, i, 4, p->api_token, sizeof p->api_token);
    p->created_at = kw_pg_col_int(r, i, 5);
}

static void read_pkey(const PGresult *r, int i, kw_pkey *k)
{
    kw_pg_col_copy(r, i, 0, k->id, sizeof k->id);
    k->user_id = kw_pg_col_int(r, i, 1);
    kw_pg_col_copy(r, i, 2, k->label, sizeof k->label);
    kw_pg_col_copy(r, i, 3, k->secure_value, sizeof k->secure_value);
    kw_pg_col_copy(r, i, 4, k->mask_value, sizeof k->mask_value);
    k->created_at = kw_pg_col_int(r, i, 5);
    k->last_used_at = kw_pg_col_int(r, i, 6);
    k->last_rolled_at = kw_pg_col_int(r, i, 7);
    kw_pg_col_copy(r, i, 8, k->scopes, sizeof k->scopes);
    kw_pg_col_copy(r, i, 9, k->scoped_teams, sizeof k->scoped_teams);
    kw_pg_col_copy(r, i, 10, k->scoped_orgs, sizeof k->scoped_orgs);
    k->expires_at = kw_pg_col_int(r, i, 11);
    k->rate_limit_per_minute = (int32_t)kw_pg_col_int(r, i, 12);
    kw_pg_col_copy(r, i, 13, k->scopes_used, sizeof k->scopes_used);
}

static int read_flag(const PGresult *r, int i, kw_flag *f)
{
    memset(f, 0, sizeof *f);
    f->id = kw_pg_col_int(r, i, 0);
    f->project_id = kw_pg_col_int(r, i, 1);
    kw_pg_col_copy(r, i, 2, f->key, sizeof f->key);
    kw_pg_col_copy(r, i, 3, f->name, sizeof f->name);
    f->filters = kw_pg_col_dup(r, i, 4);
    f->active = kw_pg_col_bool(r, i, 5);
    f->deleted = kw_pg_col_bool(r, i, 6);
    f->ensure_experience_continuity = kw_pg_col_bool(r, i, 7);
    f->version = kw_pg_col_int(r, i, 8);
    f->created_by = kw_pg_col_int(r, i, 9);
    f->created_at = kw_pg_col_int(r, i, 10);
    f->updated_at = kw_pg_col_int(r, i, 11);
    return f->filters ? KW_OK : KW_ERR_NOMEM;
}

/* ---- statement helpers --------------------------------------------------- */

/* A write; KW_ERR_NOTFOUND when it changed no row and `must_change` is set. */
static int write_stmt(struct pg_store *s, int id, const struct pg_params *p, int must_change)
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
static int query_one(struct pg_store *s, int id, const struct pg_params *p, PGresult **out)
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

static int count_stmt(struct pg_store *s, int id, int64_t *count)
{
    PGresult *r;
    int rc = query_one(s, id, NULL, &r);
    if (rc) return rc;
    *count = kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

/* An INSERT … RETURNING id. */
static int insert_returning(struct pg_store *s, int id, const struct pg_params *p, int64_t *new_id)
{
    PGresult *r;
    int rc = query_one(s, id, p, &r);
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    *new_id = kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

/* ---- users, organizations, memberships ----------------------------------- */

static int pg_user_count(kw_store *b, int64_t *count) { return count_stmt(P(b), ST_USER_COUNT, count); }

static int pg_user_create(kw_store *b, kw_user *u)
{
    int rc = kw_uuid_v4(u->uuid);
    if (rc) return rc;
    u->created_at = kw_now();
    struct pg_params p = {0};
    kw_pg_text(&p, u->uuid);
    kw_pg_text(&p, u->email);
    kw_pg_text(&p, u->first_name);
    kw_pg_int(&p, u->is_active ? 1 : 0);
    kw_pg_int(&p, u->created_at);
    return insert_returning(P(b), ST_USER_INSERT, &p, &u->id);
}

static int user_lookup(struct pg_store *s, int id, const struct pg_params *p, kw_user *out)
{
    PGresult *r;
    int rc = query_one(s, id, p, &r);
    if (rc) return rc;
    read_user(r, 0, out);
    PQclear(r);
    return KW_OK;
}

static int pg_user_get(kw_store *b, int64_t id, kw_user *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, id);
    return user_lookup(P(b), ST_USER_GET, &p, out);
}

static int pg_user_by_email(kw_store *b, const char *email, kw_user *out)
{
    struct pg_params p = {0};
    kw_pg_text(&p, email);
    return user_lookup(P(b), ST_USER_BY_EMAIL, &p, out);
}

static int pg_user_set_active(kw_store *b, int64_t id, int active)
{
    struct pg_params p = {0};
    kw_pg_int(&p, id);
    kw_pg_int(&p, active ? 1 : 0);
    return write_stmt(P(b), ST_USER_SET_ACTIVE, &p, 1);
}

static int pg_org_create(kw_store *b, kw_org *o)
{
    int rc = kw_uuid_v4(o->id);
    if (rc) return rc;
    o->created_at = kw_now();
    struct pg_params p = {0};
    kw_pg_text(&p, o->id);
    kw_pg_text(&p, o->name);
    kw_pg_int(&p, o->created_at);
    return write_stmt(P(b), ST_ORG_INSERT, &p, 0);
}

static int pg_org_get(kw_store *b, const char *id, kw_org *o)
{
    struct pg_params p = {0};
    kw_pg_text(&p, id);
    PGresult *r;
    int rc = query_one(P(b), ST_ORG_GET, &p, &r);
    if (rc) return rc;
    kw_pg_col_copy(r, 0, 0, o->id, sizeof o->id);
    kw_pg_col_copy(r, 0, 1, o->name, sizeof o->name);
    o->created_at = kw_pg_col_int(r, 0, 2);
    PQclear(r);
    return KW_OK;
}

static int pg_membership_set(kw_store *b, int64_t user_id, const char *org_id, int level)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text(&p, org_id);
    kw_pg_int(&p, level);
    kw_pg_int(&p, kw_now());
    return write_stmt(P(b), ST_MEMBER_SET, &p, 0);
}

static int pg_membership_level(kw_store *b, int64_t user_id, const char *org_id, int *level)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text(&p, org_id);
    PGresult *r;
    int rc = query_one(P(b), ST_MEMBER_LEVEL, &p, &r);
    if (rc) return rc;
    *level = (int)kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

static int pg_user_orgs(kw_store *b, int64_t user_id, kw_org_cb cb, void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    PGresult *r;
    int rc = kw_pg_run(P(b), ST_USER_ORGS, &p, &r);
    if (rc) return rc;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        kw_org o;
        kw_pg_col_copy(r, i, 0, o.id, sizeof o.id);
        kw_pg_col_copy(r, i, 1, o.name, sizeof o.name);
        o.created_at = kw_pg_col_int(r, i, 2);
        rc = cb(ctx, &o, (int)kw_pg_col_int(r, i, 3));
    }
    PQclear(r);
    return rc;
}

/* ---- projects ------------------------------------------------------------ */

static int pg_project_create(kw_store *b, kw_project *pr)
{
    int rc = kw_uuid_v4(pr->uuid);
    if (rc) return rc;
    pr->created_at = kw_now();
    struct pg_params p = {0};
    kw_pg_text(&p, pr->uuid);
    kw_pg_text(&p, pr->org_id);
    kw_pg_text(&p, pr->name);
    kw_pg_text(&p, pr->api_token);
    kw_pg_int(&p, pr->created_at);
    return insert_returning(P(b), ST_PROJECT_INSERT, &p, &pr->id);
}

static int project_lookup(struct pg_store *s, int id, const struct pg_params *p, kw_project *out)
{
    PGresult *r;
    int rc = query_one(s, id, p, &r);
    if (rc) return rc;
    read_project(r, 0, out);
    PQclear(r);
    return KW_OK;
}

static int pg_project_get(kw_store *b, int64_t id, kw_project *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, id);
    return project_lookup(P(b), ST_PROJECT_GET, &p, out);
}

static int pg_project_by_token(kw_store *b, const char *token, kw_project *out)
{
    struct pg_params p = {0};
    kw_pg_text(&p, token);
    return project_lookup(P(b), ST_PROJECT_BY_TOKEN, &p, out);
}

static int pg_user_projects(kw_store *b, int64_t user_id, kw_project_cb cb, void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    PGresult *r;
    int rc = kw_pg_run(P(b), ST_USER_PROJECTS, &p, &r);
    if (rc) return rc;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        kw_project pr;
        read_project(r, i, &pr);
        rc = cb(ctx, &pr);
    }
    PQclear(r);
    return rc;
}

static int pg_project_set_token(kw_store *b, int64_t id, const char *token)
{
    struct pg_params p = {0};
    kw_pg_int(&p, id);
    kw_pg_text(&p, token);
    return write_stmt(P(b), ST_PROJECT_SET_TOKEN, &p, 1);
}

/* ---- personal API keys --------------------------------------------------- */

static int pg_pkey_insert(kw_store *b, const kw_pkey *k, int max_per_user)
{
    struct pg_params p = {0};
    kw_pg_text(&p, k->id);
    kw_pg_int(&p, k->user_id);
    kw_pg_text(&p, k->label);
    kw_pg_text(&p, k->secure_value);
    kw_pg_text(&p, k->mask_value);
    kw_pg_int(&p, k->created_at);
    kw_pg_text_or_null(&p, k->scopes);
    kw_pg_text_or_null(&p, k->scoped_teams);
    kw_pg_text_or_null(&p, k->scoped_orgs);
    kw_pg_int(&p, max_per_user);
    kw_pg_int_or_null(&p, k->expires_at);
    kw_pg_int_or_null(&p, k->rate_limit_per_minute);
    PGresult *r;
    int rc = query_one(P(b), ST_PKEY_INSERT, &p, &r);
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    rc = kw_pg_col_bool(r, 0, 0) ? KW_OK : KW_ERR_LIMIT;
    PQclear(r);
    return rc;
}

static int pkey_lookup(struct pg_store *s, int id, const struct pg_params *p, kw_pkey *out)
{
    PGresult *r;
    int rc = query_one(s, id, p, &r);
    if (rc) return rc;
    read_pkey(r, 0, out);
    PQclear(r);
    return KW_OK;
}

static int pg_pkey_get(kw_store *b, int64_t user_id, const char *id, kw_pkey *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text(&p, id);
    return pkey_lookup(P(b), ST_PKEY_GET, &p, out);
}

static int pg_pkey_by_hash(kw_store *b, const char *secure_value, kw_pkey *out)
{
    struct pg_params p = {0};
    kw_pg_text(&p, secure_value);
    return pkey_lookup(P(b), ST_PKEY_BY_HASH, &p, out);
}

static int pg_pkey_auth_by_hash(kw_store *b, const char *secure_value, kw_pkey *out, int *active)
{
    struct pg_params p = {0};
    kw_pg_text(&p, secure_value);
    PGresult *r;
    int rc = query_one(P(b), ST_PKEY_AUTH_BY_HASH, &p, &r);
    if (rc) return rc;
    read_pkey(r, 0, out);
    *active = kw_pg_col_bool(r, 0, 14);
    PQclear(r);
    return KW_OK;
}

static int pg_pkey_list(kw_store *b, int64_t user_id, kw_pkey_cb cb, void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    PGresult *r;
    int rc = kw_pg_run(P(b), ST_PKEY_LIST, &p, &r);
    if (rc) return rc;
    kw_pkey *k = malloc(sizeof *k);  /* 12 KiB: keep it off the callback's stack */
    if (!k) rc = KW_ERR_NOMEM;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        read_pkey(r, i, k);
        rc = cb(ctx, k);
    }
    free(k);
    PQclear(r);
    return rc;
}

static int pg_pkey_update(kw_store *b, const kw_pkey *k)
{
    struct pg_params p = {0};
    kw_pg_int(&p, k->user_id);
    kw_pg_text(&p, k->id);
    kw_pg_text(&p, k->label);
    kw_pg_text_or_null(&p, k->scopes);
    kw_pg_text_or_null(&p, k->scoped_teams);
    kw_pg_text_or_null(&p, k->scoped_orgs);
    kw_pg_int_or_null(&p, k->expires_at);
    kw_pg_int_or_null(&p, k->rate_limit_per_minute);
    return write_stmt(P(b), ST_PKEY_UPDATE, &p, 1);
}

static int pg_pkey_roll(kw_store *b, int64_t user_id, const char *id, const char *secure_value,
                        const char *mask_value, kw_time now)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text(&p, id);
    kw_pg_text(&p, secure_value);
    kw_pg_text(&p, mask_value);
    kw_pg_int(&p, now);
    return write_stmt(P(b), ST_PKEY_ROLL, &p, 1);
}

static int pg_pkey_delete(kw_store *b, int64_t user_id, const char *id)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text(&p, id);
    return write_stmt(P(b), ST_PKEY_DELETE, &p, 1);
}

static int pg_pkey_touch(kw_store *b, const char *id, kw_time now, kw_time interval)
{
    struct pg_params p = {0};
    kw_pg_text(&p, id);
    kw_pg_int(&p, now);
    kw_pg_int(&p, interval);
    return write_stmt(P(b), ST_PKEY_TOUCH, &p, 0);
}

static int pg_pkey_rehash(kw_store *b, const char *id, const char *old_value, const char *new_value)
{
    struct pg_params p = {0};
    kw_pg_text(&p, id);
    kw_pg_text(&p, old_value);
    kw_pg_text(&p, new_value);
    return write_stmt(P(b), ST_PKEY_REHASH, &p, 0);
}

static int pg_pkey_legacy_count(kw_store *b, int64_t *count)
{
    return count_stmt(P(b), ST_PKEY_LEGACY_COUNT, count);
}

static int pg_auth_generation(kw_store *b, int64_t *generation)
{
    return count_stmt(P(b), ST_AUTH_GENERATION, generation);
}

static int pg_flags_generation(kw_store *b, int64_t *generation)
{
    return count_stmt(P(b), ST_FLAGS_GENERATION, generation);
}

/* ---- project secret API keys -------------------------------------------- */

static void read_psk(const PGresult *r, int i, kw_psk *k)
{
    kw_pg_col_copy(r, i, 0, k->id, sizeof k->id);
    k->project_id = kw_pg_col_int(r, i, 1);
    kw_pg_col_copy(r, i, 2, k->label, sizeof k->label);
    kw_pg_col_copy(r, i, 3, k->secure_value, sizeof k->secure_value);
    kw_pg_col_copy(r, i, 4, k->mask_value, sizeof k->mask_value);
    k->created_at = kw_pg_col_int(r, i, 5);
    k->created_by = kw_pg_col_int(r, i, 6);
    k->last_used_at = kw_pg_col_int(r, i, 7);
    k->last_rolled_at = kw_pg_col_int(r, i, 8);
    kw_pg_col_copy(r, i, 9, k->scopes, sizeof k->scopes);
    k->expires_at = kw_pg_col_int(r, i, 10);
    k->rate_limit_per_minute = (int32_t)kw_pg_col_int(r, i, 11);
    kw_pg_col_copy(r, i, 12, k->scopes_used, sizeof k->scopes_used);
}

static int pg_psk_insert(kw_store *b, const kw_psk *k, int max_per_project)
{
    struct pg_params p = {0};
    kw_pg_text(&p, k->id);
    kw_pg_int(&p, k->project_id);
    kw_pg_text(&p, k->label);
    kw_pg_text(&p, k->secure_value);
    kw_pg_text(&p, k->mask_value);
    kw_pg_int(&p, k->created_at);
    kw_pg_int_or_null(&p, k->created_by);
    kw_pg_text(&p, k->scopes);
    kw_pg_int(&p, max_per_project);
    kw_pg_int_or_null(&p, k->expires_at);
    kw_pg_int_or_null(&p, k->rate_limit_per_minute);
    PGresult *r;
    int rc = query_one(P(b), ST_PSK_INSERT, &p, &r);
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    rc = kw_pg_col_bool(r, 0, 0) ? KW_OK : KW_ERR_LIMIT;
    PQclear(r);
    return rc;
}

static int psk_lookup(struct pg_store *s, int id, const struct pg_params *p, kw_psk *out)
{
    PGresult *r;
    int rc = query_one(s, id, p, &r);
    if (rc) return rc;
    read_psk(r, 0, out);
    PQclear(r);
    return KW_OK;
}

static int pg_psk_get(kw_store *b, int64_t project_id, const char *id, kw_psk *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_text(&p, id);
    return psk_lookup(P(b), ST_PSK_GET, &p, out);
}

static int pg_psk_by_hash(kw_store *b, const char *secure_value, kw_psk *out)
{
    struct pg_params p = {0};
    kw_pg_text(&p, secure_value);
    return psk_lookup(P(b), ST_PSK_BY_HASH, &p, out);
}

static int pg_psk_list(kw_store *b, int64_t project_id, int64_t limit, int64_t offset, kw_psk_cb cb,
                       void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_int(&p, limit);
    kw_pg_int(&p, offset);
    PGresult *r;
    int rc = kw_pg_run(P(b), ST_PSK_LIST, &p, &r);
    if (rc) return rc;
    kw_psk *k = malloc(sizeof *k);
    if (!k) rc = KW_ERR_NOMEM;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        read_psk(r, i, k);
        rc = cb(ctx, k);
    }
    free(k);
    PQclear(r);
    return rc;
}

static int pg_psk_count(kw_store *b, int64_t project_id, int64_t *count)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    PGresult *r;
    int rc = query_one(P(b), ST_PSK_COUNT, &p, &r);
    if (rc) return rc;
    *count = kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

static int pg_psk_update(kw_store *b, const kw_psk *k)
{
    struct pg_params p = {0};
    kw_pg_int(&p, k->project_id);
    kw_pg_text(&p, k->id);
    kw_pg_text(&p, k->label);
    kw_pg_text(&p, k->scopes);
    kw_pg_int_or_null(&p, k->expires_at);
    kw_pg_int_or_null(&p, k->rate_limit_per_minute);
    return write_stmt(P(b), ST_PSK_UPDATE, &p, 1);
}

static int pg_psk_roll(kw_store *b, int64_t project_id, const char *id, const char *secure_value,
                       const char *mask_value, kw_time now)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_text(&p, id);
    kw_pg_text(&p, secure_value);
    kw_pg_text(&p, mask_value);
    kw_pg_int(&p, now);
    return write_stmt(P(b), ST_PSK_ROLL, &p, 1);
}

static int pg_psk_delete(kw_store *b, int64_t project_id, const char *id)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_text(&p, id);
    return write_stmt(P(b), ST_PSK_DELETE, &p, 1);
}

static int pg_psk_touch(kw_store *b, const char *id, kw_time now, kw_time interval)
{
    struct pg_params p = {0};
    kw_pg_text(&p, id);
    kw_pg_int(&p, now);
    kw_pg_int(&p, interval);
    return write_stmt(P(b), ST_PSK_TOUCH, &p, 0);
}

/* ---- feature flags ------------------------------------------------------- */

static int pg_flag_insert(kw_store *b, kw_flag *f)
{
    f->created_at = f->updated_at = kw_now();
    f->version = 1;
    f->deleted = 0;
    struct pg_params p = {0};
    kw_pg_int(&p, f->project_id);
    kw_pg_text(&p, f->key);
    kw_pg_text(&p, f->name);
    kw_pg_text(&p, f->filters ? f->filters : "{}");
    kw_pg_int(&p, f->active ? 1 : 0);
    kw_pg_int(&p, f->ensure_experience_continuity ? 1 : 0);
    kw_pg_int_or_null(&p, f->created_by);
    kw_pg_int(&p, f->created_at);
    return insert_returning(P(b), ST_FLAG_INSERT, &p, &f->id);
}

static int pg_flag_get(kw_store *b, int64_t project_id, int64_t id, kw_flag *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_int(&p, id);
    PGresult *r;
    int rc = query_one(P(b), ST_FLAG_GET, &p, &r);
    if (rc) return rc;
    rc = read_flag(r, 0, out);
    PQclear(r);
    return rc;
}

static int pg_flag_list(kw_store *b, int64_t project_id, enum kw_flag_order order,
                        int include_deleted, kw_flag_cb cb, void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_int(&p, include_deleted ? 1 : 0);
    PGresult *r;
    int rc = kw_pg_run(P(b), order == KW_FLAG_BY_KEY ? ST_FLAG_LIST_BY_KEY : ST_FLAG_LIST_NEWEST,
                       &p, &r);
    if (rc) return rc;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        kw_flag f;
        rc = read_flag(r, i, &f);
        if (!rc) rc = cb(ctx, &f);
        kw_flag_clear(&f);
    }
    PQclear(r);
    return rc;
}

static int pg_flag_update(kw_store *b, kw_flag *f)
{
    f->updated_at = kw_now();
    struct pg_params p = {0};
    kw_pg_int(&p, f->project_id);
    kw_pg_int(&p, f->id);
    kw_pg_text(&p, f->key);
    kw_pg_text(&p, f->name);
    kw_pg_text(&p, f->filters ? f->filters : "{}");
    kw_pg_int(&p, f->active ? 1 : 0);
    kw_pg_int(&p, f->deleted ? 1 : 0);
    kw_pg_int(&p, f->ensure_experience_continuity ? 1 : 0);
    kw_pg_int(&p, f->updated_at);
    int rc = write_stmt(P(b), ST_FLAG_UPDATE, &p, 1);
    if (!rc) f->version++;
    return rc;
}

/* ---- activity log -------------------------------------------------------- */

static int pg_activity_insert(kw_store *b, kw_activity *a)
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
    return write_stmt(P(b), ST_ACTIVITY_INSERT, &p, 0);
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
    if (!rc) rc = kw_pg_run(s, ST_SCHEMA_VERSION, NULL, &r);
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
    int rc = query_one(P(b), ST_SCHEMA_VERSION, NULL, &r);
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
    .user_count = pg_user_count,
    .user_create = pg_user_create,
    .user_get = pg_user_get,
    .user_by_email = pg_user_by_email,
    .user_set_active = pg_user_set_active,
    .org_create = pg_org_create,
    .org_get = pg_org_get,
    .membership_set = pg_membership_set,
    .membership_level = pg_membership_level,
    .user_orgs = pg_user_orgs,
    .project_create = pg_project_create,
    .project_get = pg_project_get,
    .project_by_token = pg_project_by_token,
    .user_projects = pg_user_projects,
    .project_set_token = pg_project_set_token,
    .pkey_insert = pg_pkey_insert,
    .pkey_get = pg_pkey_get,
    .pkey_list = pg_pkey_list,
    .pkey_update = pg_pkey_update,
    .pkey_roll = pg_pkey_roll,
    .pkey_delete = pg_pkey_delete,
    .pkey_by_hash = pg_pkey_by_hash,
    .pkey_touch = pg_pkey_touch,
    .pkey_rehash = pg_pkey_rehash,
    .pkey_legacy_count = pg_pkey_legacy_count,
    .auth_generation = pg_auth_generation,
    .flags_generation = pg_flags_generation,
    .pkey_auth_by_hash = pg_pkey_auth_by_hash,
    .wait_change = kw_pg_wait_change,
    .key_scopes_used_many = kw_pg_key_scopes_used_many,
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
    .psk_insert = pg_psk_insert,
    .psk_get = pg_psk_get,
    .psk_list = pg_psk_list,
    .psk_count = pg_psk_count,
    .psk_update = pg_psk_update,
    .psk_roll = pg_psk_roll,
    .psk_delete = pg_psk_delete,
    .psk_by_hash = pg_psk_by_hash,
    .psk_touch = pg_psk_touch,
    .flag_insert = pg_flag_insert,
    .flag_get = pg_flag_get,
    .flag_list = pg_flag_list,
    .flag_update = pg_flag_update,
    .activity_insert = pg_activity_insert,
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
    int rc = kw_pg_store_init(s, url, SQL, ST_COUNT);
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
