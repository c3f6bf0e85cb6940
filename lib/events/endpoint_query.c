/* endpoint_query.c — validating, resolving and running an endpoint's query.
 *
 * An endpoint never carries SQL.  Its query is a small JSON document naming
 * one of four kinds (event_counts, unique_users, property_breakdown,
 * recent_events) and a few typed fields; each kind maps to ONE fixed
 * statement per backend (store_*_events.c) and every field, once resolved,
 * is a bound parameter there.  Variables make an endpoint reusable: a field
 * whose value is exactly "{variables.NAME}" takes the run's value for NAME
 * (or its declared default), checked against the variable's declared type
 * and the field's.  So a hostile event name or variable value is only ever
 * a string compared with '=' — it cannot change what the query does. */
#include "events/endpoint_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keyward/keyward.h"
#include "store/txn.h"
#include "keyward/validate.h"

#define VAR_NAME_MAX 64
#define MAX_VARIABLES 32
#define LIMIT_MAX 1000
#define LIMIT_DEFAULT 100
#define HOUR_US (3600LL * 1000000)

static const char *const KINDS[KW_EQ_KIND_COUNT] = {"event_counts", "unique_users",
                                                     "property_breakdown", "recent_events"};
static const char *const TYPES[] = {"date", "integer", "string"};

static int bad(kw_problem *p, const char *attr, const char *fmt, const char *arg)
{
    kw_problem_set(p, KW_P_VALIDATION, "invalid_input", attr, fmt, arg);
    return 1;
}

/* A date expression: ISO date/date-time, "now", or -N followed by h, d, w,
 * m (calendar months) or y (calendar years) before now. */
static int parse_date(const char *s, kw_time now, kw_time *out)
{
    if (strcmp(s, "now") == 0) {
        *out = now;
        return 0;
    }
    if (s[0] == '-' && s[1] >= '0' && s[1] <= '9') {
        char *end;
        long n = strtol(s + 1, &end, 10);
        if (n > 100000 || !end[0] || end[1]) return -1;
        int64_t secs = 0;
        switch (end[0]) {
        case 'h': secs = n * 3600L; break;
        case 'd': secs = n * 86400L; break;
        case 'w': secs = n * 7 * 86400L; break;
        case 'm': case 'y': {
            time_t t = (time_t)(now / 1000000);
            struct tm tm;
            gmtime_r(&t, &tm);
            if (end[0] == 'm') tm.tm_mon -= (int)n; else tm.tm_year -= (int)n;
            *out = (int64_t)timegm(&tm) * 1000000 + now % 1000000;
            return 0;
        }
        default: return -1;
        }
        *out = now - secs * 1000000;
        return 0;
    }
    return kw_time_parse(s, out) ? -1 : 0;
}

/* Does `v` fit `type`?  Texts are DRF-like, attr names where it was. */
static int check_typed(const json_t *v, const char *type, const char *what, const char *attr,
                       kw_problem *p)
{
    kw_time t;
    if (strcmp(type, "integer") == 0) {
        if (json_is_integer(v)) return 0;
        return bad(p, attr, "%s must be an integer.", what);
    }
    if (!json_is_string(v)) return bad(p, attr, "%s must be a string.", what);
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return bad(p, attr, "%s may not contain null characters.", what);
    /* Bytes, not characters: the value is copied into a buffer of
     * KW_EQ_TEXT_MAX bytes, and capture keeps event names to as many bytes,
     * so a longer name could never match anyway. */
    if (json_string_length(v) > KW_EQ_TEXT_MAX) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", attr, "%s is longer than %d bytes.",
                       what, KW_EQ_TEXT_MAX);
        return 1;
    }
    if (strcmp(type, "date") == 0 && parse_date(s, 0, &t))
        return bad(p, attr, "%s is not a date (2024-01-31, 2024-01-31T12:00:00Z, -7d, -24h, now).",
                   what);
    return 0;
}

