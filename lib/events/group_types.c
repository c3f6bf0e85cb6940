/* group_types.c — a project's group types, as PostHog keeps them for
 * group analytics: learned from captured events ($groups on any event,
 * {"company": "acme"}; $group_type of a $groupidentify), index 0-4 in
 * order of first sight, at most five per project (PostHog's limit; later
 * types are not recorded), listed and renamed (display names only: the
 * name and index a flag refers to never change) by the project's members.
 *
 * Capture collects the names when it stages a request
 * (kw_group_types_collect) and calls kw_group_types_learn after storing it.  Most events
 * name types the project already has: those are checked against the
 * mapping the flag cache holds for the project (a memory probe), so only a
 * new name costs a write.  A new type is logged as a flag write of the
 * project (the table's trigger), so the flag caches of every instance drop
 * the project's definitions and the next ones carry the type. */
#include <string.h>

#include "keyward/flagcache.h"
#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keyward/validate.h"
#include "store/txn.h"

struct seen {
    const char **names;
    size_t n, max;
};

/* Notes a name once. */
static void note(struct seen *s, const char *name, size_t len)
{
    if (!name || !len || len > KW_GROUP_TYPE_MAX || strlen(name) != len || s->n == s->max)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0) return;
    s->names[s->n++] = name;
}

size_t kw_group_types_collect(const json_t *events, const char **names, size_t max)
{
    struct seen seen = {names, 0, max}, *s = &seen;
    size_t i;
    const json_t *e;
    json_array_foreach(events, i, e) {
        json_t *props = json_object_get(e, "properties");
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(props, "$groups"), key, v)
            if (json_is_string(v) || json_is_integer(v)) note(s, key, strlen(key));
        const char *name = json_string_value(json_object_get(e, "event"));
        json_t *type = json_object_get(props, "$group_type");
        if (name && strcmp(name, "$groupidentify") == 0 && json_is_string(type))
            note(s, json_string_value(type), json_string_length(type));
    }
    return seen.n;
}

struct known {
    const char *name;
    int found;
};

static int find(void *ctx, const kw_group_type *g)
{
    struct known *k = ctx;
    if (strcmp(g->group_type, k->name) != 0) return 0;
    k->found = 1;
    return 1;
}

/* Whether the project already has the type: from the cached mapping when
 * there is a cache, else from the store. */
static int known(const kw_call *c, const json_t *mapping, int64_t project_id, const char *name)
{
    if (mapping) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)mapping, k, v)
            if (strcmp(json_string_value(v), name) == 0) return 1;
        return json_object_size(mapping) >= KW_GROUP_TYPES_MAX;  /* full: nothing to add */
    }
    struct known kn = {name, 0};
    return kw_store_group_types(c->store, project_id, find, &kn) < 0 || kn.found;
}

void kw_group_types_learn(const kw_call *c, int64_t project_id, const char *const *names,
                          size_t n)
{
    if (!n) return;
    const kw_flagset *set = NULL;
    if (c->flags && kw_flagcache_get(c->flags, project_id, &set)) set = NULL;
    int added = 0, full = 0;
    kw_time now = kw_now();
    for (size_t i = 0; i < n && !full; i++) {
        if (known(c, set ? set->group_type_mapping : NULL, project_id, names[i])) continue;
        int rc = kw_store_group_type_add(c->store, project_id, names[i], now);
        added |= rc == KW_OK;
        full = rc == KW_ERR_LIMIT;
    }
    if (set) kw_flagset_release(set);
    if (added) kw_flagcache_after_write(c->flags);
}

/* ---- the admin's view: list and rename ------------------------------------ */

static json_t *name_json(const char *name) { return *name ? json_string(name) : json_null(); }

