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

#endif