int kw_eq_check_variables(const json_t *defs, kw_problem *p)
{
    if (!json_is_object(defs)) return bad(p, "variables", "%s", "variables must be an object.");
    if (json_object_size(defs) > MAX_VARIABLES)
        return bad(p, "variables", "%s", "An endpoint may declare at most 32 variables.");
    const char *name;
    json_t *def;
    json_object_foreach((json_t *)defs, name, def) {
        size_t len = strlen(name);
        if (!len || len > VAR_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != len)
            return bad(p, "variables", "Invalid variable name '%.64s': use letters, digits and '_'.",
                       name);
        json_t *type = json_object_get(def, "type");
        if (!json_is_object(def) || !json_is_string(type))
            return bad(p, "variables", "Variable '%.64s' needs a \"type\".", name);
        const char *t = json_string_value(type);
        int known = 0;
        for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++) known |= strcmp(t, TYPES[i]) == 0;
        if (!known) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "variables",
                           "Unknown variable type '%.64s' for '%.64s'. Allowed types: date, integer, "
                           "string.", t, name);
            return 1;
        }
        json_t *dflt = json_object_get(def, "default");
        if (dflt && !json_is_null(dflt) && check_typed(dflt, t, "A variable's default", "variables", p))
            return 1;
    }
    return 0;
}

/* The name in "{variables.NAME}", or NULL when `v` is not a placeholder. */
static const char *placeholder(const json_t *v, char name[VAR_NAME_MAX + 1])
{
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    if (n < 13 || strncmp(s, "{variables.", 11) != 0 || s[n - 1] != '}' || n - 12 > VAR_NAME_MAX)
        return NULL;
    memcpy(name, s + 11, n - 12);
    name[n - 12] = '\0';
    return name;
}

/* The value of query field `field` (a literal, or a variable's value at
 * run time; NULL when absent or null).  While saving, a placeholder gives
 * its variable's default (NULL without one), so that the field's own rules
 * (a limit's range) hold for defaults too: a default every run would
 * refuse is refused when the endpoint is saved.  *from_var says the value
 * came from a variable (its refusals then name "variables"). */
static int field(const json_t *query, const char *field, const char *type, const json_t *defs,
                 const json_t *values, const json_t **out, int *from_var, kw_problem *p)
{
    char name[VAR_NAME_MAX + 1];
    const json_t *v = json_object_get(query, field);
    *out = NULL;
    *from_var = 0;
    if (!v || json_is_null(v)) return 0;
    if (!placeholder(v, name)) {
        if (check_typed(v, type, field, "query", p)) return 1;
        *out = v;
        return 0;
    }
    const json_t *def = json_object_get(defs, name);
    if (!def) return bad(p, "query", "The query uses an undeclared variable '%.64s'.", name);
    const char *declared = json_string_value(json_object_get(def, "type"));
    if (!declared || strcmp(declared, type) != 0) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "query",
                       "Variable '%.64s' is a %.16s but '%s' needs a %s.", name,
                       declared ? declared : "?", field, type);
        return 1;
    }
    *from_var = 1;
    if (!values) {
        const json_t *dflt = json_object_get(def, "default");
        if (dflt && !json_is_null(dflt)) *out = dflt;  /* typed by kw_eq_check_variables */
        return 0;
    }
    v = json_object_get(values, name);
    if (!v) v = json_object_get(def, "default");
    if (!v) return bad(p, "variables", "Missing value for variable '%.64s'.", name);
    if (json_is_null(v)) return 0;  /* null: the field is unset (e.g. no event filter) */
    if (check_typed(v, type, "A variable's value", "variables", p)) return 1;
    *out = v;
    return 0;
}

