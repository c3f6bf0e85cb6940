/* org.c — creating, renaming and deleting organizations and projects.
 *
 * A second project is how an installation separates environments: each
 * project has its own phc_ token, its own phs_ keys and flags, and a
 * personal key can be narrowed to it (scoped_teams), so a staging key is
 * refused on production.  Deleting is the dangerous part, and what it
 * does is stated here once: the store's cascades take the project's (or
 * every project's of the organization) secret keys, token, flags, events
 * and endpoints, and log each revoked key in the change log inside the
 * same transaction, so this process's verifier forgets them when the
 * transaction ends (kw_txn_end) and every other instance within its poll
 * (milliseconds on PostgreSQL with LISTEN).  Personal keys are people's
 * and are never deleted here; they lose the organization or project
 * because membership and project are gone, and ids are never reused.
 * The organization's webhooks hear of each phs_ key a project deletion
 * revokes (key.deleted, reason "project deleted"); an organization's
 * deletion takes its webhooks with it.
 *
 * Every change writes the activity log (kw_audit_org): an organization-
 * level entry and one in each remaining project of the organization. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/flagcache.h"
#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keyward/validate.h"
#include "keyward/webhook.h"
#include "store/txn.h"

#define ORG_NAME_MAX_CHARS 64
#define PROJECT_NAME_MAX_CHARS 200
#define MAX_PROJECTS 1024

/* The "name" field: a string without NUL, not blank, at most max_chars
 * characters and KW_NAME_MAX bytes.  *name NULL when absent (and not
 * required). */
static int read_name(const json_t *body, int required, size_t max_chars, const char **name,
                     kw_problem *p)
{
    return kw_v_object(body, p) ||
           kw_v_text(body, "name", required, max_chars, KW_NAME_MAX, 0, name, p);
}

struct project_ids {
    size_t n;
    int64_t ids[MAX_PROJECTS];
};

static int collect_id(void *ctx, const kw_project *p)
{
    struct project_ids *list = ctx;
    if (list->n == MAX_PROJECTS) return 1;
    list->ids[list->n++] = p->id;
    return 0;
}

static int org_projects(kw_store *s, const char *org_id, struct project_ids *out)
{
    out->n = 0;
    int rc = kw_store_org_projects(s, org_id, collect_id, out);
    return rc > 0 ? KW_OK : rc;
}

int kw_audit_org(const kw_call *c, const char *org_id, const char *activity, const char *scope,
                 const char *item_id, const char *name, json_t *changes, json_t *context)
{
    static _Thread_local struct project_ids list;
    int rc = org_projects(c->store, org_id, &list);
    for (size_t i = 0; !rc && i < list.n; i++)
        rc = kw_audit_record_context(c, list.ids[i], org_id, activity, scope, item_id, name,
                                     changes ? json_deep_copy(changes) : NULL,
                                     context ? json_deep_copy(context) : NULL);
    if (!rc)
        rc = kw_audit_record_context(c, 0, org_id, activity, scope, item_id, name, changes, context);
    else {
        json_decref(changes);
        json_decref(context);
    }
    return rc;
}

static json_t *name_change(const char *type, const char *before, const char *after)
{
    return json_pack("[o]", kw_audit_change(type, "changed", "name", json_string(before),
                                            json_string(after)));
}

static void project_item(int64_t id, char item[24])
{
    snprintf(item, 24, "%lld", (long long)id);
}

int kw_org_create(const kw_call *c, const json_t *body, kw_org *out, kw_problem *p)
{
    const char *name;
    memset(out, 0, sizeof *out);
    if (read_name(body, 1, ORG_NAME_MAX_CHARS, &name, p)) return 1;
    const kw_principal *a = c->actor;
    if (!a || (a->kind != KW_KEY_PERSONAL && !a->session)) {
        kw_problem_set(p, KW_P_PERMISSION, NULL, NULL, "Only a person can create an organization.");
        return 1;
    }
    /* The new organization would lie outside the key's reach. */
    if (!a->session && a->n_scoped_orgs >= 0) {
        kw_problem_set(p, KW_P_PERMISSION, NULL, "scoped_organizations",
                       "Not allowed: the result would reach further than the API key making this "
                       "request: it is limited to organizations (scoped_organizations).");
        return 1;
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_org_create(c->store, out);
    if (!rc) rc = kw_store_membership_set(c->store, a->user_id, out->id, KW_LEVEL_OWNER);
    if (!rc) rc = kw_audit_org(c, out->id, "created", "Organization", out->id, out->name, NULL, NULL);
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

int kw_org_update(const kw_call *c, const char *org_id, const json_t *body, kw_org *out,
                  kw_problem *p)
{
    const char *name;
    if (read_name(body, 0, ORG_NAME_MAX_CHARS, &name, p)) return 1;
    int rc = kw_store_org_get(c->store, org_id, out);
    if (rc) return kw_problem_from_store(p, rc);
    if (!name || strcmp(name, out->name) == 0) return 0;  /* nothing to change or log */
    rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_org_rename(c->store, org_id, name);
    if (!rc)
        rc = kw_audit_org(c, org_id, "updated", "Organization", org_id, name,
                          name_change("Organization", out->name, name), NULL);
    if (kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p)) return 1;
    snprintf(out->name, sizeof out->name, "%s", name);
    return 0;
}

int kw_org_delete(const kw_call *c, const char *org_id, kw_problem *p)
{
    kw_org org;
    int rc = kw_store_org_get(c->store, org_id, &org);
    if (rc) return kw_problem_from_store(p, rc);
    static _Thread_local struct project_ids gone;
    rc = org_projects(c->store, org_id, &gone);
    if (!rc) rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    json_t *ids = json_array();
    for (size_t i = 0; i < gone.n; i++) json_array_append_new(ids, json_integer(gone.ids[i]));
    rc = kw_store_org_delete(c->store, org_id);
    /* The organization's projects are gone with it: one entry, at
     * organization level, naming what was deleted and revoked. */
    if (!rc)
        rc = kw_audit_record_context(c, 0, org_id, "deleted", "Organization", org_id, org.name,
                                     NULL,
                                     json_pack("{s:o, s:s}", "projects_deleted", ids, "revoked",
                                               "project secret API keys and project tokens"));
    else
        json_decref(ids);
    if (kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p)) return 1;
    kw_flagcache_after_write(c->flags);
    return 0;
}

