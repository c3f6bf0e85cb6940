/* store_sqlite_events.c — captured events and endpoints in the SQLite
 * backend.
 *
 * Kept apart from store_sqlite.c to keep that file readable; it uses the
 * same per-thread connection through the kw_sq_* helpers (store_backend.h)
 * and its own cache of prepared statements.  A batch of events is inserted
 * with one prepared statement, reset and re-bound per row, inside one
 * transaction (BEGIN IMMEDIATE, or the caller's when one is open): a batch
 * is stored whole or not at all.
 *
 * Each endpoint query kind is one fixed statement.  The optional filters
 * are written into the SQL as "?3 IS NULL OR event = ?3" instead of being
 * composed, so every kind stays one prepared statement whatever the
 * request; the price is that SQLite then reads by (project_id, timestamp)
 * even when an event name is given.  A property is read with json_each and
 * an exact key comparison, so a key never goes through JSON-path parsing
 * (a key with dots or quotes is just a key). */
#include "store_backend.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

/* ?1 project, ?2 bucket width (µs, 0 = none), ?3 event or NULL,
 * ?4 from (inclusive), ?5 to (exclusive), ?6 limit, ?7 property key. */
#define EV_BUCKET "CASE WHEN ?2 > 0 THEN (timestamp / ?2) * ?2 ELSE 0 END"
#define EV_WHERE "project_id = ?1 AND (?3 IS NULL OR event = ?3) AND timestamp >= ?4 AND timestamp < ?5"
/* The property's value as text, as PostgreSQL's ->> gives it: strings bare,
 * true/false as words, objects and arrays as JSON, JSON null as NULL. */
#define EV_PROPERTY                                                                  \
    "(SELECT CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "         \
    "WHEN 'null' THEN NULL ELSE CAST(j.value AS TEXT) END "                          \
    "FROM json_each(events.properties) AS j WHERE j.key = ?7 LIMIT 1)"
#define EP_COLS "id, project_id, name, description, query, variables, created_by, created_at, updated_at"

const char *const kw_sq_ev_sql[KW_SQ_EV_COUNT_STMTS] = {
    [KW_SQ_EV_INSERT] = "INSERT INTO events(project_id, uuid, event, distinct_id, properties, "
                        "timestamp, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [KW_SQ_EV_COUNTS] = "SELECT " EV_BUCKET " AS bucket, event, COUNT(*) AS n FROM events WHERE "
                        EV_WHERE " GROUP BY bucket, event ORDER BY bucket, n DESC, event LIMIT ?6",
    [KW_SQ_EV_UNIQUE] = "SELECT " EV_BUCKET " AS bucket, NULL, COUNT(DISTINCT distinct_id) FROM events "
                        "WHERE " EV_WHERE " GROUP BY bucket ORDER BY bucket LIMIT ?6",
    [KW_SQ_EV_BREAKDOWN] = "SELECT " EV_BUCKET " AS bucket, " EV_PROPERTY " AS value, COUNT(*) AS n "
                           "FROM events WHERE " EV_WHERE " GROUP BY bucket, value "
                           "ORDER BY bucket, n DESC, value IS NULL, value LIMIT ?6",
    [KW_SQ_EV_RECENT] = "SELECT id, uuid, event, distinct_id, properties, timestamp, created_at "
                        "FROM events WHERE " EV_WHERE " ORDER BY timestamp DESC, id DESC LIMIT ?6",
    [KW_SQ_EP_INSERT] = "INSERT INTO endpoints(project_id, name, description, query, variables, "
                        "created_by, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
    [KW_SQ_EP_GET] = "SELECT " EP_COLS " FROM endpoints WHERE project_id = ?1 AND name = ?2",
    [KW_SQ_EP_LIST] = "SELECT " EP_COLS " FROM endpoints WHERE project_id = ?1 "
                      "ORDER BY created_at DESC, id DESC LIMIT ?2 OFFSET ?3",
    [KW_SQ_EP_COUNT] = "SELECT COUNT(*) FROM endpoints WHERE project_id = ?1",
    [KW_SQ_EP_UPDATE] = "UPDATE endpoints SET name = ?3, description = ?4, query = ?5, variables = ?6, "
                        "updated_at = ?7 WHERE project_id = ?1 AND id = ?2",
    [KW_SQ_EP_DELETE] = "DELETE FROM endpoints WHERE project_id = ?1 AND id = ?2",
};

