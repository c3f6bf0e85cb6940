/* narrow.h — "never broader than the caller", decided in one place.
 *
 * Whatever a credential creates, changes, rolls, deletes or hands out by
 * invitation must not reach further than the credential itself: not more
 * scopes, not more projects or organizations, not a later (or no) expiry
 * when the caller expires, not a looser (or no) rate limit when the caller
 * is limited, not a higher membership level, not a stronger key kind.
 * Every key-mutating and membership-mutating operation asks
 * kw_narrow_check; nothing else decides it. */
#ifndef KEYWARD_NARROW_H
#define KEYWARD_NARROW_H

#include "keyward/auth.h"
#include "keyward/problem.h"

/* What the operation leaves behind or acts on. */
typedef enum kw_narrow_what {
    /* A key (personal or project secret): every dimension, and its kind
     * may be no stronger than the caller's. */
    KW_NARROW_KEY,
    /* An invitation: whoever holds the link becomes a person with a
     * session at `target_level` in one organization — all scopes, no
     * expiry, no rate limit (build it with kw_narrow_person).  Every
     * dimension but kind (a membership is not a key). */
    KW_NARROW_INVITE,
    /* A person's account state (active or not) as seen from one of their
     * organizations: the caller gains nothing, so only reach (projects,
     * organizations) and level count. */
    KW_NARROW_ACCOUNT
} kw_narrow_what;

/* Describes a person's authority in `org_id` (NULL: everywhere) as a
 * principal, for KW_NARROW_INVITE / KW_NARROW_ACCOUNT targets. */
void kw_narrow_person(kw_principal *out, const char *org_id);

/* 0 when `target` is no broader than `actor` in every dimension `what`
 * covers; else 1 with a 403 in *p naming the first broader dimension
 * (attr = the field).  A session (a person signed in) is that person's
 * full authority: only the level is compared.  Levels count for invites
 * and accounts (target_level <= actor_level); keys pass 0. */
int kw_narrow_check(const kw_principal *actor, int actor_level, const kw_principal *target,
                    int target_level, kw_narrow_what what, kw_problem *p);

#endif