int kw_project_create(const kw_call *c, const char *org_id, const json_t *body, kw_project *out,
                      kw_problem *p)
{
    const char *name;
    memset(out, 0, sizeof *out);
    if (read_name(body, 0, PROJECT_NAME_MAX_CHARS, &name, p)) return 1;
    snprintf(out->name, sizeof out->name, "%s", name ? name : "Default project");
    snprintf(out->org_id, sizeof out->org_id, "%s", org_id);
    int rc = kw_key_generate(KW_KEY_PROJECT, out->api_token);
    if (!rc) rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_project_create(c->store, out);
    char item[24];
    project_item(out->id, item);
    if (!rc) rc = kw_audit_org(c, org_id, "created", "Project", item, out->name, NULL, NULL);
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

int kw_project_update(const kw_call *c, kw_project *project, const json_t *body, kw_problem *p)
{
    const char *name;
    if (read_name(body, 0, PROJECT_NAME_MAX_CHARS, &name, p)) return 1;
    if (!name || strcmp(name, project->name) == 0) return 0;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_project_rename(c->store, project->id, name);
    char item[24];
    project_item(project->id, item);
    if (!rc)
        rc = kw_audit_org(c, project->org_id, "updated", "Project", item, name,
                          name_change("Project", project->name, name), NULL);
    if (kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p)) return 1;
    snprintf(project->name, sizeof project->name, "%s", name);
    return 0;
}

/* The project's phs_ keys, read before the delete revokes them, so the
 * organization's webhooks hear of each. */
struct gone_key {
    char id[KW_ID_LEN + 1];
    char label[KW_LABEL_MAX + 1];
    char mask[KW_MASK_MAX];
    kw_time expires_at;
};
struct gone_keys {
    struct gone_key keys[KW_MAX_SECRET_KEYS];
    size_t n;
};

static int collect_key(void *ctx, const kw_psk *k)
{
    struct gone_keys *g = ctx;
    if (g->n == KW_MAX_SECRET_KEYS) return 0;
    struct gone_key *d = &g->keys[g->n++];
    snprintf(d->id, sizeof d->id, "%s", k->id);
    snprintf(d->label, sizeof d->label, "%s", k->label);
    snprintf(d->mask, sizeof d->mask, "%s", k->mask_value);
    d->expires_at = k->expires_at;
    return 0;
}

static int tell_webhooks(const kw_call *c, const kw_project *project, const struct gone_keys *g)
{
    json_t *context = json_pack("{s:s}", "reason", "project deleted");
    int rc = context ? KW_OK : KW_ERR_NOMEM;
    for (size_t i = 0; !rc && i < g->n; i++)
        rc = kw_webhook_key_event(c, project->org_id, "deleted",
                                  &(kw_webhook_key){g->keys[i].id, g->keys[i].label,
                                                    g->keys[i].mask, "project_secret", project->id, 0,
                                                    g->keys[i].expires_at},
                                  context);
    json_decref(context);
    return rc;
}

int kw_project_delete(const kw_call *c, const kw_project *project, kw_problem *p)
{
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    struct gone_keys *gone = calloc(1, sizeof *gone);
    rc = gone ? kw_store_psk_list(c->store, project->id, KW_MAX_SECRET_KEYS * 4, 0, collect_key, gone)
              : KW_ERR_NOMEM;
    if (!rc) rc = tell_webhooks(c, project, gone);
    free(gone);
    if (!rc) rc = kw_store_project_delete(c->store, project->id);
    char item[24];
    project_item(project->id, item);
    if (!rc)
        rc = kw_audit_org(c, project->org_id, "deleted", "Project", item, project->name, NULL,
                          json_pack("{s:s}", "revoked", "project secret API keys and project token"));
    if (kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p)) return 1;
    kw_flagcache_after_write(c->flags);
    return 0;
}
