/* ratelimit.c — token buckets keyed by key id (see ratelimit.h).
 *
 * 64 shards, each an open-addressed table behind its own mutex (a take is
 * a read-modify-write, so a reader-writer lock would buy nothing).  A key
 * is looked for among PROBES slots from its hash, and matched exactly: two
 * keys never share a bucket.  A bucket that has refilled to its limit says
 * nothing a fresh one would not, so its slot may be given to another key;
 * while it is below its limit it is kept, and when all of a key's probe
 * slots hold such buckets the shard doubles.  So a key starts afresh only
 * after a minute of idleness — never because another key (or a change of
 * its own limit) took its place, which would hand it a full bucket at
 * will.  The table grows only with the number of limited keys spent below
 * their limit in the last minute, up to MAX_SHARD_SLOTS per shard; past
 * that, or if memory runs out, the fullest bucket in reach is given up
 * (the old direct-mapped behaviour, at a scale no installation reaches). */
#include "keyward/ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/store.h"
#include "util/hash.h"
#include "util/memcommit.h"

#define SHARDS 64
#define PROBES 8
#define MAX_SHARD_SLOTS (1u << 14)

struct bucket {
    char key_id[KW_ID_LEN + 1];  /* "": free */
    int per_minute;
    double tokens;
    int64_t updated_at;
    int64_t refused_window;  /* 1 + the minute of the last refusal; 0: none */
};

struct shard {
    pthread_mutex_t lock;
    struct bucket *slots;
    unsigned n_slots;  /* a power of two */
} __attribute__((aligned(64)));

struct kw_ratelimit {
    struct shard shards[SHARDS];
};

static unsigned power_of_two_at_least(unsigned n)
{
    unsigned p = PROBES;
    while (p < n && p < MAX_SHARD_SLOTS) p <<= 1;
    return p;
}

int kw_ratelimit_new(unsigned slots, kw_ratelimit **out)
{
    kw_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) return KW_ERR_NOMEM;
    unsigned per_shard = power_of_two_at_least(slots / SHARDS + 1);
    for (int i = 0; i < SHARDS; i++) {
        rl->shards[i].slots = calloc(per_shard, sizeof(struct bucket));
        if (!rl->shards[i].slots) {
            for (int j = 0; j < i; j++) free(rl->shards[j].slots);
            free(rl);
            return KW_ERR_NOMEM;
        }
        rl->shards[i].n_slots = per_shard;
        kw_mem_commit(rl->shards[i].slots, per_shard * sizeof(struct bucket));
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

/* The bucket's tokens at `now`, refilled at its rate up to its limit. */
static double tokens_at(const struct bucket *b, int64_t now)
{
    double t = b->tokens;
    if (now > b->updated_at) t += (double)(now - b->updated_at) * (b->per_minute / 60e6);
    return t > b->per_minute ? b->per_minute : t;
}

/* Whether the slot may be given to another key: free, or refilled. */
static int spare(const struct bucket *b, int64_t now)
{
    return !b->key_id[0] || tokens_at(b, now) >= b->per_minute;
}

/* Doubles the shard, keeping every bucket still below its limit.  Fails
 * (and leaves the shard as it was) at the size bound or out of memory, or
 * if a kept bucket finds no slot in reach even in the larger table. */
static int grow(struct shard *s, int64_t now)
{
    unsigned n = s->n_slots * 2;
    if (n > MAX_SHARD_SLOTS) return -1;
    struct bucket *slots = calloc(n, sizeof *slots);
    if (!slots) return -1;
    for (unsigned i = 0; i < s->n_slots; i++) {
        const struct bucket *b = &s->slots[i];
        if (spare(b, now)) continue;
        uint64_t h = kw_hash_text(KW_HASH_START, b->key_id) / SHARDS;
        unsigned p = 0;
        while (p < PROBES && slots[(h + p) & (n - 1)].key_id[0]) p++;
        if (p == PROBES) {
            free(slots);
            return -1;
        }
        slots[(h + p) & (n - 1)] = *b;
    }
    free(s->slots);
    s->slots = slots;
    s->n_slots = n;
    return 0;
}

/* The key's bucket in `s`, made (full, at `per_minute`) if it has none.
 * Called locked. */
static struct bucket *bucket_of(struct shard *s, uint64_t h, const char *key_id, int per_minute,
                                int64_t now)
{
    struct bucket *given = NULL;
    while (!given) {
        unsigned mask = s->n_slots - 1;
        for (unsigned p = 0; p < PROBES; p++) {
            struct bucket *b = &s->slots[(h + p) & mask];
            if (strcmp(b->key_id, key_id) == 0) return b;
            if (!given && spare(b, now)) given = b;
        }
        if (given || !grow(s, now)) continue;
        /* No room and no growing: the bucket nearest its limit goes. */
        given = &s->slots[h & mask];
        for (unsigned p = 1; p < PROBES; p++) {
            struct bucket *b = &s->slots[(h + p) & mask];
            if (tokens_at(b, now) / b->per_minute > tokens_at(given, now) / given->per_minute)
                given = b;
        }
    }
    strncpy(given->key_id, key_id, KW_ID_LEN);
    given->key_id[KW_ID_LEN] = '\0';
    given->per_minute = per_minute;
    given->tokens = per_minute;
    given->updated_at = now;
    given->refused_window = 0;
    return given;
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
    /* Ids longer than a bucket holds are cut the same way on every take,
     * so a long id still finds its own bucket.  A key id fits as it is. */
    char cut[KW_ID_LEN + 1];
    const char *id = key_id;
    size_t len = strnlen(key_id, KW_ID_LEN + 1);
    if (len == 0 || len > KW_ID_LEN) {
        memcpy(cut, len ? key_id : "-", len ? KW_ID_LEN : 2);
        cut[KW_ID_LEN] = '\0';
        id = cut;
    }
    uint64_t h = kw_hash_text(KW_HASH_START, id);
    struct shard *s = &rl->shards[h % SHARDS];
    int retry = 0;
    pthread_mutex_lock(&s->lock);
    struct bucket *b = bucket_of(s, h / SHARDS, id, per_minute, now);
    /* Refilled at the rate it had; a new limit then applies from now on,
     * and what was spent stays spent (up to the new limit's whole burst):
     * a raise adds its difference at once, a cut never refills. */
    b->tokens = tokens_at(b, now);
    b->updated_at = now > b->updated_at ? now : b->updated_at;
    if (b->per_minute != per_minute) {
        b->tokens += per_minute - b->per_minute;
        if (b->tokens < 0) b->tokens = 0;
        b->per_minute = per_minute;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
    } else {
        const double rate = per_minute / 60e6;  /* tokens per microsecond */
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
