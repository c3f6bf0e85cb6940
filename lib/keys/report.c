/* report.c — the key report (see report.h).
 *
 * Everything is computed from stored rows and an explicit `now`, so the
 * flags are tested with a pinned clock at their edges (89/90/91 days).
 * The boundaries are strict: a key is "not rotated" once its age exceeds
 * rotation_days, "unused" once its last use is older than unused_days, and
 * "expiring soon" while it expires in less than expiring_days. */
#include "keyward/report.h"

#include <string.h>

#include "keyward/auth.h"
#include "keyward/keyward.h"
#include "keyward/usage.h"

void kw_report_opts_init(kw_report_opts *o)
{
    o->now = kw_now();
    o->rotation_days = 90;
    o->unused_days = 30;
    o->expiring_days = 14;
}

void kw_report_flags_of(kw_time created_at, kw_time last_rolled_at, kw_time last_used_at,
                        kw_time expires_at, const kw_report_opts *o, kw_report_flags *f)
{
    kw_time since = last_rolled_at > created_at ? last_rolled_at : created_at;
    f->not_rotated = o->now - since > (int64_t)o->rotation_days * KW_REPORT_DAY_US;
    f->unused = !last_used_at || o->now - last_used_at > (int64_t)o->unused_days * KW_REPORT_DAY_US;
    f->expired = expires_at && o->now >= expires_at;
    f->expiring_soon = expires_at && !f->expired &&
                       expires_at - o->now < (int64_t)o->expiring_days * KW_REPORT_DAY_US;
}

static kw_scopes parse_set(const char *json)
{
    kw_principal p;
    kw_principal_load_scopes(&p, json, NULL, NULL);
    return p.scopes;
}

json_t *kw_report_suggest(const char *granted_json, const char *used_json, const char **action)
{
    kw_scopes granted = parse_set(granted_json), used = parse_set(used_json);
    /* used: "x:write" sets read and write, "x:read" read only.  Keep what
     * is still granted (a key narrowed since it was used is not widened). */
    kw_scopes least = {0, 0, 0};
    for (int i = 0; i < kw_scope_object_count(); i++) {
        uint64_t bit = (uint64_t)1 << i;
        if ((used.write & bit) && kw_scopes_allow(&granted, i, KW_SCOPE_WRITE))
            least.write |= bit;
        else if ((used.read & bit) && kw_scopes_allow(&granted, i, KW_SCOPE_READ))
            least.read |= bit;
    }
    char text[KW_JSON_LIST_MAX];
    json_t *list = kw_usage_json(&least, text, sizeof text) ? NULL : json_loads(text, 0, NULL);
    if (!list) list = json_array();
    kw_scopes as_grant = {least.read | least.write, least.write, 0};
    if (json_array_size(list) == 0)
        *action = "revoke";
    else if (!kw_scopes_within(&granted, &as_grant))
        *action = "narrow";
    else
        *action = "keep";
    return list;
}

static json_t *list_or_empty(const char *text)
{
    json_t *v = text && text[0] ? json_loads(text, 0, NULL) : NULL;
    return v ? v : json_array();
}

static json_t *time_or_null(kw_time t)
{
    if (!t) return json_null();
    char text[KW_TIME_TEXT];
    kw_time_format(t, text);
    return json_string(text);
}

struct entry_src {
    const char *kind, *id, *label, *mask, *scopes, *scopes_used;
    kw_time created_at, last_rolled_at, last_used_at, expires_at;
};

static json_t *entry(const struct entry_src *e, const kw_report_opts *o)
{
    kw_report_flags f;
    kw_report_flags_of(e->created_at, e->last_rolled_at, e->last_used_at, e->expires_at, o, &f);
    const char *action;
    json_t *least = kw_report_suggest(e->scopes, e->scopes_used, &action);
    json_t *obj = json_object();
    json_object_set_new(obj, "id", json_string(e->id));
    json_object_set_new(obj, "label", json_string(e->label));
    json_object_set_new(obj, "kind", json_string(e->kind));
    json_object_set_new(obj, "mask_value", json_string(e->mask));
    json_object_set_new(obj, "created_at", time_or_null(e->created_at));
    json_object_set_new(obj, "last_rolled_at", time_or_null(e->last_rolled_at));
    json_object_set_new(obj, "last_used_at", time_or_null(e->last_used_at));
    json_object_set_new(obj, "expires_at", time_or_null(e->expires_at));
    json_object_set_new(obj, "flags", json_pack("{s:b, s:b, s:b, s:b}", "not_rotated", f.not_rotated,
                                                "unused", f.unused, "expiring_soon",
                                                f.expiring_soon, "expired", f.expired));
    json_object_set_new(obj, "scopes", list_or_empty(e->scopes));
    json_object_set_new(obj, "scopes_used", list_or_empty(e->scopes_used));
    json_object_set_new(obj, "suggested_scopes", least);
    json_object_set_new(obj, "suggestion", json_string(action));
    return obj;
}

json_t *kw_report_pkey(const kw_pkey *k, const kw_report_opts *o)
{
    struct entry_src e = {"personal", k->id, k->label, k->mask_value, k->scopes, k->scopes_used,
                          k->created_at, k->last_rolled_at, k->last_used_at, k->expires_at};
    json_t *obj = entry(&e, o);
    json_object_set_new(obj, "user_id", json_integer(k->user_id));
    return obj;
}

json_t *kw_report_psk(const kw_psk *k, const kw_report_opts *o)
{
    struct entry_src e = {"project_secret", k->id, k->label, k->mask_value, k->scopes,
                          k->scopes_used, k->created_at, k->last_rolled_at, k->last_used_at,
                          k->expires_at};
    json_t *obj = entry(&e, o);
    json_object_set_new(obj, "project_id", json_integer(k->project_id));
    return obj;
}

struct collect {
    const kw_project *project;
    const kw_report_opts *o;
    json_t *results;
};

static int add_pkey(void *ctx, const kw_pkey *k)
{
    struct collect *c = ctx;
    if (c->project) {
        kw_principal reach;
        kw_principal_load_scopes(&reach, k->scopes, k->scoped_teams, k->scoped_orgs);
        if (!kw_principal_team_allowed(&reach, c->project->id) ||
            !kw_principal_org_allowed(&reach, c->project->org_id))
            return 0;
    }
    json_array_append_new(c->results, kw_report_pkey(k, c->o));
    return 0;
}

static int add_psk(void *ctx, const kw_psk *k)
{
    struct collect *c = ctx;
    json_array_append_new(c->results, kw_report_psk(k, c->o));
    return 0;
}

int kw_report_user_keys(kw_store *store, int64_t user_id, const kw_project *project,
                        const kw_report_opts *o, json_t *results)
{
    struct collect c = {project, o, results};
    return kw_store_pkey_list(store, user_id, add_pkey, &c);
}

int kw_report_project_keys(kw_store *store, const kw_project *project, const kw_report_opts *o,
                           json_t *results)
{
    struct collect c = {project, o, results};
    /* The per-project limit is KW_MAX_SECRET_KEYS, so one page holds all. */
    return kw_store_psk_list(store, project->id, KW_MAX_SECRET_KEYS * 4, 0, add_psk, &c);
}

json_t *kw_report_wrap(json_t *results, const kw_report_opts *o)
{
    return json_pack("{s:o, s:i, s:i, s:i, s:I, s:o}", "generated_at", time_or_null(o->now),
                     "rotation_days", o->rotation_days, "unused_days", o->unused_days,
                     "expiring_days", o->expiring_days, "count", (json_int_t)json_array_size(results),
                     "results", results);
}
