/* store_pg_users.c — users, organizations, memberships and projects in the
 * PostgreSQL backend.
 *
 * Kept apart from store_pg.c, like the other store_pg_*.c files, so that
 * file holds only what every concern shares: the statement table, the
 * helpers that run it, the migrations and the ops table.  The fixed SQL
 * these functions run stays in that table (KW_PG_USER_* … KW_PG_PROJECT_*)
 * because prepared statements are numbered per connection from the one
 * table store_pg_conn.c is given. */
#include "store_pg.h"

#include <string.h>

#include "keyward/keyward.h"

#define P(base) ((struct pg_store *)(base))

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

/* ---- users, organizations, memberships ----------------------------------- */

int kw_pg_user_count(kw_store *b, int64_t *count)
{
    return kw_pg_count(P(b), KW_PG_USER_COUNT, count);
}

int kw_pg_user_create(kw_store *b, kw_user *u)
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
    return kw_pg_insert_returning(P(b), KW_PG_USER_INSERT, &p, &u->id);
}

static int user_lookup(struct pg_store *s, int id, const struct pg_params *p, kw_user *out)
{
    PGresult *r;
    int rc = kw_pg_query_one(s, id, p, &r);
    if (rc) return rc;
    read_user(r, 0, out);
    PQclear(r);
    return KW_OK;
}

int kw_pg_user_get(kw_store *b, int64_t id, kw_user *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, id);
    return user_lookup(P(b), KW_PG_USER_GET, &p, out);
}

int kw_pg_user_by_email(kw_store *b, const char *email, kw_user *out)
{
    struct pg_params p = {0};
    kw_pg_text(&p, email);
    return user_lookup(P(b), KW_PG_USER_BY_EMAIL, &p, out);
}

int kw_pg_user_set_active(kw_store *b, int64_t id, int active)
{
    struct pg_params p = {0};
    kw_pg_int(&p, id);
    kw_pg_int(&p, active ? 1 : 0);
    return kw_pg_write(P(b), KW_PG_USER_SET_ACTIVE, &p, 1);
}

int kw_pg_org_create(kw_store *b, kw_org *o)
{
    int rc = kw_uuid_v4(o->id);
    if (rc) return rc;
    o->created_at = kw_now();
    struct pg_params p = {0};
    kw_pg_text(&p, o->id);
    kw_pg_text(&p, o->name);
    kw_pg_int(&p, o->created_at);
    return kw_pg_write(P(b), KW_PG_ORG_INSERT, &p, 0);
}

int kw_pg_org_get(kw_store *b, const char *id, kw_org *o)
{
    struct pg_params p = {0};
    kw_pg_text(&p, id);
    PGresult *r;
    int rc = kw_pg_query_one(P(b), KW_PG_ORG_GET, &p, &r);
    if (rc) return rc;
    kw_pg_col_copy(r, 0, 0, o->id, sizeof o->id);
    kw_pg_col_copy(r, 0, 1, o->name, sizeof o->name);
    o->created_at = kw_pg_col_int(r, 0, 2);
    PQclear(r);
    return KW_OK;
}

int kw_pg_membership_set(kw_store *b, int64_t user_id, const char *org_id, int level)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text(&p, org_id);
    kw_pg_int(&p, level);
    kw_pg_int(&p, kw_now());
    return kw_pg_write(P(b), KW_PG_MEMBER_SET, &p, 0);
}

int kw_pg_membership_level(kw_store *b, int64_t user_id, const char *org_id, int *level)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    kw_pg_text(&p, org_id);
    PGresult *r;
    int rc = kw_pg_query_one(P(b), KW_PG_MEMBER_LEVEL, &p, &r);
    if (rc) return rc;
    *level = (int)kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

int kw_pg_user_orgs(kw_store *b, int64_t user_id, kw_org_cb cb, void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    PGresult *r;
    int rc = kw_pg_run(P(b), KW_PG_USER_ORGS, &p, &r);
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

int kw_pg_project_create(kw_store *b, kw_project *pr)
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
    return kw_pg_insert_returning(P(b), KW_PG_PROJECT_INSERT, &p, &pr->id);
}

static int project_lookup(struct pg_store *s, int id, const struct pg_params *p, kw_project *out)
{
    PGresult *r;
    int rc = kw_pg_query_one(s, id, p, &r);
    if (rc) return rc;
    read_project(r, 0, out);
    PQclear(r);
    return KW_OK;
}

int kw_pg_project_get(kw_store *b, int64_t id, kw_project *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, id);
    return project_lookup(P(b), KW_PG_PROJECT_GET, &p, out);
}

int kw_pg_project_by_token(kw_store *b, const char *token, kw_project *out)
{
    struct pg_params p = {0};
    kw_pg_text(&p, token);
    return project_lookup(P(b), KW_PG_PROJECT_BY_TOKEN, &p, out);
}

int kw_pg_user_projects(kw_store *b, int64_t user_id, kw_project_cb cb, void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, user_id);
    PGresult *r;
    int rc = kw_pg_run(P(b), KW_PG_USER_PROJECTS, &p, &r);
    if (rc) return rc;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        kw_project pr;
        read_project(r, i, &pr);
        rc = cb(ctx, &pr);
    }
    PQclear(r);
    return rc;
}

int kw_pg_project_set_token(kw_store *b, int64_t id, const char *token)
{
    struct pg_params p = {0};
    kw_pg_int(&p, id);
    kw_pg_text(&p, token);
    return kw_pg_write(P(b), KW_PG_PROJECT_SET_TOKEN, &p, 1);
}
