/* store_pg_life.c — the key-lifecycle operations of the PostgreSQL backend:
 * the scope-usage merge, the batched last_used_at write, whole-store
 * listings and the legacy import.
 *
 * As in store_sqlite_life.c these are off the request path, so they run as
 * ad-hoc parameterized statements (kw_pg_run_sql) rather than taking
 * prepared-statement slots.
 *
 * The usage merge: a flush can hold thousands of keys (each key's first
 * use in a process), and one UPDATE per key cost a round trip each, so
 * seconds for the flush at shutdown.  So it is one UPDATE per key kind,
 * the ids and lists travelling as two text[] parameters joined with unnest
 * (ids must be distinct within a call: UPDATE … FROM applies one match).
 * Each row's new value is computed from the row it updates: under READ
 * COMMITTED a concurrent merge of the same row (another instance flushing)
 * waits for the first and is re-evaluated against its result, so no scope
 * is lost.  The rows are locked first, in id order (ORDER BY … FOR NO KEY
 * UPDATE below a MATERIALIZED CTE: the lock step runs above the sort), so
 * two instances merging overlapping batches queue instead of deadlocking.
 *
 * The last_used_at batch (the verifier's drain of its touch ring) is built
 * the same way: ids and times as text[] and bigint[] parameters, one
 * statement per key kind, rows locked in id order.  Repeated ids are
 * folded to their latest time first (GROUP BY), since UPDATE … FROM would
 * apply an arbitrary one of several matches.  The condition of the single
 * touch (NULL, or at least the interval older) is in the lock step, so
 * rows that need no write are not locked, and again in the UPDATE, where
 * it is re-checked against a row another instance wrote meanwhile — so
 * last_used_at never moves backwards and concurrent drains write once. */
#include "store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

#define USED_SQL(table)                                                                       \
    "WITH n AS MATERIALIZED (SELECT k.id, u.used FROM " table " k"                            \
    " JOIN unnest($1::text[], $2::text[]) AS u(id, used) ON k.id = u.id"                       \
    " ORDER BY k.id FOR NO KEY UPDATE OF k)"                                                   \
    " UPDATE " table " k SET scopes_used = (SELECT COALESCE(json_agg(v ORDER BY v), '[]')::text" \
    " FROM (SELECT jsonb_array_elements_text(COALESCE(k.scopes_used, '[]')::jsonb) AS v UNION"   \
    " SELECT jsonb_array_elements_text(n.used::jsonb)) s) FROM n WHERE k.id = n.id"

static const char *const USED_SQL[2] = {
    USED_SQL("personal_api_keys"),
    USED_SQL("project_secret_api_keys"),
};

#define TOUCH_SQL(table)                                                                  \
    "WITH u AS (SELECT id, max(t) AS t FROM unnest($1::text[], $2::bigint[]) AS u(id, t)"  \
    " GROUP BY id), n AS MATERIALIZED (SELECT k.id, u.t FROM " table " k JOIN u ON k.id = u.id" \
    " WHERE k.last_used_at IS NULL OR k.last_used_at <= u.t - $3::bigint"                  \
    " ORDER BY k.id FOR NO KEY UPDATE OF k)"                                               \
    " UPDATE " table " k SET last_used_at = n.t FROM n WHERE k.id = n.id"                  \
    " AND (k.last_used_at IS NULL OR k.last_used_at <= n.t - $3::bigint)"

static const char *const TOUCH_SQL[2] = {
    TOUCH_SQL("personal_api_keys"),
    TOUCH_SQL("project_secret_api_keys"),
};

#define P(base) ((struct pg_store *)(base))

/* A write; KW_ERR_EXISTS when ON CONFLICT DO NOTHING skipped the row. */
static int run_write(kw_store *b, const char *sql, const struct pg_params *p, int none_is_exists)
{
    PGresult *r;
    int rc = kw_pg_run_sql(P(b), sql, p, &r);
    if (rc) return rc;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return none_is_exists && changed == 0 ? KW_ERR_EXISTS : KW_OK;
}

