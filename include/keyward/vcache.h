/* vcache.h — the verification cache: presented key digest → principal.
 *
 * Verifying a key that was verified a moment ago should cost a SHA-256 and
 * a memory probe, not a database round trip.  Entries are keyed by the
 * SHA-256 of the key (the plaintext is never kept) and stamped with a
 * generation; any write that can change a verification result (revoke,
 * roll, scope change, deactivation) bumps the generation, which drops every
 * entry at once.  Writes from other processes or instances are seen by
 * polling the store's generation counter (kw_vcache_sync).
 *
 * The table is fixed-size and allocated once: sharded, each shard behind a
 * reader-writer lock, so concurrent readers never serialize on one lock and
 * a lookup never allocates. */
#ifndef KEYWARD_VCACHE_H
#define KEYWARD_VCACHE_H

#include <stdint.h>

#include "keyward/auth.h"

typedef struct kw_vcache kw_vcache;

/* `slots` is rounded up to a multiple of the shard count; ttl_us bounds how
 * long an entry lives even without invalidation (0 = no bound). */
int kw_vcache_new(unsigned slots, int64_t ttl_us, kw_vcache **out);
void kw_vcache_free(kw_vcache *c);

/* 1 and *out filled on a fresh hit; 0 on a miss.  `digest` is 32 bytes. */
int kw_vcache_get(kw_vcache *c, const unsigned char *digest, kw_principal *out,
                  int64_t *last_used_at);
/* Remembers a verified principal unless the generation moved since
 * `generation` was read (the caller read it before querying the store). */
void kw_vcache_put(kw_vcache *c, const unsigned char *digest, const kw_principal *p,
                   int64_t last_used_at, uint64_t generation);
/* Notes that last_used_at was written (so the hourly touch is not redone). */
void kw_vcache_touched(kw_vcache *c, const unsigned char *digest, int64_t when);

uint64_t kw_vcache_generation(const kw_vcache *c);
/* Drops every entry (a local write changed what verification answers). */
void kw_vcache_bump(kw_vcache *c);
/* Feeds the store's generation counter; a change from the last value seen
 * drops every entry.  Returns 1 when it dropped. */
int kw_vcache_sync(kw_vcache *c, int64_t store_generation);

#endif
