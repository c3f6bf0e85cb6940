/* store_pg_rolled.c — previous values of rolled keys (SPEC §6, roll with a
 * grace period) in the PostgreSQL backend; the same statements as
 * store_sqlite_rolled.c, run as ad-hoc parameterized SQL on the thread's
 * connection (so inside the roll's transaction) — none is a hot path. */
#include "store_pg.h"

#include <string.h>

#include "keyward/keyward.h"

#define P(base) ((struct pg_store *)(base))

static const char *kind_text(kw_key_kind kind)
{
    return kind == KW_KEY_SECRET ? "secret" : "personal";
}

static int write_sql(kw_store *b, const char *sql, const struct pg_params *p)
{
    PGresult *r;
    int rc = kw_pg_run_sql(P(b), sql, p, &r);
    if (!rc) PQclear(r);
    return rc;
}

int kw_pg_rolled_set(kw_store *b, kw_key_kind kind, const char *key_id, const char *secure_value,
                     kw_time expires_at, kw_time now)
{
    struct pg_params p = {0};
    kw_pg_text(&p, kind_text(kind));
    kw_pg_text(&p, key_id);
    kw_pg_int(&p, now);
    int rc = write_sql(b, "DELETE FROM rolled_key_values WHERE (kind = $1 AND key_id = $2) "
                          "OR expires_at <= $3", &p);
    if (rc || !secure_value) return rc;
    struct pg_params q = {0};
    kw_pg_text(&q, secure_value);
    kw_pg_text(&q, kind_text(kind));
    kw_pg_text(&q, key_id);
    kw_pg_int(&q, expires_at);
    return write_sql(b, "INSERT INTO rolled_key_values(secure_value, kind, key_id, expires_at) "
                        "VALUES ($1, $2, $3, $4)", &q);
}

int kw_pg_rolled_get(kw_store *b, const char *secure_value, kw_key_kind *kind,
                     char current[KW_SECURE_MAX + 1], kw_time *expires_at)
{
    struct pg_params p = {0};
    kw_pg_text(&p, secure_value);
    PGresult *r;
    int rc = kw_pg_run_sql(P(b),
                           "SELECT r.kind, r.expires_at, COALESCE(k.secure_value, s.secure_value) "
                           "FROM rolled_key_values r "
                           "LEFT JOIN personal_api_keys k ON r.kind = 'personal' AND k.id = r.key_id "
                           "LEFT JOIN project_secret_api_keys s ON r.kind = 'secret' AND s.id = r.key_id "
                           "WHERE r.secure_value = $1", &p, &r);
    if (rc) return rc;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 2)) {
        *kind = strcmp(PQgetvalue(r, 0, 0), "secret") == 0 ? KW_KEY_SECRET : KW_KEY_PERSONAL;
        *expires_at = kw_pg_col_int(r, 0, 1);
        kw_pg_col_copy(r, 0, 2, current, KW_SECURE_MAX + 1);
    } else {
        rc = KW_ERR_NOTFOUND;
    }
    PQclear(r);
    return rc;
}

int kw_pg_rolled_expiry(kw_store *b, kw_key_kind kind, const char *key_id, kw_time now,
                        kw_time *expires_at)
{
    struct pg_params p = {0};
    kw_pg_text(&p, kind_text(kind));
    kw_pg_text(&p, key_id);
    kw_pg_int(&p, now);
    PGresult *r;
    int rc = kw_pg_run_sql(P(b), "SELECT COALESCE(MAX(expires_at), 0) FROM rolled_key_values "
                                 "WHERE kind = $1 AND key_id = $2 AND expires_at > $3", &p, &r);
    if (rc) return rc;
    *expires_at = PQntuples(r) ? kw_pg_col_int(r, 0, 0) : 0;
    PQclear(r);
    return KW_OK;
}

int kw_pg_rolled_live(kw_store *b, kw_time now, int64_t *count)
{
    struct pg_params p = {0};
    kw_pg_int(&p, now);
    PGresult *r;
    int rc = kw_pg_run_sql(P(b), "SELECT COUNT(*) FROM rolled_key_values WHERE expires_at > $1",
                           &p, &r);
    if (rc) return rc;
    *count = PQntuples(r) ? kw_pg_col_int(r, 0, 0) : 0;
    PQclear(r);
    return KW_OK;
}