int kw_eq_resolve(const json_t *query, const json_t *defs, const json_t *values, kw_time now,
                  kw_eq_resolved *r, kw_problem *p)
{
    memset(r, 0, sizeof *r);
    if (!json_is_object(query)) return bad(p, "query", "%s", "query must be an object.");
    const char *kind = json_string_value(json_object_get(query, "kind"));
    r->q.kind = KW_EQ_KIND_COUNT;
    for (int i = 0; kind && i < KW_EQ_KIND_COUNT; i++)
        if (strcmp(kind, KINDS[i]) == 0) r->q.kind = (kw_event_query_kind)i;
    if (r->q.kind == KW_EQ_KIND_COUNT)
        return bad(p, "query", "%s", "query.kind must be one of event_counts, unique_users, "
                                     "property_breakdown, recent_events.");
    if (values) {  /* unknown run variables are refused, not ignored */
        const char *name;
        json_t *v;
        json_object_foreach((json_t *)values, name, v)
            if (!json_object_get(defs, name))
                return bad(p, "variables", "Unknown variable '%.64s'.", name);
    }
    json_t *interval = json_object_get(query, "interval");
    if (interval && !json_is_null(interval)) {
        const char *iv = json_string_value(interval);
        if (!iv || (strcmp(iv, "hour") != 0 && strcmp(iv, "day") != 0))
            return bad(p, "query", "%s", "query.interval must be \"hour\", \"day\" or null.");
        if (r->q.kind == KW_EQ_RECENT_EVENTS)
            return bad(p, "query", "%s", "recent_events takes no interval.");
        r->interval = iv[0] == 'h' ? "hour" : "day";
        r->q.bucket = iv[0] == 'h' ? HOUR_US : 24 * HOUR_US;
    }
    const json_t *event, *property, *from, *to, *limit;
    int var, var_limit;
    if (field(query, "event", "string", defs, values, &event, &var, p) ||
        field(query, "property", "string", defs, values, &property, &var, p) ||
        field(query, "date_from", "date", defs, values, &from, &var, p) ||
        field(query, "date_to", "date", defs, values, &to, &var, p) ||
        field(query, "limit", "integer", defs, values, &limit, &var_limit, p))
        return 1;
    if (r->q.kind == KW_EQ_PROPERTY_BREAKDOWN &&
        (!json_object_get(query, "property") || (values && !property)))
        return bad(p, values ? "variables" : "query", "%s", "property_breakdown needs query.property.");
    if (event) {
        snprintf(r->event, sizeof r->event, "%s", json_string_value(event));
        r->q.event = r->event;
        r->has_event = 1;
    }
    if (property) {
        snprintf(r->property, sizeof r->property, "%s", json_string_value(property));
        r->q.property = r->property;
    }
    if (from) parse_date(json_string_value(from), now, &r->q.date_from);
    if (to) parse_date(json_string_value(to), now, &r->q.date_to);
    r->q.limit = LIMIT_DEFAULT;
    r->q.bytes = KW_EQ_RECENT_BYTES_MAX;
    if (limit) {
        json_int_t n = json_integer_value(limit);
        if (n < 1 || n > LIMIT_MAX)
            return bad(p, var_limit ? "variables" : "query", "%s",
                       var_limit && !values ? "The default of the variable used as limit must be "
                                              "between 1 and 1000."
                                            : "limit must be between 1 and 1000.");
        r->q.limit = n;
    }
    return 0;
}

/* ---- running ------------------------------------------------------------- */

struct run {
    const kw_eq_resolved *r;
    json_t *rows;
    size_t values;  /* JSON values parsed so far (recent_events' properties) */
    int truncated;  /* a budget ended the rows early */
};

/* How many values a JSON text holds, roughly (its separators and
 * containers outside strings): what parsing it costs in jansson nodes,
 * found without parsing.  An array of 500,000 zeros is 1 MB of text and,
 * parsed, some 20 MB of nodes; the byte budget alone would let a few such
 * properties take a hundred MB. */
static size_t json_values(const char *s)
{
    size_t n = 1;
    int in_string = 0;
    for (; *s; s++) {
        if (in_string) {
            if (*s == '\\' && s[1]) s++;
            else if (*s == '"') in_string = 0;
        } else if (*s == '"') {
            in_string = 1;
        } else if (*s == ',' || *s == ':' || *s == '[' || *s == '{') {
            n++;
        }
    }
    return n;
}

