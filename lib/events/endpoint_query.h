/* endpoint_query.h — an endpoint's query document (internal).
 *
 * The schema is in docs/endpoints.md.  The same resolver serves two
 * moments: when an endpoint is saved (values == NULL: every field and
 * every variable reference is checked, defaults validated by type) and
 * when it runs (values = the caller's variables: placeholders are
 * replaced by typed values, which end up as bound parameters). */
#ifndef KW_ENDPOINT_QUERY_H
#define KW_ENDPOINT_QUERY_H

#include <jansson.h>

#include "keyward/problem.h"
#include "keyward/store.h"

#define KW_EQ_TEXT_MAX 400  /* bytes */
/* A recent_events answer holds at most this many bytes of properties and
 * this many JSON values in them; the newest rows that fit are kept and the
 * answer says "truncated": true. */
#define KW_EQ_RECENT_BYTES_MAX ((int64_t)4 << 20)
#define KW_EQ_RECENT_VALUES_MAX ((size_t)500000)

typedef struct kw_eq_resolved {
    kw_event_query q;          /* event/property point into the buffers below */
    char event[KW_EQ_TEXT_MAX + 1];
    char property[KW_EQ_TEXT_MAX + 1];
    int has_event;
    const char *interval;      /* "hour", "day" or NULL */
} kw_eq_resolved;

/* The "variables" object: names and types (and defaults) are valid. */
int kw_eq_check_variables(const json_t *defs, kw_problem *p);
/* Resolves `query` with `defs` and the run's `values` (NULL: saving). */
int kw_eq_resolve(const json_t *query, const json_t *defs, const json_t *values, kw_time now,
                  kw_eq_resolved *out, kw_problem *p);
/* Runs a resolved query: {"columns": [...], "results": [[...], ...]},
 * bounded by r->q.time_limit_ms (a 504 query_timeout past it). */
int kw_eq_run(kw_store *store, const kw_eq_resolved *r, json_t **out, kw_problem *p);

#endif
