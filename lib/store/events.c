/* events.c — captured events and the endpoints that query them, written
 * once for both databases.
 *
 * Capture is the hot write path, so a batch keeps each database's fastest
 * shape: on SQLite cached inserts of 16 rows each (one row each for the
 * rest) inside one transaction (the caller's when one is open); on
 * PostgreSQL one statement whose columns travel as array parameters, built
 * here as array literals (parameter values, never SQL text).  Either way a
 * batch is stored whole or not at all, and the same column table describes
 * the row for both; a batch for a project that is gone is refused on both.
 *
 * Each endpoint query kind is one fixed statement of the table; its rows
 * decode by field table into the caller's row, whose text is borrowed from
 * the statement until the next row. */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store/db.h"
#include "keyward/strbuf.h"

/* ---- events ---------------------------------------------------------------- */

/* An event's columns, bound at ?2..?7 of KW_SQL_EV_INSERT (?1 is the
 * project): one row's values on SQLite, one array each on PostgreSQL. */
static const struct kw_db_param EVENT_COLS[] = {
    KW_DB_P(2, TEXT, kw_event, uuid),        KW_DB_P(3, DUP, kw_event, event),
    KW_DB_P(4, DUP, kw_event, distinct_id),  KW_DB_P(5, DUP, kw_event, properties),
    KW_DB_P(6, I64, kw_event, timestamp),    KW_DB_P(7, I64, kw_event, created_at),
};
#define N_OF(table) (sizeof table / sizeof table[0])
#define N_EVENT_COLS N_OF(EVENT_COLS)

/* PostgreSQL refuses a text value over 1 GB: a longer literal could never
 * be sent. */
#define PG_ARRAY_MAX ((size_t)1 << 30)

static kw_event with_defaults(const kw_event *e, kw_time now)
{
    kw_event row = *e;
    if (!row.properties) row.properties = "{}";
    if (!row.created_at) row.created_at = now;
    return row;
}

/* Rows per KW_SQL_EV_INSERT_ROWS statement (its text in sql.c writes as
 * many), and the parameter distance between its rows. */
#define EV_ROWS_PER_INSERT 16
#define EV_PARAMS_PER_ROW ((int)N_EVENT_COLS)

/* events[0..k) as one statement: KW_SQL_EV_INSERT_ROWS when k is a full
 * chunk, else the one-row statement (k == 1).  The copies with
 * defaults live until the step: SQLite binds text without copying it. */
static int insert_chunk(kw_store *s, int64_t project_id, const kw_event *events, size_t k,
                        kw_time now)
{
    kw_event rows[EV_ROWS_PER_INSERT];
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, k == EV_ROWS_PER_INSERT ? KW_SQL_EV_INSERT_ROWS : KW_SQL_EV_INSERT,
                           &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    for (size_t r = 0; r < k; r++) {
        rows[r] = with_defaults(&events[r], now);
        kw_db_bind_row_at(st, EVENT_COLS, N_EVENT_COLS, &rows[r], (int)r * EV_PARAMS_PER_ROW);
    }
    return kw_db_exec(st, 0);
}

static int insert_rows(kw_store *s, int64_t project_id, const kw_event *events, size_t n,
                       kw_time now)
{
    int own = !kw_store_in_transaction(s);
    int rc = own ? kw_store_begin(s) : KW_OK;
    for (size_t i = 0; !rc && i < n;) {
        size_t k = n - i >= EV_ROWS_PER_INSERT ? EV_ROWS_PER_INSERT : 1;
        rc = insert_chunk(s, project_id, events + i, k, now);
        i += k;
    }
    if (own && !rc) rc = kw_store_commit(s);
    if (own && rc) kw_store_rollback(s);
    return rc;
}

static int insert_arrays(kw_store *s, int64_t project_id, const kw_event *events, size_t n,
                         kw_time now)
{
    kw_strbuf cols[N_EVENT_COLS];
    for (size_t c = 0; c < N_EVENT_COLS; c++) kw_sb_init_heap(&cols[c], PG_ARRAY_MAX);
    for (size_t i = 0; i < n; i++) {
        kw_event row = with_defaults(&events[i], now);
        for (size_t c = 0; c < N_EVENT_COLS; c++) {
            const char *at = (const char *)&row + EVENT_COLS[c].offset;
            if (EVENT_COLS[c].type == KW_DB_F_TEXT)
                kw_db_array_text(&cols[c], at);
            else if (EVENT_COLS[c].type == KW_DB_F_DUP)
                kw_db_array_text(&cols[c], *(const char *const *)at);
            else
                kw_db_array_int(&cols[c], *(const int64_t *)at);
        }
    }
    int rc = KW_OK;
    for (size_t c = 0; c < N_EVENT_COLS; c++) {
        kw_sb_append(&cols[c], "}");
        if (!kw_sb_ok(&cols[c])) rc = KW_ERR_NOMEM;
    }
    kw_db_stmt *st;
    if (!rc && !(rc = kw_db_prepare(s, KW_SQL_EV_INSERT, &st))) {
        kw_db_int(st, 1, project_id);
        for (size_t c = 0; c < N_EVENT_COLS; c++)
            kw_db_text(st, EVENT_COLS[c].index, kw_sb_str(&cols[c]));
        /* No row written: the project is gone.  Refused as SQLite's
         * foreign key refuses it, so both backends answer alike. */
        rc = kw_db_exec(st, 1);
        if (rc == KW_ERR_NOTFOUND) rc = KW_ERR_EXISTS;
    }
    for (size_t c = 0; c < N_EVENT_COLS; c++) kw_sb_free(&cols[c]);
    return rc;
}