static const char *col_text(sqlite3_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st, col);
}

static char *dup_col(sqlite3_stmt *st, int col)
{
    const char *v = col_text(st, col);
    return strdup(v ? v : "");
}

/* ---- events -------------------------------------------------------------- */

int kw_sq_events_insert(kw_store *b, int64_t project_id, const kw_event *events, size_t n)
{
    sqlite3 *db = kw_sq_db(b);
    sqlite3_stmt *st = kw_sq_ev_stmt(b, KW_SQ_EV_INSERT);
    if (!db || !st) return KW_ERR_DB;
    int own = sqlite3_get_autocommit(db);  /* no transaction open: take one */
    int rc = own ? kw_sq_map_rc(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) : KW_OK;
    kw_time now = kw_now();
    for (size_t i = 0; !rc && i < n; i++) {
        const kw_event *e = &events[i];
        sqlite3_bind_int64(st, 1, project_id);
        kw_sq_bind_text(st, 2, e->uuid);
        kw_sq_bind_text(st, 3, e->event);
        kw_sq_bind_text(st, 4, e->distinct_id);
        kw_sq_bind_text(st, 5, e->properties ? e->properties : "{}");
        sqlite3_bind_int64(st, 6, e->timestamp);
        sqlite3_bind_int64(st, 7, e->created_at ? e->created_at : now);
        rc = kw_sq_exec_write(b, st, 0);
    }
    if (own) {
        if (!rc) rc = kw_sq_map_rc(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL));
        if (rc) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

int kw_sq_events_query(kw_store *b, const kw_event_query *q, kw_event_row_cb cb, void *ctx)
{
    static const int STMT[KW_EQ_KIND_COUNT] = {KW_SQ_EV_COUNTS, KW_SQ_EV_UNIQUE, KW_SQ_EV_BREAKDOWN,
                                               KW_SQ_EV_RECENT};
    if ((unsigned)q->kind >= KW_EQ_KIND_COUNT) return KW_ERR_INVALID;
    sqlite3_stmt *st = kw_sq_ev_stmt(b, STMT[q->kind]);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, q->project_id);
    sqlite3_bind_int64(st, 2, q->bucket > 0 ? q->bucket : 0);
    kw_sq_bind_text(st, 3, q->event);
    sqlite3_bind_int64(st, 4, q->date_from ? q->date_from : INT64_MIN);
    sqlite3_bind_int64(st, 5, q->date_to ? q->date_to : INT64_MAX);
    sqlite3_bind_int64(st, 6, q->limit > 0 ? q->limit : 100);
    kw_sq_bind_text(st, 7, q->kind == KW_EQ_PROPERTY_BREAKDOWN ? q->property : NULL);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_event_row row;
        memset(&row, 0, sizeof row);
        if (q->kind == KW_EQ_RECENT_EVENTS) {
            row.event.id = sqlite3_column_int64(st, 0);
            const char *uuid = col_text(st, 1);
            if (uuid) {
                strncpy(row.event.uuid, uuid, KW_ID_LEN);
                row.event.uuid[KW_ID_LEN] = '\0';
            }
            row.event.event = col_text(st, 2);
            row.event.distinct_id = col_text(st, 3);
            row.event.properties = col_text(st, 4);
            row.event.timestamp = sqlite3_column_int64(st, 5);
            row.event.created_at = sqlite3_column_int64(st, 6);
            row.count = 1;
        } else {
            row.bucket = sqlite3_column_int64(st, 0);
            row.key = col_text(st, 1);
            row.count = sqlite3_column_int64(st, 2);
        }
        stop = cb(ctx, &row);
    }
    return kw_sq_finish(st, stop ? stop : kw_sq_map_rc(rc));
}

/* ---- endpoints ----------------------------------------------------------- */

