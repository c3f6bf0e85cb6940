/* store_pg_events.c — captured events and endpoints in the PostgreSQL
 * backend.
 *
 * A batch of events is ONE statement: the columns travel as five array
 * parameters ($2::text[] …) and INSERT … SELECT … FROM unnest(…) writes
 * every row in one round trip, atomically, with no per-row statement at
 * all (better than re-running a prepared INSERT n times over the network).
 * The array literals are built with PostgreSQL's quoting rules ("…" with
 * \" and \\ escaped, kw_pg_array_text); they are parameter values, never
 * SQL text.
 *
 * Each endpoint query kind is one fixed statement, run with PQexecParams;
 * a property is read with properties::jsonb ->> $n (an exact key, no path
 * parsing).  Ordering of text uses COLLATE "C" so both backends sort
 * bytewise and return rows in the same order. */
#include "store_pg.h"

#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

#define EV_BUCKET "CASE WHEN $2::bigint > 0 THEN (timestamp / $2::bigint) * $2::bigint ELSE 0 END"
#define EV_WHERE "project_id = $1 AND ($3::text IS NULL OR event = $3::text) " \
                 "AND timestamp >= $4::bigint AND timestamp < $5::bigint"
#define EP_COLS "id, project_id, name, description, query, variables, created_by, created_at, updated_at"

/* $1 project, $2 bucket, $3 event, $4 from, $5 to, $6 limit, $7 property. */
static const char *const QUERY_SQL[KW_EQ_KIND_COUNT] = {
    [KW_EQ_EVENT_COUNTS] = "SELECT bucket, event, n FROM (SELECT " EV_BUCKET " AS bucket, event, "
                           "COUNT(*) AS n FROM events WHERE " EV_WHERE " GROUP BY 1, 2) AS g "
                           "ORDER BY bucket, n DESC, event LIMIT $6",
    [KW_EQ_UNIQUE_USERS] = "SELECT bucket, NULL, n FROM (SELECT " EV_BUCKET " AS bucket, "
                           "COUNT(DISTINCT distinct_id) AS n FROM events WHERE " EV_WHERE
                           " GROUP BY 1) AS g ORDER BY bucket LIMIT $6",
    [KW_EQ_PROPERTY_BREAKDOWN] = "SELECT bucket, value, n FROM (SELECT " EV_BUCKET " AS bucket, "
                                 "properties::jsonb ->> $7::text AS value, COUNT(*) AS n FROM events "
                                 "WHERE " EV_WHERE " GROUP BY 1, 2) AS g "
                                 "ORDER BY bucket, n DESC, value IS NULL, value COLLATE \"C\" LIMIT $6",
    /* $2 is unused here but typed, so every kind takes the same parameters. */
    [KW_EQ_RECENT_EVENTS] = "SELECT id, uuid, event, distinct_id, properties, timestamp, created_at "
                            "FROM events WHERE " EV_WHERE " AND $2::bigint IS NOT NULL "
                            "ORDER BY timestamp DESC, id DESC LIMIT $6",
};

/* ---- events -------------------------------------------------------------- */

