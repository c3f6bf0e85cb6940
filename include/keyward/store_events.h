/* store_events.h — the store's captured events and the endpoints that
 * query them (lib/store/events.c).  Events are what phc_ capture stores;
 * endpoints are named, parameterised, read-only queries over them.  A
 * query is one of a fixed set of kinds, each one fixed SQL statement per
 * backend with bound parameters: nothing from a request ever becomes SQL
 * text.  Part of the store API: <keyward/store.h> includes it. */
#ifndef KEYWARD_STORE_EVENTS_H
#define KEYWARD_STORE_EVENTS_H

#include "keyward/store_base.h"

#define KW_EVENT_NAME_MAX 400      /* bytes kept of an event name */
#define KW_DISTINCT_ID_MAX 200     /* PostHog truncates distinct ids to 200 */
/* An event's properties, serialized compactly, at most (PostHog's capture
 * refuses events over 1 MB): what one stored event can cost an endpoint
 * that reads it back. */
#define KW_EVENT_PROPERTIES_MAX ((size_t)1 << 20)
#define KW_ENDPOINT_NAME_MAX 64

typedef struct kw_event {
    int64_t id;                 /* filled by the store on read */
    char uuid[KW_ID_LEN + 1];
    const char *event;          /* borrowed by insert; heap-owned on read */
    const char *distinct_id;
    const char *properties;     /* JSON object text */
    kw_time timestamp;
    kw_time created_at;
} kw_event;

/* The query kinds (docs/endpoints.md). */
typedef enum kw_event_query_kind {
    KW_EQ_EVENT_COUNTS,         /* rows: bucket, event, count */
    KW_EQ_UNIQUE_USERS,         /* rows: bucket, count(distinct distinct_id) */
    KW_EQ_PROPERTY_BREAKDOWN,   /* rows: bucket, property value, count */
    KW_EQ_RECENT_EVENTS,        /* rows: the events, newest first */
    KW_EQ_KIND_COUNT
} kw_event_query_kind;

typedef struct kw_event_query {
    kw_event_query_kind kind;
    int64_t project_id;
    const char *event;          /* NULL = every event */
    const char *property;       /* property key (breakdown only) */
    kw_time bucket;             /* interval width in µs; 0 = one bucket */
    kw_time date_from;          /* inclusive; 0 = unbounded */
    kw_time date_to;            /* exclusive; 0 = unbounded */
    int64_t limit;
    /* recent_events: properties bytes the rows may hold together (the
     * newest first; the answer ends before the row that would cross it). */
    int64_t bytes;
    /* Wall time the query may take, in ms; 0 = unbounded.  Past it the
     * query fails with KW_ERR_TIMEOUT. */
    int64_t time_limit_ms;
} kw_event_query;

/* One result row.  Aggregates fill bucket (interval start, 0 without an
 * interval), key (event name / property value as text, NULL for a missing
 * property) and count; recent_events fills `event`. */
typedef struct kw_event_row {
    kw_time bucket;
    const char *key;
    int64_t count;
    kw_event event;
    int cut;  /* recent_events: the byte budget ends the answer before this row (no event) */
} kw_event_row;

typedef int (*kw_event_row_cb)(void *ctx, const kw_event_row *row);

/* Inserts n events of one project atomically (its own transaction, or the
 * caller's when one is open), reusing one prepared statement. */
int kw_store_events_insert(kw_store *store, int64_t project_id, const kw_event *events, size_t n);
int kw_store_events_query(kw_store *store, const kw_event_query *q, kw_event_row_cb cb, void *ctx);

typedef struct kw_endpoint {
    int64_t id;
    int64_t project_id;
    char name[KW_ENDPOINT_NAME_MAX + 1];
    char *description;          /* heap, owned */
    char *query;                /* JSON object text, heap, owned */
    char *variables;            /* JSON object text, heap, owned */
    int64_t created_by;         /* user id, 0 = none */
    kw_time created_at;
    kw_time updated_at;
    /* Read with the row by the listing only (the run path reads no more
     * than it needs): the creator, so a page needs no query per row. */
    kw_user created_by_user;
    int joined;
} kw_endpoint;

typedef int (*kw_endpoint_cb)(void *ctx, const kw_endpoint *endpoint);

void kw_endpoint_clear(kw_endpoint *endpoint);
/* KW_ERR_EXISTS on a duplicate (project, name).  Fills id and times. */
int kw_store_endpoint_insert(kw_store *store, kw_endpoint *endpoint);
int kw_store_endpoint_get(kw_store *store, int64_t project_id, const char *name, kw_endpoint *out);
int kw_store_endpoint_list(kw_store *store, int64_t project_id, int64_t limit, int64_t offset,
                           kw_endpoint_cb cb, void *ctx);  /* by name */
int kw_store_endpoint_count(kw_store *store, int64_t project_id, int64_t *count);
/* name, description, query, variables, updated_at of row `id`. */
int kw_store_endpoint_update(kw_store *store, const kw_endpoint *endpoint);
int kw_store_endpoint_delete(kw_store *store, int64_t project_id, int64_t id);

#endif
