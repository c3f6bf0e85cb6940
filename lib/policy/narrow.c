/* narrow.c — the one decision "is this no broader than the caller?" (see
 * narrow.h).
 *
 * A credential that could mint, widen, roll or hand out something reaching
 * further than itself would make its own limits meaningless: a key that
 * expires in ten minutes could create one that never expires, a key
 * limited to one project could invite an owner of the whole organization.
 * So every dimension a credential has is compared here, in one place, for
 * every key-mutating and membership-mutating operation; the key and
 * membership code only describes its target and asks. */
#include "keyward/narrow.h"

#include <stdio.h>
#include <string.h>

#include "keyward/keyward.h"

#define PREFIX "Not allowed: the result would reach further than the API key making this request"

void kw_narrow_person(kw_principal *out, const char *org_id)
{
    kw_principal_clear(out);
    out->session = 1;
    out->scopes.wildcard = 1;
    out->n_scoped_teams = -1;
    out->n_scoped_orgs = -1;
    if (org_id) {
        out->n_scoped_orgs = 1;
        strncpy(out->scoped_orgs[0], org_id, KW_ID_LEN);
        out->scoped_orgs[0][KW_ID_LEN] = '\0';
    }
    out->expires_at = 0;
    out->rate_limit_per_minute = 0;
}

/* Sessions outrank personal keys, which outrank project secret keys
 * (bound to one project, read scopes only), which outrank the public
 * project token. */
static int kind_rank(const kw_principal *p)
{
    if (p->session) return 4;
    switch (p->kind) {
    case KW_KEY_PERSONAL: return 3;
    case KW_KEY_SECRET: return 2;
    case KW_KEY_PROJECT: return 1;
    default: return 0;
    }
}

static const char *kind_name(const kw_principal *p)
{
    static const char *const NAMES[] = {"no credential", "project token", "project secret API key",
                                        "personal API key", "session"};
    return NAMES[kind_rank(p)];
}

/* The first scope `inner` holds that `outer` does not, for the refusal. */
static void missing_scope(const kw_scopes *inner, const kw_scopes *outer, char *out, size_t size)
{
    if (inner->wildcard) {
        snprintf(out, size, "*");
        return;
    }
    for (int i = 0; i < kw_scope_object_count(); i++) {
        uint64_t bit = (uint64_t)1 << i;
        if ((inner->write & bit) && !(outer->write & bit)) {
            snprintf(out, size, "%s:write", kw_scope_object_name(i));
            return;
        }
        if ((inner->read & bit) && !(outer->read & bit)) {
            snprintf(out, size, "%s:read", kw_scope_object_name(i));
            return;
        }
    }
    snprintf(out, size, "?");
}

static int refuse(kw_problem *p, const char *attr, const char *why)
{
    kw_problem_set(p, KW_P_PERMISSION, NULL, attr, PREFIX ": %s.", why);
    return 1;
}

/* Project narrowing: a narrowed caller admits only targets narrowed to
 * projects it holds.  A project-bound target (a project secret key) is
 * narrowed to its project. */
static int teams_broader(const kw_principal *actor, const kw_principal *target)
{
    if (actor->n_scoped_teams < 0) return 0;
    if (target->n_scoped_teams < 0) return 1;
    for (int i = 0; i < target->n_scoped_teams; i++)
        if (!kw_principal_team_allowed(actor, target->scoped_teams[i])) return 1;
    return 0;
}

static int orgs_broader(const kw_principal *actor, const kw_principal *target)
{
    if (actor->n_scoped_orgs < 0) return 0;
    if (target->n_scoped_orgs < 0) return 1;
    for (int i = 0; i < target->n_scoped_orgs; i++)
        if (!kw_principal_org_allowed(actor, target->scoped_orgs[i])) return 1;
    return 0;
}

int kw_narrow_check(const kw_principal *actor, int actor_level, const kw_principal *target,
                    int target_level, kw_narrow_what what, kw_problem *p)
{
    if (what != KW_NARROW_KEY && target_level > actor_level) {
        kw_problem_set(p, KW_P_PERMISSION, NULL, "level",
                       what == KW_NARROW_INVITE
                           ? "You can only invite people at or below your own level."
                           : "You cannot change the account of someone above your own level.");
        return 1;
    }
    /* A person signed in acts with their own full authority. */
    if (actor->session) return 0;
    char text[160];
    if (what == KW_NARROW_KEY && kind_rank(target) > kind_rank(actor)) {
        snprintf(text, sizeof text, "a %s can not create or manage a %s", kind_name(actor),
                 kind_name(target));
        return refuse(p, NULL, text);
    }
    if (teams_broader(actor, target))
        return refuse(p, "scoped_teams", "it reaches projects outside this key's scoped_teams");
    if (orgs_broader(actor, target))
        return refuse(p, "scoped_organizations",
                      "it reaches organizations outside this key's scoped_organizations");
    if (what == KW_NARROW_ACCOUNT) return 0;
    if (!kw_scopes_within(&target->scopes, &actor->scopes)) {
        char scope[64];
        missing_scope(&target->scopes, &actor->scopes, scope, sizeof scope);
        snprintf(text, sizeof text, "scope '%s' is not held by this key", scope);
        return refuse(p, "scopes", text);
    }
    if (actor->expires_at && !target->expires_at)
        return refuse(p, "expires_at", "it would never expire, while this key expires");
    if (actor->expires_at && target->expires_at > actor->expires_at)
        return refuse(p, "expires_at", "it would expire later than this key");
    if (actor->rate_limit_per_minute && !target->rate_limit_per_minute)
        return refuse(p, "rate_limit_per_minute",
                      "it would have no rate limit, while this key is limited");
    if (actor->rate_limit_per_minute && target->rate_limit_per_minute > actor->rate_limit_per_minute)
        return refuse(p, "rate_limit_per_minute", "its rate limit would be looser than this key's");
    return 0;
}
