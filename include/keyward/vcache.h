/* vcache.h — the verification cache: presented key digest → principal.
 *
 * Verifying a key that was verified a moment ago should cost a SHA-256 and
 * a memory probe, not a database round trip.  Entries are keyed by the
 * SHA-256 of the key (the plaintext is never kept).  A write that can change
 * a verification result forgets only what it changed: the key (revoke,
 * roll, scope or expiry change), the user's keys (deactivation, deletion),
 * the project's token and secret keys (token reset, deletion).  Every
 * other entry stays, so an unrelated write never costs a key its cached
 * answer — nor the grace it is served with while the store is down.  The
 * verifier learns what changed from the store's change log, for its own
 * writes and for those of other processes and instances alike.
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

/* 1 and *out filled on a fresh hit; 0 on a miss.  `digest` is 32 bytes;
 * `now` is the caller's kw_now() (one clock reading serves a whole
 * verification), held against the ttl. */
int kw_vcache_get(kw_vcache *c, const unsigned char *digest, int64_t now, kw_principal *out,
                  int64_t *last_used_at);
/* Taken before querying the store, and passed to kw_vcache_put. */
uint64_t kw_vcache_ticket(kw_vcache *c);
/* Remembers a verified principal unless its key or owner was forgotten
 * since `ticket` was taken (the row read may already be stale). */
void kw_vcache_put(kw_vcache *c, const unsigned char *digest, const kw_principal *p,
                   int64_t last_used_at, uint64_t ticket);
/* Notes that last_used_at was written (so the hourly touch is not redone). */
void kw_vcache_touched(kw_vcache *c, const unsigned char *digest, int64_t when);

/* Forget one personal or secret key (by id: rolled-away values of it too). */
void kw_vcache_forget_key(kw_vcache *c, const char *key_id);
/* Forget every personal key of a user. */
void kw_vcache_forget_user(kw_vcache *c, int64_t user_id);
/* Forget a project's token and every secret key of the project. */
void kw_vcache_forget_project(kw_vcache *c, int64_t project_id);
/* Drops every entry: the fallback when what changed cannot be known. */
void kw_vcache_bump(kw_vcache *c);

#endif
