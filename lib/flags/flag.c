/* flag.c — feature flag definitions: validation, writes and their audit.
 *
 * Flags exist in keyward because they are what project secret keys guard
 * (local evaluation), and because a scope is only proven enforced on a
 * real resource.  Validation follows PostHog's texts.  Deleting is a soft
 * delete (deleted = true), as PostHog's PATCH {"deleted": true}: a deleted
 * flag's key can be reused and its history stays in the activity log. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/flagcache.h"
#include "keyward/flags.h"
#include "keyward/keyward.h"
#include "keyward/service.h"
#include "store/txn.h"
#include "keyward/validate.h"

#define FLAG_KEY_MAX_CHARS 400
#define FLAG_NAME_MAX_CHARS 100
#define FILTERS_MAX_BYTES (64 * 1024)

/* Regex filters run on anonymous requests: few and short (flags.h). */
static int check_regex_filters(const json_t *groups, kw_problem *p)
{
    size_t i, j, count = 0;
    const json_t *group, *filter;
    json_array_foreach(groups, i, group) {
        json_array_foreach(json_object_get(group, "properties"), j, filter) {
            if (!kw_flag_filter_is_regex(filter)) continue;
            if (++count > KW_FLAG_REGEX_MAX_PER_FLAG) {
                kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "filters",
                               "A flag may have at most %d regex filters.",
                               KW_FLAG_REGEX_MAX_PER_FLAG);
                return 1;
            }
            if (kw_flag_regex_pattern_size(filter) > KW_FLAG_REGEX_MAX_BYTES) {
                kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "filters",
                               "Regex patterns may be at most %d bytes long.",
                               KW_FLAG_REGEX_MAX_BYTES);
                return 1;
            }
        }
    }
    return 0;
}

static int check_filters(const json_t *filters, kw_problem *p)
{
    if (!json_is_object(filters)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "filters", "Filters must be a JSON object.");
        return 1;
    }
    json_t *groups = json_object_get(filters, "groups");
    if (groups && !json_is_array(groups)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "filters", "Filters are not valid (groups).");
        return 1;
    }
    size_t i;
    json_t *group;
    json_array_foreach(groups, i, group) {
        json_t *pct = json_object_get(group, "rollout_percentage");
        json_t *props = json_object_get(group, "properties");
        if (!json_is_object(group) || (pct && !json_is_null(pct) && !json_is_number(pct)) ||
            (pct && json_is_number(pct) && (json_number_value(pct) < 0 || json_number_value(pct) > 100)) ||
            (props && !json_is_null(props) && !json_is_array(props))) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "filters",
                           "Filters are not valid (groups).");
            return 1;
        }
    }
    if (check_regex_filters(groups, p)) return 1;
    json_t *multivariate = json_object_get(filters, "multivariate");
    if (multivariate && !json_is_null(multivariate)) {
        json_t *variants = json_object_get(multivariate, "variants");
        json_t *v;
        double total = 0;
        if (!json_is_array(variants)) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "filters",
                           "Invalid variant definitions");
            return 1;
        }
        json_array_foreach(variants, i, v) {
            if (!json_is_string(json_object_get(v, "key")) ||
                !json_is_number(json_object_get(v, "rollout_percentage"))) {
                kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "filters",
                               "Invalid variant definitions");
                return 1;
            }
            total += json_number_value(json_object_get(v, "rollout_percentage"));
        }
        if (json_array_size(variants) && (total < 99.999 || total > 100.001)) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "filters",
                           "Invalid variant definitions: Variant rollout percentages must sum to 100.");
            return 1;
        }
    }
    return 0;
}

static int check_key(const char *key, kw_problem *p)
{
    for (const char *s = key; *s; s++)
        if (!kw_is_base62((unsigned char)*s) && *s != '-' && *s != '_') {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "key",
                           "Only letters, numbers, hyphens (\"-\") & underscores (\"_\") are allowed.");
            return 1;
        }
    return 0;
}

static void note_change(json_t *changes, const char *field, json_t *before, json_t *after)
{
    if (changes)
        json_array_append_new(changes, kw_audit_change("FeatureFlag", "changed", field, before, after));
    else {
        json_decref(before);
        json_decref(after);
    }
}

