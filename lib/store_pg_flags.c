/* store_pg_flags.c — feature flag definitions in the PostgreSQL backend,
 * and the flags generation lib/flagcache.c polls.
 *
 * Kept apart from store_pg.c to keep that file readable.  The SQL stays in
 * store_pg.c's statement table (KW_PG_FLAG_*, KW_PG_FLAGS_GENERATION),
 * prepared once per connection like every fixed statement. */
#include "store_pg.h"

#include <string.h>

#include "keyward/keyward.h"

#define P(base) ((struct pg_store *)(base))

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

int kw_pg_flags_generation(kw_store *b, int64_t *generation)
{
    return kw_pg_count(P(b), KW_PG_FLAGS_GENERATION, generation);
}

int kw_pg_flag_insert(kw_store *b, kw_flag *f)
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
    return kw_pg_insert_returning(P(b), KW_PG_FLAG_INSERT, &p, &f->id);
}

int kw_pg_flag_get(kw_store *b, int64_t project_id, int64_t id, kw_flag *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_int(&p, id);
    PGresult *r;
    int rc = kw_pg_query_one(P(b), KW_PG_FLAG_GET, &p, &r);
    if (rc) return rc;
    rc = read_flag(r, 0, out);
    PQclear(r);
    return rc;
}

int kw_pg_flag_list(kw_store *b, int64_t project_id, enum kw_flag_order order,
                    int include_deleted, kw_flag_cb cb, void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_int(&p, include_deleted ? 1 : 0);
    PGresult *r;
    int rc = kw_pg_run(P(b), order == KW_FLAG_BY_KEY ? KW_PG_FLAG_LIST_BY_KEY
                                                     : KW_PG_FLAG_LIST_NEWEST, &p, &r);
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

int kw_pg_flag_update(kw_store *b, kw_flag *f)
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
    int rc = kw_pg_write(P(b), KW_PG_FLAG_UPDATE, &p, 1);
    if (!rc) f->version++;
    return rc;
}
