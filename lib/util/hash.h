/* hash.h — the one string hash of the fixed-size tables that pick a slot
 * from a text key: rate-limit buckets, unauthenticated-work budgets, the
 * memberships a request thread keeps.  FNV-1a: short keys, no state, and
 * spread enough for a modulo; `h` is where to start, so a caller can mix a
 * number of its own into the start. */
#ifndef KW_UTIL_HASH_H
#define KW_UTIL_HASH_H

#include <stdint.h>

/* The start these tables have always used. */
#define KW_HASH_START 1469598103934665603ULL

static inline uint64_t kw_hash_text(uint64_t h, const char *s)
{
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

#endif
