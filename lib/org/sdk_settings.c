/* sdk_settings.c — a project's browser SDK settings: what its remote
 * config tells posthog-js to do (autocapture, network timing, heatmaps).
 *
 * One table names each setting once — its field in PATCH
 * /api/projects/:id/ and in the project's JSON (PostHog's team field
 * names) and where it lives in kw_project_settings — so validation, the
 * JSON, and the activity entry's changes are all driven by it.  The caller
 * (the policy) has checked that the actor may administer the project. */
#include <stddef.h>
#include <stdio.h>

#include "keyward/flagcache.h"
#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keyward/validate.h"
#include "store/txn.h"

static const struct {
    const char *name;
    size_t offset;
} SETTINGS[] = {
    {"autocapture_opt_out", offsetof(kw_project_settings, autocapture_opt_out)},
    {"capture_performance_opt_in", offsetof(kw_project_settings, capture_performance_opt_in)},
    {"heatmaps_opt_in", offsetof(kw_project_settings, heatmaps_opt_in)},
};
#define N_SETTINGS (sizeof SETTINGS / sizeof SETTINGS[0])

static int *field(kw_project_settings *s, size_t i) { return (int *)((char *)s + SETTINGS[i].offset); }

static int value(const kw_project_settings *s, size_t i)
{
    return *(const int *)((const char *)s + SETTINGS[i].offset);
}

void kw_project_settings_json(const kw_project_settings *s, json_t *obj)
{
    for (size_t i = 0; i < N_SETTINGS; i++)
        json_object_set_new(obj, SETTINGS[i].name, json_boolean(value(s, i)));
}

int kw_project_settings_parse(const json_t *body, kw_project_settings *change, kw_problem *p)
{
    if (kw_v_object(body, p)) return 1;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        int present, want;
        if (kw_v_bool(body, SETTINGS[i].name, &present, &want, p)) return 1;
        *field(change, i) = present ? want : -1;
    }
    return 0;
}

int kw_project_settings_apply(const kw_call *c, const kw_project *project,
                              const kw_project_settings *change, kw_project_settings *out,
                              kw_problem *p)
{
    int any = 0;
    for (size_t i = 0; i < N_SETTINGS; i++) any |= value(change, i) >= 0;
    if (!any) {  /* other fields only (DRF ignores unknown ones): nothing to write */
        int rc = kw_store_project_settings_get(c->store, project->id, out);
        return rc ? kw_storage_problem(p, rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc) : 0;
    }
    /* The write names only the settings given (the others are kept by
     * the statement itself), so two admins changing two different
     * settings at once both keep their change; the activity entry's
     * "before" is read in the same transaction. */
    kw_project_settings before;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_project_settings_get(c->store, project->id, &before);
    if (!rc) rc = kw_store_project_settings_set(c->store, project->id, change);
    if (!rc) rc = kw_store_project_settings_get(c->store, project->id, out);
    if (!rc) {
        json_t *changes = json_array();
        for (size_t i = 0; i < N_SETTINGS; i++)
            if (value(&before, i) != value(out, i))
                json_array_append_new(changes,
                                      kw_audit_change("Project", "changed", SETTINGS[i].name,
                                                      json_boolean(value(&before, i)),
                                                      json_boolean(value(out, i))));
        char item[32];
        snprintf(item, sizeof item, "%lld", (long long)project->id);
        if (json_array_size(changes))
            rc = kw_audit_record(c, project->id, project->org_id, "updated", "Project", item,
                                 project->name, changes);
        else
            json_decref(changes);
    }
    if (rc == KW_ERR_NOTFOUND) rc = KW_ERR_DB;  /* the policy found the project */
    if (kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p)) return 1;
    /* The remote config is served from the project's cached flag set: the
     * write was logged as the project's, so this forgets just that set. */
    kw_flagcache_after_write(c->flags);
    return 0;
}

int kw_project_settings_update(const kw_call *c, const kw_project *project, const json_t *body,
                               kw_project_settings *out, kw_problem *p)
{
    kw_project_settings change;
    return kw_project_settings_parse(body, &change, p) ||
           kw_project_settings_apply(c, project, &change, out, p);
}