static int read_endpoint(sqlite3_stmt *st, kw_endpoint *e)
{
    memset(e, 0, sizeof *e);
    e->id = sqlite3_column_int64(st, 0);
    e->project_id = sqlite3_column_int64(st, 1);
    kw_sq_copy_col(st, 2, e->name, sizeof e->name);
    e->description = dup_col(st, 3);
    e->query = dup_col(st, 4);
    e->variables = dup_col(st, 5);
    e->created_by = sqlite3_column_int64(st, 6);
    e->created_at = sqlite3_column_int64(st, 7);
    e->updated_at = sqlite3_column_int64(st, 8);
    if (e->description && e->query && e->variables) return KW_OK;
    kw_endpoint_clear(e);
    return KW_ERR_NOMEM;
}

static void bind_endpoint_fields(sqlite3_stmt *st, const kw_endpoint *e, int first)
{
    kw_sq_bind_text(st, first, e->name);
    kw_sq_bind_text(st, first + 1, e->description ? e->description : "");
    kw_sq_bind_text(st, first + 2, e->query ? e->query : "{}");
    kw_sq_bind_text(st, first + 3, e->variables ? e->variables : "{}");
}

int kw_sq_endpoint_insert(kw_store *b, kw_endpoint *e)
{
    sqlite3_stmt *st = kw_sq_ev_stmt(b, KW_SQ_EP_INSERT);
    if (!st) return KW_ERR_DB;
    e->created_at = e->updated_at = kw_now();
    sqlite3_bind_int64(st, 1, e->project_id);
    bind_endpoint_fields(st, e, 2);
    if (e->created_by)
        sqlite3_bind_int64(st, 6, e->created_by);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, e->created_at);
    int rc = kw_sq_exec_write(b, st, 0);
    if (!rc) e->id = sqlite3_last_insert_rowid(kw_sq_db(b));
    return rc;
}

int kw_sq_endpoint_get(kw_store *b, int64_t project_id, const char *name, kw_endpoint *out)
{
    sqlite3_stmt *st = kw_sq_ev_stmt(b, KW_SQ_EP_GET);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    kw_sq_bind_text(st, 2, name);
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    return kw_sq_finish(st, read_endpoint(st, out));
}

int kw_sq_endpoint_list(kw_store *b, int64_t project_id, int64_t limit, int64_t offset,
                        kw_endpoint_cb cb, void *ctx)
{
    sqlite3_stmt *st = kw_sq_ev_stmt(b, KW_SQ_EP_LIST);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_int64(st, 2, limit);
    sqlite3_bind_int64(st, 3, offset);
    int rc, stop = 0;
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        kw_endpoint e;
        stop = read_endpoint(st, &e);
        if (!stop) stop = cb(ctx, &e);
        kw_endpoint_clear(&e);
    }
    return kw_sq_finish(st, stop ? stop : kw_sq_map_rc(rc));
}

int kw_sq_endpoint_count(kw_store *b, int64_t project_id, int64_t *count)
{
    sqlite3_stmt *st = kw_sq_ev_stmt(b, KW_SQ_EP_COUNT);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    int rc = kw_sq_step_one(st);
    if (rc) return rc;
    *count = sqlite3_column_int64(st, 0);
    return kw_sq_finish(st, KW_OK);
}

int kw_sq_endpoint_update(kw_store *b, const kw_endpoint *e)
{
    sqlite3_stmt *st = kw_sq_ev_stmt(b, KW_SQ_EP_UPDATE);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, e->project_id);
    sqlite3_bind_int64(st, 2, e->id);
    bind_endpoint_fields(st, e, 3);
    sqlite3_bind_int64(st, 7, e->updated_at);
    return kw_sq_exec_write(b, st, 1);
}

int kw_sq_endpoint_delete(kw_store *b, int64_t project_id, int64_t id)
{
    sqlite3_stmt *st = kw_sq_ev_stmt(b, KW_SQ_EP_DELETE);
    if (!st) return KW_ERR_DB;
    sqlite3_bind_int64(st, 1, project_id);
    sqlite3_bind_int64(st, 2, id);
    return kw_sq_exec_write(b, st, 1);
}
