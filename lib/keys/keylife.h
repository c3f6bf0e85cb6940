/* keylife.h — the lifecycle fields both key kinds share (internal).
 *
 * expires_at and rate_limit_per_minute are validated and applied the same
 * way for personal keys (pkey.c) and project secret keys (psk.c), with the
 * same texts and the same activity-log changes, so the rule lives here once. */
#ifndef KW_KEYLIFE_H
#define KW_KEYLIFE_H

#include <jansson.h>
#include <stdint.h>

#include "keyward/problem.h"
#include "keyward/service.h"

#define KW_RATE_LIMIT_MAX 1000000

enum kw_life_mode {
    KW_LIFE_CREATE,  /* both fields; a past expires_at is refused */
    KW_LIFE_UPDATE,  /* both fields; a past expires_at is allowed: it expires the key now */
    KW_LIFE_ROLL     /* expires_at only (absent = keep); a past one is refused */
};

/* Reads the fields present in `body` into *expires_at / *rate_limit;
 * appends a change per modified field to `changes` (may be NULL) under the
 * audit type `audit_type`.  0, or 1 with *p filled. */
int kw_life_apply(const json_t *body, enum kw_life_mode mode, const char *audit_type,
                  int64_t *expires_at, int32_t *rate_limit, json_t *changes, kw_problem *p);

/* Roll with a grace period: reads the optional
 * expire_previous_in_seconds of a roll's `body` (may be NULL) into
 * *seconds (0 when absent: the previous value stops at once) and, when the
 * field was given, sets *context to {"expire_previous_in_seconds": N} for
 * the "rolled" activity entry (else NULL; the caller owns it).  0, or 1
 * with *p filled (DRF's texts, attr expire_previous_in_seconds). */
#define KW_ROLL_GRACE_MAX_SECONDS (7 * 24 * 3600)
int kw_life_roll_grace(const json_t *body, int64_t *seconds, json_t **context, kw_problem *p);
/* In a roll's transaction: replaces the key's previous values by
 * `previous` (its hash before the roll) for `seconds` from `now`, or just
 * removes them when seconds is 0.  A legacy pbkdf2 hash is not kept (the
 * verifier probes previous values by sha256 only): its grace is 0. */
int kw_life_keep_previous(const kw_call *c, kw_key_kind kind, const char *key_id,
                          const char *previous, int64_t seconds, int64_t now);

#endif
