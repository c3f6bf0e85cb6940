/* follow.h — following the store's change log (internal).
 *
 * A cache that must notice writes — its own process's and everyone
 * else's — keeps one follower per stream (auth or flags).  A poll reads the
 * stream's generation (one indexed row); only when it moved does it read
 * the changes since the last poll and hand each one to the cache, which
 * forgets just what it names.  When the log cannot tell what changed — the
 * rows were pruned because this follower lagged far behind, more changed
 * than one read should carry, or the generation went backwards (a restored
 * database) — the cache drops everything instead: slower, never stale.
 *
 * A poll that cannot reach the store changes nothing and keeps its place,
 * so the next successful poll catches up on everything missed meanwhile:
 * a lost notification session or an outage loses no change. */
#ifndef KW_FOLLOW_H
#define KW_FOLLOW_H

#include <pthread.h>
#include <stdint.h>

#include "keyward/store.h"

typedef struct kw_follow {
    int stream;               /* KW_CHANGE_AUTH or KW_CHANGE_FLAGS */
    pthread_mutex_t lock;     /* one poll at a time: they share `last` */
    int64_t last;             /* the generation everything up to is applied */
    int seen;                 /* `last` was read once */
    int64_t pruned_through;   /* this follower's last prune */
} kw_follow;

typedef struct kw_follow_ops {
    /* Forget what one change names. */
    void (*apply)(void *ctx, const kw_change *change);
    /* Forget everything. */
    void (*drop_all)(void *ctx);
} kw_follow_ops;

void kw_follow_init(kw_follow *f, int stream);
void kw_follow_destroy(kw_follow *f);
/* 1 when the generation moved (and the changes were applied), 0 when it
 * did not, or a negative KW_ERR_* when the store could not be read (then
 * nothing was applied).  The first successful poll takes the current
 * generation as its starting point and drops everything: what was cached
 * before it cannot be checked against the log. */
int kw_follow_poll(kw_follow *f, kw_store *store, const kw_follow_ops *ops, void *ctx);

#endif