int kw_store_events_insert(kw_store *s, int64_t project_id, const kw_event *events, size_t n)
{
    if (!n) return KW_OK;
    kw_time now = kw_now();
    if (kw_db_dialect(s) == KW_DB_POSTGRES) return insert_arrays(s, project_id, events, n, now);
    return insert_rows(s, project_id, events, n, now);
}

/* Aggregate rows are (bucket, count, key); recent events put their text
 * columns after the ones decoded here. */
static const struct kw_db_field AGGREGATE_FIELDS[] = {
    KW_DB_I64(kw_event_row, bucket),
    KW_DB_I64(kw_event_row, count),
};
static const struct kw_db_field RECENT_FIELDS[] = {
    KW_DB_I64(kw_event_row, event.id),         KW_DB_TEXT(kw_event_row, event.uuid),
    KW_DB_I64(kw_event_row, event.timestamp),  KW_DB_I64(kw_event_row, event.created_at),
};

int kw_store_events_query(kw_store *s, const kw_event_query *q, kw_event_row_cb cb, void *ctx)
{
    static const enum kw_sql_id STMT[KW_EQ_KIND_COUNT] = {
        [KW_EQ_EVENT_COUNTS] = KW_SQL_EV_COUNTS,
        [KW_EQ_UNIQUE_USERS] = KW_SQL_EV_UNIQUE,
        [KW_EQ_PROPERTY_BREAKDOWN] = KW_SQL_EV_BREAKDOWN,
        [KW_EQ_RECENT_EVENTS] = KW_SQL_EV_RECENT,
    };
    if ((unsigned)q->kind >= KW_EQ_KIND_COUNT) return KW_ERR_INVALID;
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, STMT[q->kind], &st);
    if (rc) return rc;
    kw_db_int(st, 1, q->project_id);
    kw_db_int(st, 2, q->bucket > 0 ? q->bucket : 0);
    kw_db_text(st, 3, q->event);
    kw_db_int(st, 4, q->date_from ? q->date_from : INT64_MIN);
    kw_db_int(st, 5, q->date_to ? q->date_to : INT64_MAX);
    kw_db_int(st, 6, q->limit > 0 ? q->limit : 100);
    /* Only the breakdown and recent events have ?7: PostgreSQL refuses a
     * parameter too many. */
    int recent = q->kind == KW_EQ_RECENT_EVENTS;
    if (q->kind == KW_EQ_PROPERTY_BREAKDOWN) kw_db_text(st, 7, q->property);
    if (recent) kw_db_int(st, 7, q->bytes > 0 ? q->bytes : INT64_MAX);
    /* After the prepare: a PostgreSQL session reconnected there would
     * have lost the setting. */
    if (q->time_limit_ms > 0 && (rc = kw_db_time_limit(s, q->time_limit_ms)))
        return kw_db_finish(st, rc);

    const struct kw_db_field *fields = recent ? RECENT_FIELDS : AGGREGATE_FIELDS;
    size_t n_fields = recent ? N_OF(RECENT_FIELDS) : N_OF(AGGREGATE_FIELDS);
    kw_event_row row;
    memset(&row, 0, sizeof row);
    while ((rc = kw_db_next(st, fields, n_fields, &row)) == KW_DB_ROW) {
        if (recent) {
            row.event.event = kw_db_col_text(st, 4);
            row.event.distinct_id = kw_db_col_text(st, 5);
            row.cut = kw_db_col_null(st, 6);  /* stored properties are never NULL */
            row.event.properties = row.cut ? NULL : kw_db_col_text(st, 6);
            row.count = 1;
        } else {
            row.key = kw_db_col_null(st, 2) ? NULL : kw_db_col_text(st, 2);
        }
        if ((rc = cb(ctx, &row))) break;
    }
    if (q->time_limit_ms > 0) {
        /* The bound is this query's only: cleared once its statement is
         * reset, whatever the outcome. */
        rc = kw_db_finish(st, rc);
        int cleared = kw_db_time_limit(s, 0);
        return rc ? rc : cleared;
    }
    return kw_db_finish(st, rc);
}

/* ---- endpoints ------------------------------------------------------------- */