int kw_pg_key_scopes_used_many(kw_store *b, const kw_scope_use *uses, size_t n)
{
    int first_error = KW_OK;
    for (int secret = 0; secret < 2; secret++) {
        struct pg_buf ids = {0}, used = {0};
        size_t count = 0;
        for (size_t i = 0; i < n; i++) {
            if ((uses[i].kind == KW_KEY_SECRET) != secret) continue;
            kw_pg_array_text(&ids, uses[i].id, count == 0);
            /* A NULL list merges nothing, as it did bound as SQL NULL. */
            kw_pg_array_text(&used, uses[i].scopes_json ? uses[i].scopes_json : "[]", count == 0);
            count++;
        }
        int rc = KW_OK;
        if (count) {
            kw_pg_buf_put(&ids, "}", 1);
            kw_pg_buf_put(&used, "}", 1);
            if (ids.oom || used.oom) {
                rc = KW_ERR_NOMEM;
            } else {
                struct pg_params p = {0};
                kw_pg_text(&p, ids.p);
                kw_pg_text(&p, used.p);
                rc = run_write(b, USED_SQL[secret], &p, 0);
            }
        }
        free(ids.p);
        free(used.p);
        if (rc && !first_error) first_error = rc;
    }
    return first_error;
}

int kw_pg_key_touch_many(kw_store *b, const kw_key_touch *t, size_t n, kw_time interval)
{
    int first_error = KW_OK;
    for (int secret = 0; secret < 2; secret++) {
        struct pg_buf ids = {0}, times = {0};
        size_t count = 0;
        for (size_t i = 0; i < n; i++) {
            if ((t[i].kind == KW_KEY_SECRET) != secret) continue;
            kw_pg_array_text(&ids, t[i].id, count == 0);
            kw_pg_array_int(&times, t[i].when, count == 0);
            count++;
        }
        int rc = KW_OK;
        if (count) {
            kw_pg_buf_put(&ids, "}", 1);
            kw_pg_buf_put(&times, "}", 1);
            if (ids.oom || times.oom) {
                rc = KW_ERR_NOMEM;
            } else {
                struct pg_params p = {0};
                kw_pg_text(&p, ids.p);
                kw_pg_text(&p, times.p);
                kw_pg_int(&p, interval);
                rc = run_write(b, TOUCH_SQL[secret], &p, 0);
            }
        }
        free(ids.p);
        free(times.p);
        if (rc && !first_error) first_error = rc;
    }
    return first_error;
}

int kw_pg_user_list(kw_store *b, kw_user_cb cb, void *ctx)
{
    PGresult *r;
    int rc = kw_pg_run_sql(P(b), "SELECT id, uuid, email, first_name, is_active, created_at "
                                 "FROM users ORDER BY id", NULL, &r);
    if (rc) return rc;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        kw_user u;
        memset(&u, 0, sizeof u);
        u.id = kw_pg_col_int(r, i, 0);
        kw_pg_col_copy(r, i, 1, u.uuid, sizeof u.uuid);
        kw_pg_col_copy(r, i, 2, u.email, sizeof u.email);
        kw_pg_col_copy(r, i, 3, u.first_name, sizeof u.first_name);
        u.is_active = kw_pg_col_bool(r, i, 4);
        u.created_at = kw_pg_col_int(r, i, 5);
        rc = cb(ctx, &u);
    }
    PQclear(r);
    return rc;
}

int kw_pg_project_list(kw_store *b, kw_project_cb cb, void *ctx)
{
    PGresult *r;
    int rc = kw_pg_run_sql(P(b), "SELECT id, uuid, org_id, name, api_token, created_at "
                                 "FROM projects ORDER BY id", NULL, &r);
    if (rc) return rc;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        kw_project p;
        memset(&p, 0, sizeof p);
        p.id = kw_pg_col_int(r, i, 0);
        kw_pg_col_copy(r, i, 1, p.uuid, sizeof p.uuid);
        kw_pg_col_copy(r, i, 2, p.org_id, sizeof p.org_id);
        kw_pg_col_copy(r, i, 3, p.name, sizeof p.name);
        kw_pg_col_copy(r, i, 4, p.api_token, sizeof p.api_token);
        p.created_at = kw_pg_col_int(r, i, 5);
        rc = cb(ctx, &p);
    }
    PQclear(r);
    return rc;
}