static int add_json(void *ctx, const kw_group_type *g)
{
    char created[KW_TIME_TEXT];
    kw_time_format(g->created_at, created);
    json_t *o = json_pack("{s:s, s:I, s:o, s:o, s:n, s:n, s:s}", "group_type", g->group_type,
                          "group_type_index", (json_int_t)g->index, "name_singular",
                          name_json(g->name_singular), "name_plural", name_json(g->name_plural),
                          "detail_dashboard", "default_columns", "created_at", created);
    return !o || json_array_append_new(ctx, o) ? KW_ERR_NOMEM : 0;
}

int kw_group_types_json(const kw_call *c, int64_t project_id, json_t **out, kw_problem *p)
{
    *out = json_array();
    int rc = *out ? kw_store_group_types(c->store, project_id, add_json, *out) : KW_ERR_NOMEM;
    if (!rc) return 0;
    json_decref(*out);
    *out = NULL;
    return kw_problem_from_store(p, rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc);
}

/* A display name: absent (kept), null or "" (cleared), or a string of at
 * most 200 characters (and as many bytes as the stored name holds) without
 * NUL. */
static int read_name(const json_t *item, const char *field, const char **out, int *present,
                     kw_problem *p)
{
    json_t *v = json_object_get(item, field);
    *present = v != NULL;
    *out = "";
    if (!v || json_is_null(v)) return 0;
    return kw_v_text(item, field, 0, 200, KW_NAME_MAX, 1, out, p);
}

struct rename {
    int64_t index;
    const char *singular, *plural;
    int has_singular, has_plural;
};

static int current(void *ctx, const kw_group_type *g)
{
    kw_group_type *all = ctx;
    if (g->index >= 0 && g->index < KW_GROUP_TYPES_MAX) all[g->index] = *g;
    return 0;
}

int kw_group_types_rename(const kw_call *c, const kw_project *project, const json_t *body,
                          json_t **out, kw_problem *p)
{
    *out = NULL;
    if (!json_is_array(body)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid", "non_field_errors",
                       "Expected a list of items but got type \"%s\".",
                       body ? kw_v_type_name(body) : "NoneType");
        return 1;
    }
    size_t n = json_array_size(body);
    if (n > KW_GROUP_TYPES_MAX) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", "non_field_errors",
                       "Ensure this list has no more than %d elements.", KW_GROUP_TYPES_MAX);
        return 1;
    }
    kw_group_type all[KW_GROUP_TYPES_MAX];
    for (int i = 0; i < KW_GROUP_TYPES_MAX; i++) all[i].index = -1;
    int rc = kw_store_group_types(c->store, project->id, current, all);
    if (rc) return kw_problem_from_store(p, rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc);
    struct rename r[KW_GROUP_TYPES_MAX];
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(body, i);
        if (kw_v_object(item, p)) return 1;
        int present;
        if (kw_v_int(item, "group_type_index", 0, KW_GROUP_TYPES_MAX - 1, &present, &r[i].index, p))
            return 1;
        if (!present || json_is_null(json_object_get(item, "group_type_index"))) {
            kw_problem_set(p, KW_P_VALIDATION, "required", "group_type_index",
                           "This field is required.");
            return 1;
        }
        if (all[r[i].index].index < 0) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "group_type_index",
                           "The project has no group type at index %lld.", (long long)r[i].index);
            return 1;
        }
        if (read_name(item, "name_singular", &r[i].singular, &r[i].has_singular, p) ||
            read_name(item, "name_plural", &r[i].plural, &r[i].has_plural, p))
            return 1;
    }
    if ((rc = kw_store_begin(c->store))) return kw_problem_from_store(p, rc);
    for (size_t i = 0; !rc && i < n; i++) {
        kw_group_type *g = &all[r[i].index];
        rc = kw_store_group_type_rename(c->store, project->id, r[i].index,
                                        r[i].has_singular ? r[i].singular : g->name_singular,
                                        r[i].has_plural ? r[i].plural : g->name_plural);
    }
    if (kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p)) return 1;
    kw_flagcache_after_write(c->flags);
    return kw_group_types_json(c, project->id, out, p);
}
