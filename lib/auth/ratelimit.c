/* ratelimit.c — token buckets keyed by key id (see ratelimit.h).
 *
 * The table is direct-mapped by a hash of the key id, 64 shards with a
 * mutex each (a take is a read-modify-write, so a reader-writer lock would
 * buy nothing).  Two keys colliding on a slot evict each other: the loser
 * starts a fresh, full bucket, which errs on the side of allowing a request
 * — a collision can never make a key exceed twice its limit, and with the
 * default 64K slots collisions need that many keys with limits to be hot at
 * once. */
#include "keyward/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "util/hash.h"
#include "util/memcommit.h"
#include "keyward/store.h"

#define SHARDS 64

struct bucket {
    char key_id[KW_ID_LEN + 1];
    int per_minute;
    double tokens;
    int64_t updated_at;
    int64_t refused_window;  /* 1 + the minute of the last refusal; 0: none */
};

struct shard {
    pthread_mutex_t lock;
    struct bucket *slots;
} __attribute__((aligned(64)));

struct kw_ratelimit {
    struct shard shards[SHARDS];
    unsigned per_shard;
};

int kw_ratelimit_new(unsigned slots, kw_ratelimit **out)
{
    kw_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) return KW_ERR_NOMEM;
    rl->per_shard = slots / SHARDS + 1;
    for (int i = 0; i < SHARDS; i++) {
        rl->shards[i].slots = calloc(rl->per_shard, sizeof(struct bucket));
        if (!rl->shards[i].slots) {
            for (int j = 0; j < i; j++) free(rl->shards[j].slots);
            free(rl);
            return KW_ERR_NOMEM;
        }
        kw_mem_commit(rl->shards[i].slots, rl->per_shard * sizeof(struct bucket));
        pthread_mutex_init(&rl->shards[i].lock, NULL);
    }
    *out = rl;
    return KW_OK;
}

void kw_ratelimit_free(kw_ratelimit *rl)
{
    if (!rl) return;
    for (int i = 0; i < SHARDS; i++) {
        free(rl->shards[i].slots);
        pthread_mutex_destroy(&rl->shards[i].lock);
    }
    free(rl);
}

int kw_ratelimit_take(kw_ratelimit *rl, const char *key_id, int per_minute, int64_t now)
{
    return kw_ratelimit_take_noting(rl, key_id, per_minute, now, NULL);
}

int kw_ratelimit_take_noting(kw_ratelimit *rl, const char *key_id, int per_minute, int64_t now,
                             int *first_refusal)
{
    if (first_refusal) *first_refusal = 0;
    if (per_minute <= 0) return 0;
    uint64_t h = kw_hash_text(KW_HASH_START, key_id);
    struct shard *s = &rl->shards[h % SHARDS];
    struct bucket *b = &s->slots[(h / SHARDS) % rl->per_shard];
    const double rate = per_minute / 60e6;  /* tokens per microsecond */
    int retry = 0;
    pthread_mutex_lock(&s->lock);
    if (strcmp(b->key_id, key_id) != 0 || b->per_minute != per_minute) {
        /* New key in this slot, or its limit changed: start full. */
        strncpy(b->key_id, key_id, KW_ID_LEN);
        b->key_id[KW_ID_LEN] = '\0';
        b->per_minute = per_minute;
        b->tokens = per_minute;
        b->updated_at = now;
        b->refused_window = 0;
    }
    if (now > b->updated_at) {
        b->tokens += (double)(now - b->updated_at) * rate;
        if (b->tokens > per_minute) b->tokens = per_minute;
        b->updated_at = now;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
    } else {
        double wait_us = (1.0 - b->tokens) / rate;
        retry = (int)ceil(wait_us / 1e6 - 1e-6);  /* whole seconds, rounded up */
        if (retry < 1) retry = 1;
        int64_t window = now / 60000000 + 1;
        if (first_refusal && b->refused_window != window) *first_refusal = 1;
        b->refused_window = window;
    }
    pthread_mutex_unlock(&s->lock);
    return retry;
}
