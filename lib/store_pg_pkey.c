/* store_pg_pkey.c — personal API keys in the PostgreSQL backend, and the
 * auth generation the verification caches poll.
 *
 * Kept apart from store_pg.c to keep that file readable.  The SQL stays in
 * store_pg.c's statement table (KW_PG_PKEY_*): every statement here is
 * prepared once per connection, the by-hash lookups being the verification
 * miss path. */
#include "store_pg.h"

#include <stdlib.h>

#include "keyward/keyward.h"

#define P(base) ((struct pg_store *)(base))

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

int kw_pg_pkey_insert(kw_store *b, const kw_pkey *k, int max_per_user)
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
    int rc = kw_pg_query_one(P(b), KW_PG_PKEY_INSERT, &p, &r);
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    rc = kw_pg_col_bool(r, 0, 0) ? KW_OK : KW_ERR_LIMIT;
    PQclear(r);
    return rc;
}

static int pkey_lookup(struct pg_store *s, int id, const struct pg_params *p, kw_pkey *out)
{
    PGresult *r;
    int rc = kw_pg_query_one(s, id, p, &r);
    if (rc) return rc;
    read_pkey(r, 0, out);
    PQclear(r);
    return KW_OK;
}

int kw_pg_pkey_get(kw_store *b, int64_t user_id, const char *id, kw_pkey *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text(&p, id);
    return pkey_lookup(P(b), KW_PG_PKEY_GET, &p, out);
}

int kw_pg_pkey_by_hash(kw_store *b, const char *secure_value, kw_pkey *out)
{
    struct pg_params p = {0};
    kw_pg_text(&p, secure_value);
    return pkey_lookup(P(b), KW_PG_PKEY_BY_HASH, &p, out);
}

int kw_pg_pkey_auth_by_hash(kw_store *b, const char *secure_value, kw_pkey *out, int *active)
{
    struct pg_params p = {0};
    kw_pg_text(&p, secure_value);
    PGresult *r;
    int rc = kw_pg_query_one(P(b), KW_PG_PKEY_AUTH_BY_HASH, &p, &r);
    if (rc) return rc;
    read_pkey(r, 0, out);
    *active = kw_pg_col_bool(r, 0, 14);
    PQclear(r);
    return KW_OK;
}

int kw_pg_pkey_list(kw_store *b, int64_t user_id, kw_pkey_cb cb, void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    PGresult *r;
    int rc = kw_pg_run(P(b), KW_PG_PKEY_LIST, &p, &r);
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

int kw_pg_pkey_update(kw_store *b, const kw_pkey *k)
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
    return kw_pg_write(P(b), KW_PG_PKEY_UPDATE, &p, 1);
}

int kw_pg_pkey_roll(kw_store *b, int64_t user_id, const char *id, const char *secure_value,
                    const char *mask_value, kw_time now)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text(&p, id);
    kw_pg_text(&p, secure_value);
    kw_pg_text(&p, mask_value);
    kw_pg_int(&p, now);
    return kw_pg_write(P(b), KW_PG_PKEY_ROLL, &p, 1);
}

int kw_pg_pkey_delete(kw_store *b, int64_t user_id, const char *id)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text(&p, id);
    return kw_pg_write(P(b), KW_PG_PKEY_DELETE, &p, 1);
}

int kw_pg_pkey_touch(kw_store *b, const char *id, kw_time now, kw_time interval)
{
    struct pg_params p = {0};
    kw_pg_text(&p, id);
    kw_pg_int(&p, now);
    kw_pg_int(&p, interval);
    return kw_pg_write(P(b), KW_PG_PKEY_TOUCH, &p, 0);
}

int kw_pg_pkey_rehash(kw_store *b, const char *id, const char *old_value, const char *new_value)
{
    struct pg_params p = {0};
    kw_pg_text(&p, id);
    kw_pg_text(&p, old_value);
    kw_pg_text(&p, new_value);
    return kw_pg_write(P(b), KW_PG_PKEY_REHASH, &p, 0);
}

int kw_pg_pkey_legacy_count(kw_store *b, int64_t *count)
{
    return kw_pg_count(P(b), KW_PG_PKEY_LEGACY_COUNT, count);
}

int kw_pg_auth_generation(kw_store *b, int64_t *generation)
{
    return kw_pg_count(P(b), KW_PG_AUTH_GENERATION, generation);
}