static json_t *bucket_json(const kw_eq_resolved *r, kw_time bucket)
{
    char text[KW_TIME_TEXT];
    kw_time_format(bucket, text);  /* 2024-01-31T13:00:00.000000Z */
    if (r->interval[0] == 'd') return json_stringn(text, 10);
    memcpy(text + 19, "Z", 2);
    return json_string(text);
}

static int add_row(void *ctx, const kw_event_row *row)
{
    struct run *run = ctx;
    const kw_eq_resolved *r = run->r;
    json_t *props = NULL;
    if (r->q.kind == KW_EQ_RECENT_EVENTS) {
        /* Past either budget the answer ends (and says so): the rows stay
         * the newest ones, with no gap. */
        size_t values = row->cut ? 0 : json_values(row->event.properties);
        if (row->cut || values > KW_EQ_RECENT_VALUES_MAX - run->values) {
            run->truncated = 1;
            return KW_ERR_LIMIT;
        }
        run->values += values;
        props = json_loads(row->event.properties, 0, NULL);
    }
    json_t *a = json_array();
    if (!a) {
        json_decref(props);
        return KW_ERR_NOMEM;
    }
    if (r->q.kind == KW_EQ_RECENT_EVENTS) {
        char ts[KW_TIME_TEXT];
        kw_time_format(row->event.timestamp, ts);
        json_array_append_new(a, json_string(row->event.uuid));
        json_array_append_new(a, json_string(row->event.event ? row->event.event : ""));
        json_array_append_new(a, json_string(row->event.distinct_id ? row->event.distinct_id : ""));
        json_array_append_new(a, props ? props : json_object());
        json_array_append_new(a, json_string(ts));
    } else {
        if (r->interval) json_array_append_new(a, bucket_json(r, row->bucket));
        if (r->q.kind != KW_EQ_UNIQUE_USERS)
            json_array_append_new(a, row->key ? json_string(row->key) : json_null());
        json_array_append_new(a, json_integer(row->count));
    }
    return json_array_append_new(run->rows, a) ? KW_ERR_NOMEM : 0;
}

static int timed_out(kw_problem *p)
{
    kw_problem_set(p, KW_P_TIMEOUT, "query_timeout", NULL,
                   "The endpoint's query ran past the server's time limit for endpoint runs and "
                   "was stopped. Narrow it (date_from, event) or raise the limit (keyward serve "
                   "--endpoint-timeout).");
    return 1;
}

int kw_eq_run(kw_store *store, const kw_eq_resolved *r, json_t **out, kw_problem *p)
{
    *out = NULL;
    if (r->q.time_limit_ms < 0) return timed_out(p);  /* spent waiting for its turn */
    static const char *const COLUMNS[KW_EQ_KIND_COUNT][5] = {
        {"event", "count"}, {"unique_users"}, {"value", "count"},
        {"uuid", "event", "distinct_id", "properties", "timestamp"}};
    json_t *columns = json_array();
    if (r->interval) json_array_append_new(columns, json_string("date"));
    for (int i = 0; i < 5 && COLUMNS[r->q.kind][i]; i++)
        json_array_append_new(columns, json_string(COLUMNS[r->q.kind][i]));
    struct run run = {r, json_array(), 0, 0};
    int rc = kw_store_events_query(store, &r->q, add_row, &run);
    if (rc == KW_ERR_LIMIT && run.truncated) rc = KW_OK;  /* a budget, not a failure */
    /* One bucket and no events: "0 users", not "no answer". */
    if (!rc && r->q.kind == KW_EQ_UNIQUE_USERS && !r->interval && json_array_size(run.rows) == 0)
        json_array_append_new(run.rows, json_pack("[i]", 0));
    if (rc) {
        json_decref(columns);
        json_decref(run.rows);
        return rc == KW_ERR_TIMEOUT ? timed_out(p) : kw_storage_problem(p, rc);
    }
    *out = json_pack("{s:o, s:o}", "columns", columns, "results", run.rows);
    /* Said only when it happened, so an answer without it is complete. */
    if (*out && run.truncated) json_object_set_new(*out, "truncated", json_true());
    return *out ? 0 : kw_storage_problem(p, KW_ERR_NOMEM);
}
