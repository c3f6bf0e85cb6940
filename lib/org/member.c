/* member.c — an organization's members: changing a level, removing
 * someone.
 *
 * Three rules, each checked here once for the API and the CLI alike:
 * nobody acts on someone above their own level or gives a level above
 * their own (kw_narrow_check, as invitations do); an organization always
 * keeps an owner — the last owner can be neither demoted nor removed; and
 * removal is departure from that organization only: the member's
 * personal keys stop reaching it (kw_policy_check decides every request on
 * the membership: at once on this instance, within one poll on the others,
 * see kw_directory_membership_level), while project secret keys they created
 * belong to the projects and keep working.  The owner count is read after
 * locking the organization's row (kw_store_org_lock), so two concurrent
 * demotions cannot both see a second owner. */
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/narrow.h"
#include "keyward/service.h"
#include "keyward/validate.h"
#include "store/txn.h"

/* The body of a level change: {"level": 1 | 8 | 15}. */
static int read_level(const json_t *body, int *level, kw_problem *p)
{
    if (kw_v_object(body, p)) return 1;
    json_t *lv = json_object_get(body, "level");
    if (!lv) {
        kw_problem_set(p, KW_P_VALIDATION, "required", "level", "This field is required.");
        return 1;
    }
    json_int_t v = json_is_integer(lv) ? json_integer_value(lv) : -1;
    if (v != KW_LEVEL_MEMBER && v != KW_LEVEL_ADMIN && v != KW_LEVEL_OWNER) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid_choice", "level",
                       "Level must be 1 (member), 8 (admin) or 15 (owner).");
        return 1;
    }
    *level = (int)v;
    return 0;
}

/* Inside the transaction: locks the organization, loads the target and
 * checks the actor may act on someone at the target's level. */
static int load_target(const kw_call *c, const char *org_id, int actor_level, const char *user_uuid,
                       kw_member *target, kw_problem *p)
{
    int rc = kw_store_org_lock(c->store, org_id);
    if (!rc) rc = kw_store_member_by_uuid(c->store, org_id, user_uuid, target);
    if (rc) return kw_problem_from_store(p, rc);
    static _Thread_local kw_principal person;
    kw_narrow_person(&person, org_id);
    return kw_narrow_check(c->actor, actor_level, &person, target->level, KW_NARROW_ACCOUNT, p);
}

/* 1 with *p set when `target`, an owner, is the organization's last. */
static int last_owner(const kw_call *c, const char *org_id, const kw_member *target,
                      const char *what, kw_problem *p)
{
    if (target->level < KW_LEVEL_OWNER) return 0;
    int64_t owners = 0;
    int rc = kw_store_org_member_count(c->store, org_id, KW_LEVEL_OWNER, &owners);
    if (rc) return kw_storage_problem(p, rc);
    if (owners > 1) return 0;
    kw_problem_set(p, KW_P_VALIDATION, "last_owner", "level",
                   "An organization must keep an owner: the last owner cannot be %s.", what);
    return 1;
}

static int audit_member(const kw_call *c, const char *org_id, const char *activity,
                        const kw_member *m, json_t *changes)
{
    return kw_audit_org(c, org_id, activity, "OrganizationMembership", m->user.uuid, m->user.email,
                        changes, NULL);
}

int kw_member_update(const kw_call *c, const char *org_id, int actor_level, const char *user_uuid,
                     const json_t *body, kw_member *out, kw_problem *p)
{
    int level;
    if (read_level(body, &level, p)) return 1;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    if (load_target(c, org_id, actor_level, user_uuid, out, p)) goto refused;
    if (level == out->level) return kw_txn_end(c, KW_OK, KW_TXN_KEEPS_AUTH, p);
    /* The new level is what the actor hands out: never above their own. */
    static _Thread_local kw_principal person;
    kw_narrow_person(&person, org_id);
    if (kw_narrow_check(c->actor, actor_level, &person, level, KW_NARROW_INVITE, p)) goto refused;
    if (level < out->level && last_owner(c, org_id, out, "demoted", p)) goto refused;
    rc = kw_store_membership_update(c->store, out->user.id, org_id, level);
    if (!rc)
        rc = audit_member(c, org_id, "updated", out,
                          json_pack("[o]", kw_audit_change("OrganizationMembership", "changed", "level",
                                                           json_integer(out->level),
                                                           json_integer(level))));
    if (kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p)) return 1;
    out->level = level;
    return 0;
refused:
    kw_store_rollback(c->store);
    return 1;
}

int kw_member_remove(const kw_call *c, const char *org_id, int actor_level, const char *user_uuid,
                     kw_problem *p)
{
    kw_member target;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    if (load_target(c, org_id, actor_level, user_uuid, &target, p) ||
        last_owner(c, org_id, &target, "removed", p)) {
        kw_store_rollback(c->store);
        return 1;
    }
    rc = kw_store_membership_delete(c->store, target.user.id, org_id);
    if (!rc) rc = audit_member(c, org_id, "deleted", &target, NULL);
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}
