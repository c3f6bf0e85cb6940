/* user.c — departure: deactivating (and reactivating) a user.
 *
 * When someone leaves, their personal keys must stop working at once,
 * while the project secret keys they created keep the company's servers
 * running (those belong to the project).  Verification already refuses a
 * personal key whose user is inactive, so deactivation is one UPDATE; the
 * users trigger logs it as a change of the user, and every verifier
 * (this process's when the transaction commits, others' within their poll
 * interval) forgets that user's cached keys — and only those.
 *
 * Who may do it: someone who administers every organization the target
 * belongs to (level >= 8 in each, and no lower than the target's there, so
 * an admin cannot deactivate an owner), never on themself (so the last
 * admin cannot lock the organization out by accident).  is_active is
 * instance-wide, as in PostHog: deactivation locks the person out of all
 * their organizations, so an admin of only one of them must not be able to
 * do it.  A key narrowed to projects never gets here (the route is an
 * organization-level one: kw_policy_check), and a key narrowed to
 * organizations must reach all of the target's (kw_narrow_check). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/narrow.h"
#include "keyward/service.h"
#include "store/txn.h"
#include "org/project_refs.h"

#define MAX_ORGS 256

struct org_levels {
    size_t n;
    int more;  /* the user belongs to more than MAX_ORGS: not all were read */
    char ids[MAX_ORGS][KW_ID_LEN + 1];
    int levels[MAX_ORGS];
};

static int collect_org(void *ctx, const kw_org *org, int level)
{
    struct org_levels *o = ctx;
    if (o->n == MAX_ORGS) {
        o->more = 1;
        return 1;
    }
    strcpy(o->ids[o->n], org->id);
    o->levels[o->n++] = level;
    return 0;
}

/* 0 when the actor may change the target; otherwise 1 with *p set.
 * is_active counts everywhere the target belongs, so the actor needs an
 * admin's authority, at least the target's level, in every one of the
 * target's organizations: an admin of one organization must not lock the
 * person out of another. */
static int check_actor(const kw_call *c, const kw_user *target, const struct org_levels *orgs,
                       int active, kw_problem *p)
{
    const kw_principal *a = c->actor;
    if (a->user_id == target->id) {
        if (active) return 0;  /* already active: nothing to change */
        kw_problem_set(p, KW_P_PERMISSION, NULL, NULL, "You cannot deactivate yourself.");
        return 1;
    }
    int levels[MAX_ORGS], shared = 0;
    for (size_t i = 0; i < orgs->n; i++) {
        int rc = kw_store_membership_level(c->store, a->user_id, orgs->ids[i], &levels[i]);
        if (rc == KW_ERR_NOTFOUND) {
            levels[i] = -1;
            continue;
        }
        if (rc) return kw_storage_problem(p, rc);
        shared = 1;
    }
    /* Users of other organizations are not confirmed to exist. */
    if (!shared) return kw_problem_from_store(p, KW_ERR_NOTFOUND);
    static _Thread_local kw_principal account;
    for (size_t i = 0; i < orgs->n; i++) {
        if (levels[i] < 0) {
            kw_problem_set(p, KW_P_PERMISSION, NULL, NULL,
                           "This user also belongs to an organization you are not an admin of; "
                           "only someone who administers every organization of a user can "
                           "change their account.");
            return 1;
        }
        if (levels[i] < KW_LEVEL_ADMIN) {
            kw_problem_set(p, KW_P_PERMISSION, NULL, NULL,
                           "You don't have sufficient permissions in the organization.");
            return 1;
        }
        kw_narrow_person(&account, orgs->ids[i]);
        if (kw_narrow_check(a, levels[i], &account, orgs->levels[i], KW_NARROW_ACCOUNT, p)) return 1;
    }
    return 0;
}

int kw_user_set_active(const kw_call *c, int64_t user_id, int active, kw_user *out, kw_problem *p)
{
    int rc = kw_store_user_get(c->store, user_id, out);
    if (rc) return kw_problem_from_store(p, rc);
    struct org_levels *orgs = calloc(1, sizeof *orgs);
    if (!orgs) return kw_storage_problem(p, KW_ERR_NOMEM);
    rc = kw_store_user_orgs(c->store, user_id, collect_org, orgs);
    if (rc < 0) {
        free(orgs);
        return kw_storage_problem(p, rc);
    }
    /* The actor's authority is checked in every organization of the
     * target, so a list that could not be read whole fails closed. */
    if (c->actor && orgs->more) {
        free(orgs);
        kw_problem_set(p, KW_P_VALIDATION, "invalid_input", NULL,
                       "This user belongs to more than %d organizations; change them with "
                       "the keyward command on the server.", MAX_ORGS);
        return 1;
    }
    if (c->actor && check_actor(c, out, orgs, active, p)) {
        free(orgs);
        return 1;
    }
    free(orgs);
    active = active ? 1 : 0;
    if (out->is_active == active) return 0;  /* nothing to change or log */

    /* Projects of the target's organizations: where the entry is written. */
    kw_project_refs projects = {0};
    rc = kw_store_user_projects(c->store, user_id, kw_project_refs_add, &projects);
    if (!rc) rc = kw_store_begin(c->store);
    if (rc) {
        free(projects.at);
        return kw_storage_problem(p, rc < 0 ? rc : KW_ERR_NOMEM);
    }
    rc = kw_store_user_set_active(c->store, user_id, active);
    /* Deactivation ends the user's sessions, as a new password does: they
     * are refused while the user is inactive, but kept they would all work
     * again on reactivation, a stolen cookie included. */
    if (!rc && !active) rc = kw_store_session_delete_user(c->store, user_id);
    char item_id[24];
    snprintf(item_id, sizeof item_id, "%lld", (long long)user_id);
    for (size_t i = 0; !rc && i < projects.n; i++)
        rc = kw_audit_record(c, projects.at[i].id, projects.at[i].org,
                             active ? "activated" : "deactivated", "User", item_id, out->email,
                             json_pack("[o]", kw_audit_change("User", "changed", "is_active",
                                                              json_boolean(!active),
                                                              json_boolean(active))));
    free(projects.at);
    if (kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p)) return 1;
    out->is_active = active;
    return 0;
}
