/* vcache.c — sharded, fixed-size verification cache (see vcache.h).
 *
 * Layout: SHARDS shards × (slots / SHARDS) direct-mapped slots, chosen by
 * bits of the digest (a SHA-256 is already uniformly distributed).  A
 * collision simply replaces the older entry: a miss costs one database
 * probe, which is what we would have paid anyway.  Only principals whose
 * narrowing fits the compact entry are cached; the rare key scoped to more
 * than CACHED_SCOPED teams or organizations is always verified in full.
 *
 * Invalidation is by identity (util/stamps.h): an entry depends on its key
 * and on its owner — the user of a personal key, the project of a secret
 * key or project token — and forgetting either makes it stale without
 * touching the table, so revocation is O(1), visible to the next lookup on
 * any thread, and leaves every other key's entry alone.  Dropping every
 * entry at once remains, for when what changed cannot be known. */
#include "keyward/vcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "util/memcommit.h"
#include "util/stamps.h"

#define SHARDS 64
#define CACHED_SCOPED 8
/* 128 KB of stamps: two identities share a bucket with odds of 1 in 16K,
 * and then only cost each other a store read. */
#define STAMP_BUCKETS (16 * 1024)

struct entry {
    unsigned char digest[32];
    uint64_t ticket;  /* 0 = empty */
    uint64_t id_key, id_owner;  /* the identities it depends on */
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
    kw_stamps stamps;
};

int kw_vcache_new(unsigned slots, int64_t ttl_us, kw_vcache **out)
{
    kw_vcache *c = calloc(1, sizeof *c);
    if (!c) return KW_ERR_NOMEM;
    c->per_shard = slots / SHARDS + (slots % SHARDS != 0);
    if (c->per_shard == 0) c->per_shard = 1;
    c->ttl_us = ttl_us;
    if (kw_stamps_init(&c->stamps, STAMP_BUCKETS)) {
        free(c);
        return KW_ERR_NOMEM;
    }
    for (int i = 0; i < SHARDS; i++) {
        c->shards[i].slots = calloc(c->per_shard, sizeof(struct entry));
        if (!c->shards[i].slots) {
            for (int j = 0; j < i; j++) free(c->shards[j].slots);
            kw_stamps_destroy(&c->stamps);
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
    kw_stamps_destroy(&c->stamps);
    free(c);
}

static struct shard *shard_of(kw_vcache *c, const unsigned char *d, struct entry **slot)
{
    struct shard *s = &c->shards[d[0] % SHARDS];
    uint32_t idx = ((uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]) % c->per_shard;
    *slot = &s->slots[idx];
    return s;
}

uint64_t kw_vcache_ticket(kw_vcache *c) { return kw_stamps_ticket(&c->stamps); }

void kw_vcache_bump(kw_vcache *c) { kw_stamps_drop_all(&c->stamps); }

void kw_vcache_forget_key(kw_vcache *c, const char *key_id)
{
    kw_stamps_forget(&c->stamps, kw_stamps_id('k', key_id));
}

void kw_vcache_forget_user(kw_vcache *c, int64_t user_id)
{
    kw_stamps_forget(&c->stamps, kw_stamps_id_int('u', user_id));
}

void kw_vcache_forget_project(kw_vcache *c, int64_t project_id)
{
    kw_stamps_forget(&c->stamps, kw_stamps_id_int('p', project_id));
}

/* What a principal's answer depends on: its key (a project token has no
 * key row: its project stands for both) and the key's owner. */
static void identities_of(const kw_principal *p, uint64_t *key, uint64_t *owner)
{
    *owner = p->kind == KW_KEY_PERSONAL ? kw_stamps_id_int('u', p->user_id)
                                        : kw_stamps_id_int('p', p->project_id);
    *key = p->kind == KW_KEY_PROJECT ? *owner : kw_stamps_id('k', p->key_id);
}

int kw_vcache_get(kw_vcache *c, const unsigned char *digest, int64_t now, kw_principal *out,
                  int64_t *last_used_at)
{
    struct entry *e;
    struct shard *s = shard_of(c, digest, &e);
    int hit = 0;
    pthread_rwlock_rdlock(&s->lock);
    if (kw_stamps_fresh(&c->stamps, e->ticket, e->id_key, e->id_owner) &&
        kw_ct_equal(e->digest, digest, 32) &&
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
                   int64_t last_used_at, uint64_t ticket)
{
    if (p->n_scoped_teams > CACHED_SCOPED || p->n_scoped_orgs > CACHED_SCOPED) return;
    uint64_t id_key, id_owner;
    identities_of(p, &id_key, &id_owner);
    struct entry *e;
    struct shard *s = shard_of(c, digest, &e);
    pthread_rwlock_wrlock(&s->lock);
    /* Checked under the lock: a write to this key or its owner between the
     * caller's ticket and now means the row may already be stale, so it is
     * not cached (and does not evict the slot's entry). */
    if (kw_stamps_fresh(&c->stamps, ticket, id_key, id_owner)) {
        memcpy(e->digest, digest, 32);
        e->ticket = ticket;
        e->id_key = id_key;
        e->id_owner = id_owner;
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
