/* audit.c — writes the activity log (PostHog's ActivityLog shape).
 *
 * Entries carry who, what, when and from where, and the changed fields; a
 * key's value or hash is never among them (callers pass labels and scopes
 * only).  A personal key belongs to a user, not a project, so its events
 * are written to every project the key can reach: that is where PostHog's
 * activity log readers look for them; and to the webhooks of every
 * organization it reaches, once each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keyward/webhook.h"

json_t *kw_audit_change(const char *type, const char *action, const char *field, json_t *before,
                        json_t *after)
{
    return json_pack("{s:s, s:s, s:s?, s:o?, s:o?}", "type", type, "action", action, "field",
                     field, "before", before ? before : json_null(), "after",
                     after ? after : json_null());
}

int kw_audit_record(const kw_call *c, int64_t project_id, const char *org_id, const char *activity,
                    const char *scope, const char *item_id, const char *name, json_t *changes)
{
    return kw_audit_record_context(c, project_id, org_id, activity, scope, item_id, name, changes,
                                   NULL);
}

int kw_audit_record_context(const kw_call *c, int64_t project_id, const char *org_id,
                            const char *activity, const char *scope, const char *item_id,
                            const char *name, json_t *changes, json_t *context)
{
    json_t *detail = json_pack("{s:s?, s:o, s:o, s:n, s:n}", "name", name, "changes",
                               changes ? changes : json_array(), "context",
                               context ? context : json_null(), "short_id", "type");
    if (!detail) return KW_ERR_NOMEM;
    kw_activity entry;
    memset(&entry, 0, sizeof entry);
    entry.project_id = project_id;
    if (org_id) snprintf(entry.org_id, sizeof entry.org_id, "%s", org_id);
    entry.user_id = c->actor ? c->actor->user_id : 0;
    snprintf(entry.activity, sizeof entry.activity, "%s", activity);
    snprintf(entry.scope, sizeof entry.scope, "%s", scope);
    if (item_id) snprintf(entry.item_id, sizeof entry.item_id, "%s", item_id);
    if (c->ip) snprintf(entry.ip_address, sizeof entry.ip_address, "%s", c->ip);
    entry.detail = json_dumps(detail, JSON_COMPACT);
    json_decref(detail);
    if (!entry.detail) return KW_ERR_NOMEM;
    int rc = kw_store_activity_insert(c->store, &entry);
    kw_activity_clear(&entry);
    return rc;
}

struct reach {
    kw_principal narrowing;
    int64_t *ids;
    char (*orgs)[KW_ID_LEN + 1];
    size_t n, cap;
};

static int collect_reachable(void *ctx, const kw_project *p)
{
    struct reach *r = ctx;
    if (!kw_principal_team_allowed(&r->narrowing, p->id) ||
        !kw_principal_org_allowed(&r->narrowing, p->org_id))
        return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        int64_t *ids = realloc(r->ids, cap * sizeof *ids);
        if (ids) r->ids = ids;
        char(*orgs)[KW_ID_LEN + 1] = realloc(r->orgs, cap * sizeof *orgs);
        if (orgs) r->orgs = orgs;
        if (!ids || !orgs) return KW_ERR_NOMEM;
        r->cap = cap;
    }
    r->ids[r->n] = p->id;
    strcpy(r->orgs[r->n], p->org_id);
    r->n++;
    return 0;
}

int kw_audit_personal_key(const kw_call *c, const kw_pkey *key, const char *activity,
                          json_t *changes)
{
    return kw_audit_personal_key_context(c, key, activity, changes, NULL);
}

/* The projects (and their organizations) a personal key reaches. */
static int reach_of(kw_store *store, const kw_pkey *key, struct reach *r)
{
    memset(r, 0, sizeof *r);
    kw_principal_load_scopes(&r->narrowing, NULL, key->scoped_teams, key->scoped_orgs);
    return kw_store_user_projects(store, key->user_id, collect_reachable, r);
}

/* Webhooks: once per organization the key reaches (quadratic in its
 * projects, which are few). */
static int tell_webhooks(const kw_call *c, const kw_pkey *key, const struct reach *r,
                         const char *activity, const json_t *context)
{
    int rc = KW_OK;
    for (size_t i = 0; !rc && i < r->n; i++) {
        size_t j = 0;
        while (j < i && strcmp(r->orgs[j], r->orgs[i]) != 0) j++;
        if (j < i) continue;
        rc = kw_webhook_key_event(c, r->orgs[i], activity,
                                  &(kw_webhook_key){key->id, key->label, key->mask_value, "personal",
                                                    0, key->user_id, key->expires_at},
                                  context);
    }
    return rc;
}

int kw_webhook_personal_key_event(const kw_call *c, const kw_pkey *key, const char *activity,
                                  const json_t *context)
{
    struct reach r;
    int rc = reach_of(c->store, key, &r);
    if (!rc) rc = tell_webhooks(c, key, &r, activity, context);
    free(r.ids);
    free(r.orgs);
    return rc;
}

int kw_audit_personal_key_context(const kw_call *c, const kw_pkey *key, const char *activity,
                                  json_t *changes, json_t *context)
{
    struct reach r;
    int rc = reach_of(c->store, key, &r);
    for (size_t i = 0; !rc && i < r.n; i++)
        rc = kw_audit_record_context(c, r.ids[i], r.orgs[i], activity, "PersonalAPIKey", key->id,
                                     key->label, changes ? json_deep_copy(changes) : NULL,
                                     context ? json_deep_copy(context) : NULL);
    if (!rc) rc = tell_webhooks(c, key, &r, activity, context);
    json_decref(changes);
    json_decref(context);
    free(r.ids);
    free(r.orgs);
    return rc;
}