static const struct kw_db_field ENDPOINT_FIELDS[] = {
    KW_DB_I64(kw_endpoint, id),          KW_DB_I64(kw_endpoint, project_id),
    KW_DB_TEXT(kw_endpoint, name),       KW_DB_DUP(kw_endpoint, description),
    KW_DB_DUP(kw_endpoint, query),       KW_DB_DUP(kw_endpoint, variables),
    KW_DB_I64(kw_endpoint, created_by),  KW_DB_I64(kw_endpoint, created_at),
    KW_DB_I64(kw_endpoint, updated_at),
    /* the listing only: the last LISTED_ENDPOINT fields */
    KW_DB_INT(kw_endpoint, joined),
    KW_DB_I64(kw_endpoint, created_by_user.id), KW_DB_TEXT(kw_endpoint, created_by_user.uuid),
    KW_DB_TEXT(kw_endpoint, created_by_user.email),
    KW_DB_TEXT(kw_endpoint, created_by_user.first_name),
    KW_DB_INT(kw_endpoint, created_by_user.is_active),
    KW_DB_I64(kw_endpoint, created_by_user.created_at),
};
#define LISTED_ENDPOINT 7
#define ENDPOINT_ALL (sizeof ENDPOINT_FIELDS / sizeof ENDPOINT_FIELDS[0])

static const struct kw_db_param ENDPOINT_INSERT[] = {
    KW_DB_P(1, I64, kw_endpoint, project_id),  KW_DB_P(2, TEXT, kw_endpoint, name),
    KW_DB_P(3, DUP, kw_endpoint, description), KW_DB_P(4, DUP, kw_endpoint, query),
    KW_DB_P(5, DUP, kw_endpoint, variables),   KW_DB_P_OR_NULL(6, I64, kw_endpoint, created_by),
    KW_DB_P(7, I64, kw_endpoint, created_at),
};

static const struct kw_db_param ENDPOINT_UPDATE[] = {
    KW_DB_P(1, I64, kw_endpoint, project_id),  KW_DB_P(2, I64, kw_endpoint, id),
    KW_DB_P(3, TEXT, kw_endpoint, name),       KW_DB_P(4, DUP, kw_endpoint, description),
    KW_DB_P(5, DUP, kw_endpoint, query),       KW_DB_P(6, DUP, kw_endpoint, variables),
    KW_DB_P(7, I64, kw_endpoint, updated_at),
};

/* The endpoint as stored: an absent description is empty, absent JSON an
 * empty object. */
static kw_endpoint stored(const kw_endpoint *e)
{
    kw_endpoint v = *e;
    if (!v.description) v.description = "";
    if (!v.query) v.query = "{}";
    if (!v.variables) v.variables = "{}";
    return v;
}

/* Decodes the current row (the first n fields) into a cleared *e; on
 * failure *e holds nothing. */
static int read_endpoint(kw_db_stmt *st, size_t n, kw_endpoint *e)
{
    memset(e, 0, sizeof *e);
    int rc = kw_db_read_row(st, ENDPOINT_FIELDS, n, e);
    if (rc) kw_endpoint_clear(e);
    return rc;
}

int kw_store_endpoint_insert(kw_store *s, kw_endpoint *e)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_EP_INSERT, &st);
    if (rc) return rc;
    e->created_at = e->updated_at = kw_now();
    kw_endpoint v = stored(e);
    kw_db_bind_row(st, KW_DB_FIELDS(ENDPOINT_INSERT), &v);
    if ((rc = kw_db_one(st))) return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    e->id = kw_db_col_int(st, 0);
    return kw_db_finish(st, KW_OK);
}

int kw_store_endpoint_get(kw_store *s, int64_t project_id, const char *name, kw_endpoint *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_EP_GET, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    kw_db_text(st, 2, name);
    if ((rc = kw_db_one(st))) return rc;
    return kw_db_finish(st, read_endpoint(st, ENDPOINT_ALL - LISTED_ENDPOINT, out));
}

int kw_store_endpoint_list(kw_store *s, int64_t project_id, int64_t limit, int64_t offset,
                           kw_endpoint_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_EP_LIST, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    kw_db_int(st, 2, limit);
    kw_db_int(st, 3, offset);
    while ((rc = kw_db_step(st)) == KW_DB_ROW) {
        kw_endpoint e;
        if ((rc = read_endpoint(st, ENDPOINT_ALL, &e))) break;
        rc = cb(ctx, &e);
        kw_endpoint_clear(&e);
        if (rc) break;
    }
    return kw_db_finish(st, rc);
}

int kw_store_endpoint_count(kw_store *s, int64_t project_id, int64_t *count)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_EP_COUNT, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    return kw_db_int_result(st, count);
}

int kw_store_endpoint_update(kw_store *s, const kw_endpoint *e)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_EP_UPDATE, &st);
    if (rc) return rc;
    kw_endpoint v = stored(e);
    kw_db_bind_row(st, KW_DB_FIELDS(ENDPOINT_UPDATE), &v);
    return kw_db_exec(st, 1);
}

int kw_store_endpoint_delete(kw_store *s, int64_t project_id, int64_t id)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_EP_DELETE, &st);
    if (rc) return rc;
    kw_db_int(st, 1, project_id);
    kw_db_int(st, 2, id);
    return kw_db_exec(st, 1);
}

void kw_endpoint_clear(kw_endpoint *endpoint)
{
    free(endpoint->description);
    free(endpoint->query);
    free(endpoint->variables);
    endpoint->description = endpoint->query = endpoint->variables = NULL;
}