int kw_pg_events_insert(kw_store *st, int64_t project_id, const kw_event *events, size_t n)
{
    if (!n) return KW_OK;
    struct pg_buf cols[5];
    memset(cols, 0, sizeof cols);
    for (size_t i = 0; i < n; i++) {
        kw_pg_array_text(&cols[0], events[i].uuid, i == 0);
        kw_pg_array_text(&cols[1], events[i].event, i == 0);
        kw_pg_array_text(&cols[2], events[i].distinct_id, i == 0);
        kw_pg_array_text(&cols[3], events[i].properties ? events[i].properties : "{}", i == 0);
        kw_pg_array_int(&cols[4], events[i].timestamp, i == 0);
    }
    int rc = KW_OK;
    for (int c = 0; c < 5; c++) {
        kw_pg_buf_put(&cols[c], "}", 1);
        if (cols[c].oom) rc = KW_ERR_NOMEM;
    }
    if (!rc) {
        struct pg_params p = {0};
        kw_pg_int(&p, project_id);
        for (int c = 0; c < 5; c++) kw_pg_text(&p, cols[c].p);
        kw_pg_int(&p, kw_now());
        PGresult *r;
        rc = kw_pg_run_sql((struct pg_store *)st,
                           "INSERT INTO events(project_id, uuid, event, distinct_id, properties, "
                           "timestamp, created_at) SELECT $1, u, e, d, p, t, $7 FROM "
                           "unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[]) "
                           "WITH ORDINALITY AS x(u, e, d, p, t, o) ORDER BY o",
                           &p, &r);
        if (!rc) PQclear(r);
    }
    for (int c = 0; c < 5; c++) free(cols[c].p);
    return rc;
}

int kw_pg_events_query(kw_store *st, const kw_event_query *q, kw_event_row_cb cb, void *ctx)
{
    if ((unsigned)q->kind >= KW_EQ_KIND_COUNT) return KW_ERR_INVALID;
    struct pg_params p = {0};
    kw_pg_int(&p, q->project_id);
    kw_pg_int(&p, q->bucket > 0 ? q->bucket : 0);
    kw_pg_text(&p, q->event);
    kw_pg_int(&p, q->date_from ? q->date_from : INT64_MIN);
    kw_pg_int(&p, q->date_to ? q->date_to : INT64_MAX);
    kw_pg_int(&p, q->limit > 0 ? q->limit : 100);
    if (q->kind == KW_EQ_PROPERTY_BREAKDOWN) kw_pg_text(&p, q->property ? q->property : "");
    PGresult *r;
    int rc = kw_pg_run_sql((struct pg_store *)st, QUERY_SQL[q->kind], &p, &r);
    if (rc) return rc;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        kw_event_row row;
        memset(&row, 0, sizeof row);
        if (q->kind == KW_EQ_RECENT_EVENTS) {
            row.event.id = kw_pg_col_int(r, i, 0);
            kw_pg_col_copy(r, i, 1, row.event.uuid, sizeof row.event.uuid);
            row.event.event = PQgetvalue(r, i, 2);
            row.event.distinct_id = PQgetvalue(r, i, 3);
            row.event.properties = PQgetvalue(r, i, 4);
            row.event.timestamp = kw_pg_col_int(r, i, 5);
            row.event.created_at = kw_pg_col_int(r, i, 6);
            row.count = 1;
        } else {
            row.bucket = kw_pg_col_int(r, i, 0);
            row.key = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1);
            row.count = kw_pg_col_int(r, i, 2);
        }
        rc = cb(ctx, &row);
    }
    PQclear(r);
    return rc;
}

/* ---- endpoints ----------------------------------------------------------- */

static int read_endpoint(const PGresult *r, int i, kw_endpoint *e)
{
    memset(e, 0, sizeof *e);
    e->id = kw_pg_col_int(r, i, 0);
    e->project_id = kw_pg_col_int(r, i, 1);
    kw_pg_col_copy(r, i, 2, e->name, sizeof e->name);
    e->description = kw_pg_col_dup(r, i, 3);
    e->query = kw_pg_col_dup(r, i, 4);
    e->variables = kw_pg_col_dup(r, i, 5);
    e->created_by = kw_pg_col_int(r, i, 6);
    e->created_at = kw_pg_col_int(r, i, 7);
    e->updated_at = kw_pg_col_int(r, i, 8);
    if (e->description && e->query && e->variables) return KW_OK;
    kw_endpoint_clear(e);
    return KW_ERR_NOMEM;
}

static void endpoint_fields(struct pg_params *p, const kw_endpoint *e)
{
    kw_pg_text(p, e->name);
    kw_pg_text(p, e->description ? e->description : "");
    kw_pg_text(p, e->query ? e->query : "{}");
    kw_pg_text(p, e->variables ? e->variables : "{}");
}

