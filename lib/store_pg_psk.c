/* store_pg_psk.c — project secret API keys in the PostgreSQL backend.
 *
 * Kept apart from store_pg.c to keep that file readable, as
 * store_sqlite_psk.c is in the SQLite backend.  The SQL stays in
 * store_pg.c's statement table (KW_PG_PSK_*), prepared once per
 * connection; the per-project limit is checked by kw_psk_insert (migration
 * 2), which takes a row lock first so concurrent sessions cannot both pass
 * it. */
#include "store_pg.h"

#include <stdlib.h>

#include "keyward/keyward.h"

#define P(base) ((struct pg_store *)(base))

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

int kw_pg_psk_insert(kw_store *b, const kw_psk *k, int max_per_project)
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
    int rc = kw_pg_query_one(P(b), KW_PG_PSK_INSERT, &p, &r);
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    rc = kw_pg_col_bool(r, 0, 0) ? KW_OK : KW_ERR_LIMIT;
    PQclear(r);
    return rc;
}

static int psk_lookup(struct pg_store *s, int id, const struct pg_params *p, kw_psk *out)
{
    PGresult *r;
    int rc = kw_pg_query_one(s, id, p, &r);
    if (rc) return rc;
    read_psk(r, 0, out);
    PQclear(r);
    return KW_OK;
}

int kw_pg_psk_get(kw_store *b, int64_t project_id, const char *id, kw_psk *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_text(&p, id);
    return psk_lookup(P(b), KW_PG_PSK_GET, &p, out);
}

int kw_pg_psk_by_hash(kw_store *b, const char *secure_value, kw_psk *out)
{
    struct pg_params p = {0};
    kw_pg_text(&p, secure_value);
    return psk_lookup(P(b), KW_PG_PSK_BY_HASH, &p, out);
}

int kw_pg_psk_list(kw_store *b, int64_t project_id, int64_t limit, int64_t offset, kw_psk_cb cb,
                   void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_int(&p, limit);
    kw_pg_int(&p, offset);
    PGresult *r;
    int rc = kw_pg_run(P(b), KW_PG_PSK_LIST, &p, &r);
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

int kw_pg_psk_count(kw_store *b, int64_t project_id, int64_t *count)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    PGresult *r;
    int rc = kw_pg_query_one(P(b), KW_PG_PSK_COUNT, &p, &r);
    if (rc) return rc;
    *count = kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

int kw_pg_psk_update(kw_store *b, const kw_psk *k)
{
    struct pg_params p = {0};
    kw_pg_int(&p, k->project_id);
    kw_pg_text(&p, k->id);
    kw_pg_text(&p, k->label);
    kw_pg_text(&p, k->scopes);
    kw_pg_int_or_null(&p, k->expires_at);
    kw_pg_int_or_null(&p, k->rate_limit_per_minute);
    return kw_pg_write(P(b), KW_PG_PSK_UPDATE, &p, 1);
}

int kw_pg_psk_roll(kw_store *b, int64_t project_id, const char *id, const char *secure_value,
                   const char *mask_value, kw_time now)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_text(&p, id);
    kw_pg_text(&p, secure_value);
    kw_pg_text(&p, mask_value);
    kw_pg_int(&p, now);
    return kw_pg_write(P(b), KW_PG_PSK_ROLL, &p, 1);
}

int kw_pg_psk_delete(kw_store *b, int64_t project_id, const char *id)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_text(&p, id);
    return kw_pg_write(P(b), KW_PG_PSK_DELETE, &p, 1);
}

int kw_pg_psk_touch(kw_store *b, const char *id, kw_time now, kw_time interval)
{
    struct pg_params p = {0};
    kw_pg_text(&p, id);
    kw_pg_int(&p, now);
    kw_pg_int(&p, interval);
    return kw_pg_write(P(b), KW_PG_PSK_TOUCH, &p, 0);
}
