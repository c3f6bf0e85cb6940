/* vcache.c — sharded, fixed-size verification cache (see vcache.h).
 *
 * Layout: SHARDS shards × (slots / SHARDS) direct-mapped slots, chosen by
 * bits of the digest (a SHA-256 is already uniformly distributed).  A
 * collision simply replaces the older entry: a miss costs one database
 * probe, which is what we would have paid anyway.  Only principals whose
 * narrowing fits the compact entry are cached; the rare key scoped to more
 * than CACHED_SCOPED teams or organizations is always verified in full.
 *
 * Invalidation is by generation: bumping it makes every stamped entry stale
 * without touching them, so revocation is O(1) and visible to the next
 * lookup on any thread. */
#include "keyward/vcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "memcommit.h"

#define SHARDS 64
#define CACHED_SCOPED 8

struct entry {
    unsigned char digest[32];
    uint64_t generation;  /* 0 = empty */
    int64_t stored_at;
    int64_t last_used_at;
    kw_key_kind kind;
    int64_t user_id;
    int64_t project_id;
    int64_t expires_at;  /* checked against kw_now() by the caller on every hit */
    int32_t rate_limit_per_minute;
    int8_t grace_value;
    char key_id[KW_ID_LEN + 1];
    kw_scopes scopes;
    int8_t n_teams, n_orgs;  /* -1 = not narrowed */
    int64_t teams[CACHED_SCOPED];
    char orgs[CACHED_SCOPED][KW_ID_LEN + 1];
};

struct shard {
    pthread_rwlock_t lock;
    struct entry *slots;
} __attribute__((aligned(64)));

struct kw_vcache {
    struct shard shards[SHARDS];
    unsigned per_shard;
    int64_t ttl_us;
    _Atomic uint64_t generation;   /* starts at 1: 0 marks empty slots */
    _Atomic int64_t store_generation;
    _Atomic int store_seen;
};

int kw_vcache_new(unsigned slots, int64_t ttl_us, kw_vcache **out)
{
    kw_vcache *c = calloc(1, sizeof *c);
    if (!c) return KW_ERR_NOMEM;
    c->per_shard = slots / SHARDS + (slots % SHARDS != 0);
    if (c->per_shard == 0) c->per_shard = 1;
    c->ttl_us = ttl_us;
    atomic_store(&c->generation, 1);
    for (int i = 0; i < SHARDS; i++) {
        c->shards[i].slots = calloc(c->per_shard, sizeof(struct entry));
        if (!c->shards[i].slots) {
            for (int j = 0; j < i; j++) free(c->shards[j].slots);
            free(c);
            return KW_ERR_NOMEM;
        }
        kw_mem_commit(c->shards[i].slots, c->per_shard * sizeof(struct entry));
        pthread_rwlock_init(&c->shards[i].lock, NULL);
    }
    *out = c;
    return KW_OK;
}

void kw_vcache_free(kw_vcache *c)
{
    if (!c) return;
    for (int i = 0; i < SHARDS; i++) {
        /* Wipe digests too: they identify keys. */
        memset(c->shards[i].slots, 0, c->per_shard * sizeof(struct entry));
        free(c->shards[i].slots);
        pthread_rwlock_destroy(&c->shards[i].lock);
    }
    free(c);
}

static struct shard *shard_of(kw_vcache *c, const unsigned char *d, struct entry **slot)
{
    struct shard *s = &c->shards[d[0] % SHARDS];
    uint32_t idx = ((uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]) % c->per_shard;
    *slot = &s->slots[idx];
    return s;
}

uint64_t kw_vcache_generation(const kw_vcache *c)
{
    return atomic_load_explicit(&((kw_vcache *)c)->generation, memory_order_acquire);
}

void kw_vcache_bump(kw_vcache *c) { atomic_fetch_add_explicit(&c->generation, 1, memory_order_acq_rel); }