int kw_pg_import_user(kw_store *b, const kw_user *u)
{
    struct pg_params p = {0};
    kw_pg_int(&p, u->id);
    kw_pg_text(&p, u->uuid);
    kw_pg_text(&p, u->email);
    kw_pg_text(&p, u->first_name);
    kw_pg_int(&p, u->is_active ? 1 : 0);
    kw_pg_int(&p, u->created_at);
    return run_write(b, "INSERT INTO users(id, uuid, email, first_name, is_active, created_at) "
                        "VALUES ($1, $2, $3, $4, $5::integer <> 0, $6) ON CONFLICT DO NOTHING", &p, 1);
}

int kw_pg_import_org(kw_store *b, const kw_org *o)
{
    struct pg_params p = {0};
    kw_pg_text(&p, o->id);
    kw_pg_text(&p, o->name);
    kw_pg_int(&p, o->created_at);
    return run_write(b, "INSERT INTO organizations(id, name, created_at) VALUES ($1, $2, $3) "
                        "ON CONFLICT DO NOTHING", &p, 1);
}

int kw_pg_import_project(kw_store *b, const kw_project *pr)
{
    struct pg_params p = {0};
    kw_pg_int(&p, pr->id);
    kw_pg_text(&p, pr->uuid);
    kw_pg_text(&p, pr->org_id);
    kw_pg_text(&p, pr->name);
    kw_pg_text(&p, pr->api_token);
    kw_pg_int(&p, pr->created_at);
    return run_write(b, "INSERT INTO projects(id, uuid, org_id, name, api_token, created_at) "
                        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING", &p, 1);
}

int kw_pg_import_pkey(kw_store *b, const kw_pkey *k)
{
    struct pg_params p = {0};
    kw_pg_text(&p, k->id);
    kw_pg_int(&p, k->user_id);
    kw_pg_text(&p, k->label);
    kw_pg_text(&p, k->secure_value);
    kw_pg_text(&p, k->mask_value);
    kw_pg_int(&p, k->created_at);
    kw_pg_int_or_null(&p, k->last_used_at);
    kw_pg_int_or_null(&p, k->last_rolled_at);
    kw_pg_text_or_null(&p, k->scopes);
    kw_pg_text_or_null(&p, k->scoped_teams);
    kw_pg_text_or_null(&p, k->scoped_orgs);
    kw_pg_int_or_null(&p, k->expires_at);
    kw_pg_int_or_null(&p, k->rate_limit_per_minute);
    return run_write(b, "INSERT INTO personal_api_keys(id, user_id, label, secure_value, mask_value, "
                        "created_at, last_used_at, last_rolled_at, scopes, scoped_teams, "
                        "scoped_organizations, expires_at, rate_limit_per_minute) VALUES ($1, $2, $3, "
                        "$4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT DO NOTHING", &p, 1);
}

/* Imported rows carry their own ids, which identity columns do not count:
 * move each sequence past the largest id so the next insert does not
 * collide with an imported row. */
int kw_pg_import_done(kw_store *b)
{
    static const char *const SQL[] = {
        "SELECT setval(pg_get_serial_sequence('users', 'id'), "
        "GREATEST((SELECT MAX(id) FROM users), 1))",
        "SELECT setval(pg_get_serial_sequence('projects', 'id'), "
        "GREATEST((SELECT MAX(id) FROM projects), 1))",
    };
    for (size_t i = 0; i < sizeof SQL / sizeof SQL[0]; i++) {
        PGresult *r;
        int rc = kw_pg_run_sql(P(b), SQL[i], NULL, &r);
        if (rc) return rc;
        PQclear(r);
    }
    return KW_OK;
}
