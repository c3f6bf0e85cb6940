/* ratelimit.h — per-key rate limits (token buckets, in memory).
 *
 * A key with rate_limit_per_minute = N may burst N requests and refills at
 * N per minute; a change of N keeps what the key has spent.  Buckets live
 * in a sharded table keyed by key id (exactly: two keys never share one),
 * so the check is one short per-shard critical section, and allocates only
 * when a shard doubles for more keys spending at once than it holds.
 * The limit is per instance: behind a load balancer with k instances a key
 * gets at most k × N per minute (docs/rate-limits.md says so). */
#ifndef KEYWARD_RATELIMIT_H
#define KEYWARD_RATELIMIT_H

#include <stdint.h>

typedef struct kw_ratelimit kw_ratelimit;

int kw_ratelimit_new(unsigned slots, kw_ratelimit **out);
void kw_ratelimit_free(kw_ratelimit *rl);

/* Takes one token for `key_id` under a limit of `per_minute` at time `now`
 * (microseconds).  Returns 0 when allowed; otherwise the number of whole
 * seconds (≥ 1) after which a token will be available (Retry-After). */
int kw_ratelimit_take(kw_ratelimit *rl, const char *key_id, int per_minute, int64_t now);
/* The same; on a refusal, *first_refusal is set to 1 when it is the key's
 * first in this minute (a window of 60 s counted from the epoch), else 0,
 * so a burst of refusals can be announced once per minute. */
int kw_ratelimit_take_noting(kw_ratelimit *rl, const char *key_id, int per_minute, int64_t now,
                             int *first_refusal);

#endif