/* A statement whose row count matters: KW_ERR_NOTFOUND when it changed
 * nothing. */
static int write_sql(kw_store *st, const char *sql, const struct pg_params *p)
{
    PGresult *r;
    int rc = kw_pg_run_sql((struct pg_store *)st, sql, p, &r);
    if (rc) return rc;
    int changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return changed ? KW_OK : KW_ERR_NOTFOUND;
}

int kw_pg_endpoint_insert(kw_store *st, kw_endpoint *e)
{
    e->created_at = e->updated_at = kw_now();
    struct pg_params p = {0};
    kw_pg_int(&p, e->project_id);
    endpoint_fields(&p, e);
    kw_pg_int_or_null(&p, e->created_by);
    kw_pg_int(&p, e->created_at);
    PGresult *r;
    int rc = kw_pg_run_sql((struct pg_store *)st,
                           "INSERT INTO endpoints(project_id, name, description, query, variables, "
                           "created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) "
                           "RETURNING id",
                           &p, &r);
    if (rc) return rc;
    e->id = PQntuples(r) == 1 ? kw_pg_col_int(r, 0, 0) : 0;
    PQclear(r);
    return e->id ? KW_OK : KW_ERR_DB;
}

int kw_pg_endpoint_get(kw_store *st, int64_t project_id, const char *name, kw_endpoint *out)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_text(&p, name);
    PGresult *r;
    int rc = kw_pg_run_sql((struct pg_store *)st,
                           "SELECT " EP_COLS " FROM endpoints WHERE project_id = $1 AND name = $2", &p, &r);
    if (rc) return rc;
    rc = PQntuples(r) == 1 ? read_endpoint(r, 0, out) : KW_ERR_NOTFOUND;
    PQclear(r);
    return rc;
}

int kw_pg_endpoint_list(kw_store *st, int64_t project_id, int64_t limit, int64_t offset,
                        kw_endpoint_cb cb, void *ctx)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_int(&p, limit);
    kw_pg_int(&p, offset);
    PGresult *r;
    int rc = kw_pg_run_sql((struct pg_store *)st,
                           "SELECT " EP_COLS " FROM endpoints WHERE project_id = $1 "
                           "ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3",
                           &p, &r);
    if (rc) return rc;
    for (int i = 0, n = PQntuples(r); !rc && i < n; i++) {
        kw_endpoint e;
        rc = read_endpoint(r, i, &e);
        if (!rc) rc = cb(ctx, &e);
        kw_endpoint_clear(&e);
    }
    PQclear(r);
    return rc;
}

int kw_pg_endpoint_count(kw_store *st, int64_t project_id, int64_t *count)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    PGresult *r;
    int rc = kw_pg_run_sql((struct pg_store *)st, "SELECT COUNT(*) FROM endpoints WHERE project_id = $1",
                           &p, &r);
    if (rc) return rc;
    *count = kw_pg_col_int(r, 0, 0);
    PQclear(r);
    return KW_OK;
}

int kw_pg_endpoint_update(kw_store *st, const kw_endpoint *e)
{
    struct pg_params p = {0};
    kw_pg_int(&p, e->project_id);
    kw_pg_int(&p, e->id);
    endpoint_fields(&p, e);
    kw_pg_int(&p, e->updated_at);
    return write_sql(st,
                     "UPDATE endpoints SET name = $3, description = $4, query = $5, variables = $6, "
                     "updated_at = $7 WHERE project_id = $1 AND id = $2",
                     &p);
}

int kw_pg_endpoint_delete(kw_store *st, int64_t project_id, int64_t id)
{
    struct pg_params p = {0};
    kw_pg_int(&p, project_id);
    kw_pg_int(&p, id);
    return write_sql(st, "DELETE FROM endpoints WHERE project_id = $1 AND id = $2", &p);
}