static int apply_flag_fields(const json_t *body, int creating, kw_flag *f, json_t *changes,
                             kw_problem *p)
{
    const char *key, *name;
    if (kw_v_object(body, p)) return 1;
    if (kw_v_string(body, "key", creating, FLAG_KEY_MAX_CHARS, 0, &key, p)) return 1;
    if (key && check_key(key, p)) return 1;
    if (kw_v_string(body, "name", 0, FLAG_NAME_MAX_CHARS, 1, &name, p)) return 1;
    json_t *filters = json_object_get(body, "filters");
    if (filters && check_filters(filters, p)) return 1;
    struct {
        const char *field;
        int *dst;
    } bools[] = {{"active", &f->active},
                 {"deleted", &f->deleted},
                 {"ensure_experience_continuity", &f->ensure_experience_continuity}};
    int values[3], present[3];
    for (int i = 0; i < 3; i++)
        if (kw_v_bool(body, bools[i].field, &present[i], &values[i], p)) return 1;

    char *filters_text = filters ? json_dumps(filters, JSON_COMPACT) : NULL;
    if (filters && !filters_text) return kw_storage_problem(p, KW_ERR_NOMEM);
    if (filters_text && strlen(filters_text) > FILTERS_MAX_BYTES) {
        free(filters_text);
        kw_problem_set(p, KW_P_VALIDATION, "max_length", "filters", "Filters are too large.");
        return 1;
    }
    if (key && strcmp(key, f->key) != 0) {
        note_change(changes, "key", json_string(f->key), json_string(key));
        snprintf(f->key, sizeof f->key, "%s", key);
    }
    if (name && strcmp(name, f->name) != 0) {
        note_change(changes, "name", json_string(f->name), json_string(name));
        snprintf(f->name, sizeof f->name, "%s", name);
    }
    if (filters_text) {
        if (!f->filters || strcmp(f->filters, filters_text) != 0)
            note_change(changes, "filters", f->filters ? json_loads(f->filters, 0, NULL) : json_null(),
                        json_deep_copy(filters));
        free(f->filters);
        f->filters = filters_text;
    } else if (!f->filters) {
        f->filters = strdup("{\"groups\":[]}");
        if (!f->filters) return kw_storage_problem(p, KW_ERR_NOMEM);
    }
    for (int i = 0; i < 3; i++) {
        if (!present[i] || *bools[i].dst == values[i]) continue;
        note_change(changes, bools[i].field, json_boolean(*bools[i].dst), json_boolean(values[i]));
        *bools[i].dst = values[i];
    }
    return 0;
}

static int parse_flag_id(const char *id, int64_t *out)
{
    if (!*id || strspn(id, "0123456789") != strlen(id) || strlen(id) > 18) return 1;
    *out = strtoll(id, NULL, 10);
    return 0;
}

int kw_flag_load(const kw_call *c, int64_t project_id, const char *id, kw_flag *out, kw_problem *p)
{
    int64_t flag_id;
    memset(out, 0, sizeof *out);
    int rc = parse_flag_id(id, &flag_id) ? KW_ERR_NOTFOUND
                                         : kw_store_flag_get(c->store, project_id, flag_id, out);
    if (!rc && out->deleted) {
        kw_flag_clear(out);
        rc = KW_ERR_NOTFOUND;
    }
    return kw_problem_from_store(p, rc);
}

static int finish_write(const kw_call *c, int rc, kw_flag *f, kw_problem *p)
{
    if (rc == KW_ERR_EXISTS) {
        kw_store_rollback(c->store);
        kw_problem_set(p, KW_P_VALIDATION, "unique", "key",
                       "There is already a feature flag with this key.");
        return 1;
    }
    (void)f;
    if (kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p)) return 1;
    /* After the commit: a request rebuilding between the two would read
     * the new rows anyway; one rebuilding before the commit is discarded
     * when the log names its project. */
    kw_flagcache_after_write(c->flags);
    return 0;
}

int kw_flag_create(const kw_call *c, int64_t project_id, const json_t *body, kw_flag *out,
                   kw_problem *p)
{
    memset(out, 0, sizeof *out);
    out->project_id = project_id;
    out->active = 1;
    out->created_by = c->actor->user_id;
    if (apply_flag_fields(body, 1, out, NULL, p)) {
        kw_flag_clear(out);
        return 1;
    }
    out->deleted = 0;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_flag_insert(c->store, out);
    if (!rc) {
        char item[32];
        snprintf(item, sizeof item, "%lld", (long long)out->id);
        rc = kw_audit_record(c, project_id, NULL, "created", "FeatureFlag", item, out->key, NULL);
    }
    if (finish_write(c, rc, out, p)) {
        kw_flag_clear(out);
        return 1;
    }
    return 0;
}

static int update_flag(const kw_call *c, kw_flag *f, json_t *changes, const char *activity,
                       kw_problem *p)
{
    int rc = kw_store_begin(c->store);
    if (rc) {
        json_decref(changes);
        return kw_storage_problem(p, rc);
    }
    rc = kw_store_flag_update(c->store, f);
    if (!rc) {
        char item[32];
        snprintf(item, sizeof item, "%lld", (long long)f->id);
        rc = kw_audit_record(c, f->project_id, NULL, activity, "FeatureFlag", item, f->key, changes);
    } else {
        json_decref(changes);
    }
    return finish_write(c, rc, f, p);
}

int kw_flag_update(const kw_call *c, int64_t project_id, const char *id, const json_t *body,
                   kw_flag *out, kw_problem *p)
{
    if (kw_flag_load(c, project_id, id, out, p)) return 1;
    json_t *changes = json_array();
    if (!changes || apply_flag_fields(body, 0, out, changes, p)) {
        json_decref(changes);
        kw_flag_clear(out);
        return changes ? 1 : kw_storage_problem(p, KW_ERR_NOMEM);
    }
    if (json_array_size(changes) == 0) {
        json_decref(changes);
        return 0;
    }
    if (update_flag(c, out, changes, out->deleted ? "deleted" : "updated", p)) {
        kw_flag_clear(out);
        return 1;
    }
    return 0;
}

int kw_flag_delete(const kw_call *c, int64_t project_id, const char *id, kw_problem *p)
{
    kw_flag f;
    if (kw_flag_load(c, project_id, id, &f, p)) return 1;
    f.deleted = 1;
    int rc = update_flag(c, &f, NULL, "deleted", p);
    kw_flag_clear(&f);
    return rc;
}
