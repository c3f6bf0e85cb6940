/* match.c — a request's method and path to its row of the route table.
 *
 * Runs before anything else on every request, so the table is prepared
 * once (pthread_once): each pattern cut into segments, the rows grouped by
 * segment count (a path is compared only with the rows of its own length,
 * in table order, so the first matching row still wins) and each row's
 * required scope parsed into its object and action, so neither the policy
 * check nor the usage counter parses a scope string per request. */
#include "keyward/policy.h"

#include <pthread.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/scope.h"
#include "keyward/strbuf.h"

/* A path cut into its segments ('/' runs skipped, so "/api//projects/"
 * is "/api/projects").  Patterns are cut once; a request path once per
 * request, and then only the rows of that length are compared, with a
 * few memcmp each. */
#define MAX_SEGMENTS 8
typedef struct {
    const char *seg[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS];
    int n;  /* -1: more segments than any pattern has */
} split_path;

static void split(const char *path, split_path *out)
{
    out->n = 0;
    const char *s = path;
    for (;;) {
        while (*s == '/') s++;
        if (!*s) return;
        const char *e = s;
        while (*e && *e != '/') e++;
        if (out->n == MAX_SEGMENTS) {
            out->n = -1;
            return;
        }
        out->seg[out->n] = s;
        out->len[out->n] = (size_t)(e - s);
        out->n++;
        s = e;
    }
}

/* The table as prepared once: rows by segment count (indexes in table
 * order), every row's segments and its parsed scope. */
typedef struct {
    split_path pattern;
    int scope_object;  /* -1: the row needs no scope (or names none known) */
    kw_scope_action scope_action;
} prepared_route;

static prepared_route PREPARED[KW_ROUTE_COUNT];
static const kw_route *TABLE;
static unsigned char BY_LENGTH[MAX_SEGMENTS + 1][KW_ROUTE_COUNT];
static size_t BY_LENGTH_COUNT[MAX_SEGMENTS + 1];
static pthread_once_t prepared_once = PTHREAD_ONCE_INIT;
_Static_assert(KW_ROUTE_COUNT <= 256, "route indexes fit BY_LENGTH's bytes");

static void prepare(void)
{
    size_t n;
    TABLE = kw_policy_routes(&n);
    for (size_t i = 0; i < n; i++) {
        prepared_route *p = &PREPARED[i];
        split(TABLE[i].pattern, &p->pattern);
        p->scope_object = -1;
        int object;
        kw_scope_action action;
        if (TABLE[i].scope && kw_scope_parse(TABLE[i].scope, &object, &action) == KW_OK) {
            p->scope_object = object;
            p->scope_action = action;
        }
        if (p->pattern.n >= 0) {
            int len = p->pattern.n;
            BY_LENGTH[len][BY_LENGTH_COUNT[len]++] = (unsigned char)i;
        }
    }
}

int kw_policy_route_scope(const kw_route *route, int *object, kw_scope_action *action)
{
    pthread_once(&prepared_once, prepare);
    /* A row of the table (row i has id i): its scope was parsed once.  Any
     * other route (a test's own row) is parsed here. */
    if ((unsigned)route->id < KW_ROUTE_COUNT && &TABLE[route->id] == route) {
        const prepared_route *p = &PREPARED[route->id];
        if (p->scope_object < 0) return KW_ERR_INVALID;
        *object = p->scope_object;
        *action = p->scope_action;
        return KW_OK;
    }
    if (!route->scope) return KW_ERR_INVALID;
    return kw_scope_parse(route->scope, object, action);
}

static int is_project_ref(const char *seg, size_t len)
{
    if (len == 8 && memcmp(seg, "@current", 8) == 0) return 1;
    if (len == 0 || len > 18) return 0;
    for (size_t i = 0; i < len; i++)
        if (seg[i] < '0' || seg[i] > '9') return 0;
    return 1;
}

static int copy_param(char *dst, const char *seg, size_t len)
{
    if (len >= KW_ROUTE_MAX_PARAM) return 0;
    memcpy(dst, seg, len);
    dst[len] = '\0';
    return 1;
}

static int all_digits(const char *seg, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (seg[i] < '0' || seg[i] > '9') return 0;
    return 1;
}