int kw_vcache_sync(kw_vcache *c, int64_t store_generation)
{
    int64_t seen = atomic_exchange(&c->store_generation, store_generation);
    int first = !atomic_exchange(&c->store_seen, 1);
    if (first || seen == store_generation) return 0;
    kw_vcache_bump(c);
    return 1;
}

int kw_vcache_get(kw_vcache *c, const unsigned char *digest, kw_principal *out, int64_t *last_used_at)
{
    struct entry *e;
    struct shard *s = shard_of(c, digest, &e);
    uint64_t gen = kw_vcache_generation(c);
    int64_t now = c->ttl_us ? kw_now() : 0;
    int hit = 0;
    pthread_rwlock_rdlock(&s->lock);
    if (e->generation == gen && kw_ct_equal(e->digest, digest, 32) &&
        (!c->ttl_us || now - e->stored_at < c->ttl_us)) {
        /* Every field is set below; the narrowing arrays only up to their
         * counts (a 3 KB memset per hit showed in profiles). */
        kw_principal_clear(out);
        out->kind = e->kind;
        out->user_id = e->user_id;
        out->project_id = e->project_id;
        out->expires_at = e->expires_at;
        out->rate_limit_per_minute = e->rate_limit_per_minute;
        out->grace_value = e->grace_value;
        memcpy(out->key_id, e->key_id, sizeof e->key_id);
        out->scopes = e->scopes;
        out->n_scoped_teams = e->n_teams;
        out->n_scoped_orgs = e->n_orgs;
        for (int i = 0; i < e->n_teams; i++) out->scoped_teams[i] = e->teams[i];
        for (int i = 0; i < e->n_orgs; i++) memcpy(out->scoped_orgs[i], e->orgs[i], KW_ID_LEN + 1);
        *last_used_at = e->last_used_at;
        hit = 1;
    }
    pthread_rwlock_unlock(&s->lock);
    return hit;
}

void kw_vcache_put(kw_vcache *c, const unsigned char *digest, const kw_principal *p,
                   int64_t last_used_at, uint64_t generation)
{
    if (p->n_scoped_teams > CACHED_SCOPED || p->n_scoped_orgs > CACHED_SCOPED) return;
    struct entry *e;
    struct shard *s = shard_of(c, digest, &e);
    pthread_rwlock_wrlock(&s->lock);
    /* Checked under the lock: a bump between the caller's store read and
     * now means the row may already be stale, so it is not cached. */
    if (generation == kw_vcache_generation(c)) {
        memcpy(e->digest, digest, 32);
        e->generation = generation;
        e->stored_at = kw_now();
        e->last_used_at = last_used_at;
        e->kind = p->kind;
        e->user_id = p->user_id;
        e->project_id = p->project_id;
        e->expires_at = p->expires_at;
        e->rate_limit_per_minute = p->rate_limit_per_minute;
        e->grace_value = (int8_t)(p->grace_value != 0);
        memcpy(e->key_id, p->key_id, sizeof e->key_id);
        e->scopes = p->scopes;
        e->n_teams = (int8_t)p->n_scoped_teams;
        e->n_orgs = (int8_t)p->n_scoped_orgs;
        for (int i = 0; i < p->n_scoped_teams; i++) e->teams[i] = p->scoped_teams[i];
        for (int i = 0; i < p->n_scoped_orgs; i++) memcpy(e->orgs[i], p->scoped_orgs[i], KW_ID_LEN + 1);
    }
    pthread_rwlock_unlock(&s->lock);
}

void kw_vcache_touched(kw_vcache *c, const unsigned char *digest, int64_t when)
{
    struct entry *e;
    struct shard *s = shard_of(c, digest, &e);
    pthread_rwlock_wrlock(&s->lock);
    if (kw_ct_equal(e->digest, digest, 32)) e->last_used_at = when;
    pthread_rwlock_unlock(&s->lock);
}
