/* bootstrap.c — the way into a fresh install, and project token resets.
 *
 * `keyward init` creates the first user (owner of the first organization),
 * the first project with its phc_ token, and one personal key with scope
 * "*".  It refuses once any user exists, so it cannot be used to mint a
 * second all-powerful key on a running install. */
#include <stdio.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/service.h"
#include "store/txn.h"

int kw_bootstrap(kw_store *store, const char *email, const char *org_name, const char *project_name,
                 kw_user *user, kw_project *project, char value[KW_KEY_LEN + 1], kw_problem *p)
{
    int rc = kw_store_begin(store);
    if (rc) goto fail;
    int64_t users = 0;
    rc = kw_store_user_count(store, &users);
    if (rc) goto fail;
    if (users > 0) {
        kw_store_rollback(store);
        kw_problem_set(p, KW_P_VALIDATION, "already_initialized", NULL,
                       "This database is already initialized; use an existing personal API key.");
        return 1;
    }
    memset(user, 0, sizeof *user);
    snprintf(user->email, sizeof user->email, "%s", email);
    user->is_active = 1;
    kw_org org;
    memset(&org, 0, sizeof org);
    snprintf(org.name, sizeof org.name, "%s", org_name);
    memset(project, 0, sizeof *project);
    snprintf(project->name, sizeof project->name, "%s", project_name);
    if ((rc = kw_store_user_create(store, user)) || (rc = kw_store_org_create(store, &org)) ||
        (rc = kw_store_membership_set(store, user->id, org.id, KW_LEVEL_OWNER)))
        goto fail;
    strcpy(project->org_id, org.id);
    if ((rc = kw_key_generate(KW_KEY_PROJECT, project->api_token)) ||
        (rc = kw_store_project_create(store, project)))
        goto fail;

    kw_principal owner;
    memset(&owner, 0, sizeof owner);
    owner.session = 1;
    owner.user_id = user->id;
    owner.scopes.wildcard = 1;
    owner.n_scoped_teams = owner.n_scoped_orgs = -1;
    kw_call call = {.store = store, .actor = &owner};
    static _Thread_local kw_pkey key;
    json_t *body = json_pack("{s:s, s:[s]}", "label", "keyward init", "scopes", "*");
    if (!body) {
        rc = KW_ERR_NOMEM;
        goto fail;
    }
    /* kw_pkey_create opens its own transaction; SQLite and PostgreSQL both
     * refuse a nested BEGIN, so commit the tenancy first.  A failure after
     * this point leaves a user without a key, which `init` reports. */
    rc = kw_store_commit(store);
    if (rc) goto fail;
    int refused = kw_pkey_create(&call, body, &key, value, p);
    json_decref(body);
    return refused;
fail:
    kw_store_rollback(store);
    kw_problem_set(p, KW_P_SERVER, NULL, NULL, "Could not initialize the database: %s",
                   kw_strerror(rc));
    return 1;
}

int kw_project_reset_token(const kw_call *c, kw_project *project, kw_problem *p)
{
    char token[KW_KEY_LEN + 1];
    int rc = kw_key_generate(KW_KEY_PROJECT, token);
    if (!rc) rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_project_set_token(c->store, project->id, token);
    if (!rc) {
        char item[32];
        snprintf(item, sizeof item, "%lld", (long long)project->id);
        json_t *changes = json_pack("[o]", kw_audit_change("Project", "changed", "api_token",
                                                           json_null(), json_null()));
        rc = kw_audit_record(c, project->id, project->org_id, "updated", "Project", item,
                             project->name, changes);
    }
    if (kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p)) return 1;
    strcpy(project->api_token, token);
    return 0;
}