/* The path matches the pattern segment by segment; fills the params.
 * Callers pair a path only with the patterns of its own length. */
static int path_matches(const split_path *pattern, const split_path *path, kw_route_match *m)
{
    m->project[0] = m->id[0] = m->org[0] = '\0';
    for (int i = 0; i < pattern->n; i++) {
        const char *pseg = pattern->seg[i], *sseg = path->seg[i];
        size_t plen = pattern->len[i], slen = path->len[i];
        /* /api/environments/:id/… is PostHog's newer name for a project. */
        if (i > 0 && plen == 8 && memcmp(pseg, "projects", 8) == 0 && slen == 12 &&
            memcmp(sseg, "environments", 12) == 0)
            continue;
        if (pseg[0] != ':') {
            if (plen != slen || memcmp(pseg, sseg, plen) != 0) return 0;
        } else if (plen == 8 && memcmp(pseg, ":project", 8) == 0) {
            if (!is_project_ref(sseg, slen) || !copy_param(m->project, sseg, slen)) return 0;
        } else if (plen == 4 && memcmp(pseg, ":org", 4) == 0) {
            if (!copy_param(m->org, sseg, slen)) return 0;
        } else if (plen == 3 && memcmp(pseg, ":id", 3) == 0) {
            if (!copy_param(m->id, sseg, slen)) return 0;
        } else if (plen == 4 && memcmp(pseg, ":num", 4) == 0) {
            if (!slen || !all_digits(sseg, slen) || !copy_param(m->id, sseg, slen)) return 0;
        } else if (plen == 4 && memcmp(pseg, ":any", 4) == 0) {
            /* any one segment, not kept, except "." and "..": nothing
             * that reads as a directory step matches */
            if (!slen || (sseg[0] == '.' && (slen == 1 || (slen == 2 && sseg[1] == '.'))))
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

kw_match_result kw_policy_match(const char *method, const char *path, kw_route_match *out)
{
    pthread_once(&prepared_once, prepare);
    split_path req;
    split(path, &req);
    int path_seen = 0;
    out->route = NULL;
    if (req.n < 0) return KW_MATCH_NO_ROUTE;
    /* HEAD is GET without a body, as HTTP says. */
    if (strcmp(method, "HEAD") == 0) method = "GET";
    for (size_t k = 0; k < BY_LENGTH_COUNT[req.n]; k++) {
        size_t i = BY_LENGTH[req.n][k];
        if (!path_matches(&PREPARED[i].pattern, &req, out)) continue;
        if (strcmp(TABLE[i].method, method) == 0) {
            out->route = &TABLE[i];
            return KW_MATCH_OK;
        }
        path_seen = 1;
    }
    return path_seen ? KW_MATCH_BAD_METHOD : KW_MATCH_NO_ROUTE;
}

size_t kw_policy_allow(const char *path, char *out, size_t size)
{
    static const char *const METHODS[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
    int seen[sizeof METHODS / sizeof METHODS[0]] = {0};
    size_t matched = 0;
    kw_route_match m;
    pthread_once(&prepared_once, prepare);
    split_path req;
    split(path, &req);
    for (size_t k = 0; req.n >= 0 && k < BY_LENGTH_COUNT[req.n]; k++) {
        size_t i = BY_LENGTH[req.n][k];
        if (!path_matches(&PREPARED[i].pattern, &req, &m)) continue;
        matched++;
        for (size_t j = 0; j < sizeof METHODS / sizeof METHODS[0]; j++)
            if (strcmp(TABLE[i].method, METHODS[j]) == 0) seen[j] = 1;
    }
    seen[1] |= seen[0];  /* HEAD wherever GET */
    kw_strbuf sb;
    kw_sb_init(&sb, out, size);
    if (!matched) return 0;
    for (size_t j = 0; j < sizeof METHODS / sizeof METHODS[0]; j++)
        if (seen[j]) kw_sb_appendf(&sb, "%s, ", METHODS[j]);
    kw_sb_append(&sb, "OPTIONS");
    /* Callers pass room for every method; never a cut list. */
    if (!kw_sb_ok(&sb) && size) out[0] = '\0';
    return matched;
}

