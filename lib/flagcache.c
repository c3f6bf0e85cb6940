/* flagcache.c — per-project flag definitions in memory (see flagcache.h).
 *
 * Layout: SHARDS shards × (slots / SHARDS) direct-mapped slots, chosen from
 * the project id (ids are sequential, so id % SHARDS spreads them evenly and
 * neighbouring projects never share a lock).  A slot holds a pointer to an
 * immutable, reference-counted set; a collision replaces the older set, and
 * its next request pays one store read, which is what it paid before this
 * cache existed.
 *
 * A hit takes the shard's read lock, checks generation and age, and adds a
 * reference: no allocation, no store access.  A miss reads the store outside
 * any lock (so a slow database never blocks other projects' readers), then
 * publishes under the write lock only if the generation did not move since
 * before the read — a write that lands meanwhile makes the fresh set stale
 * already, so it is returned to its caller but not cached.  Concurrent
 * misses on one project each read the store once; after a flag write that
 * is one burst of N reads for N threads, not worth a per-slot build lock.
 *
 * The set carries the serialized /flags/definitions body and its ETag
 * (PostHog's JSON shape, built here so the server sends the same bytes it
 * hashed), the parsed flags that /flags and /decide evaluate, and their
 * regex patterns compiled (so a request never compiles one). */
#include "keyward/flagcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

#define SHARDS 16

struct set {
    kw_flagset pub;        /* first: a kw_flagset * is a struct set * */
    _Atomic int refs;
    uint64_t generation;
    int64_t built_at;
    _Atomic(kw_flagset_attachment *) attachment;
};

struct shard {
    pthread_rwlock_t lock;
    struct set **slots;
} __attribute__((aligned(64)));

struct kw_flagcache {
    kw_store *store;
    struct shard shards[SHARDS];
    unsigned per_shard;
    int64_t ttl_us;
    _Atomic uint64_t generation;  /* starts at 1 */
    _Atomic int64_t store_generation;
    _Atomic int store_seen;
    _Atomic uint64_t hits, builds;
    /* Outage handling, as in the verification cache (auth.c): while polls
     * fail, sets keep being served until grace_us after the last good
     * poll, then they are refused (a miss; the rebuild fails with the
     * store's error, hence 503). */
    _Atomic int64_t last_poll_ok;
    _Atomic int poll_failing;
    _Atomic int64_t grace_us;
};

#define DEFAULT_GRACE_US ((int64_t)30 * 1000000)

int kw_flagcache_new(kw_store *store, unsigned slots, int64_t ttl_us, kw_flagcache **out)
{
    kw_flagcache *c = calloc(1, sizeof *c);
    if (!c) return KW_ERR_NOMEM;
    c->store = store;
    c->per_shard = slots / SHARDS + (slots % SHARDS != 0);
    if (c->per_shard == 0) c->per_shard = 1;
    c->ttl_us = ttl_us;
    atomic_store(&c->generation, 1);
    atomic_store(&c->grace_us, DEFAULT_GRACE_US);
    for (int i = 0; i < SHARDS; i++) {
        c->shards[i].slots = calloc(c->per_shard, sizeof(struct set *));
        if (!c->shards[i].slots) {
            for (int j = 0; j < i; j++) free(c->shards[j].slots);
            free(c);
            return KW_ERR_NOMEM;
        }
        pthread_rwlock_init(&c->shards[i].lock, NULL);
    }
    *out = c;
    return KW_OK;
}

void kw_flagset_release(const kw_flagset *pub)
{
    struct set *s = (struct set *)pub;
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
    /* Before the body: an attachment may point into it. */
    kw_flagset_attachment *a = atomic_load_explicit(&s->attachment, memory_order_acquire);
    if (a) a->free_fn(a);
    kw_flag_regexes_free((kw_flag_regexes *)s->pub.regexes);
    json_decref((json_t *)s->pub.flags);
    free((char *)s->pub.body);
    free(s);
}

kw_flagset_attachment *kw_flagset_attachment_get(const kw_flagset *pub)
{
    struct set *s = (struct set *)pub;
    return atomic_load_explicit(&s->attachment, memory_order_acquire);
}

kw_flagset_attachment *kw_flagset_attach(const kw_flagset *pub, kw_flagset_attachment *a)
{
    struct set *s = (struct set *)pub;
    kw_flagset_attachment *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&s->attachment, &expected, a, memory_order_acq_rel,
                                                memory_order_acquire))
        return a;
    return expected;
}

void kw_flagcache_free(kw_flagcache *c)
{
    if (!c) return;
    for (int i = 0; i < SHARDS; i++) {
        for (unsigned j = 0; j < c->per_shard; j++)
            if (c->shards[i].slots[j]) kw_flagset_release(&c->shards[i].slots[j]->pub);
        free(c->shards[i].slots);
        pthread_rwlock_destroy(&c->shards[i].lock);
    }
    free(c);
}

static struct shard *shard_of(kw_flagcache *c, int64_t project_id, struct set ***slot)
{
    uint64_t id = (uint64_t)project_id;
    struct shard *s = &c->shards[id % SHARDS];
    *slot = &s->slots[(id / SHARDS) % c->per_shard];
    return s;
}

static uint64_t generation(kw_flagcache *c)
{
    return atomic_load_explicit(&c->generation, memory_order_acquire);
}

void kw_flagcache_bump(kw_flagcache *c)
{
    if (c) atomic_fetch_add_explicit(&c->generation, 1, memory_order_acq_rel);
}

int kw_flagcache_sync(kw_flagcache *c, int64_t store_generation)
{
    int64_t seen = atomic_exchange(&c->store_generation, store_generation);
    int first = !atomic_exchange(&c->store_seen, 1);
    if (first || seen == store_generation) return 0;
    kw_flagcache_bump(c);
    return 1;
}

void kw_flagcache_poll(void *cache)
{
    kw_flagcache *c = cache;
    int64_t g;
    if (kw_store_flags_generation(c->store, &g) == KW_OK) {
        kw_flagcache_sync(c, g);
        atomic_store(&c->last_poll_ok, kw_now());
        atomic_store(&c->poll_failing, 0);
    } else {
        /* Keep the sets: they were current at the last good poll and no
         * change can have been seen since.  Dropping them (as this did
         * once) turned every database blip into 503s for routes that need
         * no database.  kw_flagcache_get stops serving them after grace. */
        if (!atomic_exchange(&c->poll_failing, 1) && !atomic_load(&c->last_poll_ok))
            atomic_store(&c->last_poll_ok, kw_now());  /* never polled OK: count from now */
    }
}

void kw_flagcache_set_grace(kw_flagcache *c, int64_t grace_us) { atomic_store(&c->grace_us, grace_us); }

/* Whether cached sets may be served: always while polls succeed (or none
 * ran: a cache without a poll hook), else within the grace window. */
static int trusted(kw_flagcache *c)
{
    if (!atomic_load_explicit(&c->poll_failing, memory_order_relaxed)) return 1;
    return kw_now() - atomic_load_explicit(&c->last_poll_ok, memory_order_relaxed) <=
           atomic_load_explicit(&c->grace_us, memory_order_relaxed);
}

void kw_flagcache_stats(kw_flagcache *c, uint64_t *hits, uint64_t *builds)
{
    *hits = atomic_load_explicit(&c->hits, memory_order_relaxed);
    *builds = atomic_load_explicit(&c->builds, memory_order_relaxed);
}

/* One stored flag → its definition object, the shape SDKs evaluate. */
static int add_def(void *ctx, const kw_flag *f)
{
    json_t *filters = f->filters ? json_loads(f->filters, 0, NULL) : NULL;
    json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:o, s:b, s:b, s:b, s:I}", "id", (json_int_t)f->id,
                          "team_id", (json_int_t)f->project_id, "name", f->name, "key", f->key,
                          "filters", filters ? filters : json_object(), "deleted", f->deleted,
                          "active", f->active, "ensure_experience_continuity",
                          f->ensure_experience_continuity, "version", (json_int_t)f->version);
    if (!o || json_array_append_new(ctx, o)) return KW_ERR_NOMEM;
    return 0;
}

static int build(kw_flagcache *c, int64_t project_id, uint64_t gen, struct set **out)
{
    json_t *flags = json_array();
    if (!flags) return KW_ERR_NOMEM;
    int rc = kw_store_flag_list(c->store, project_id, KW_FLAG_BY_KEY, 0, add_def, flags);
    if (rc) {
        json_decref(flags);
        return rc;
    }
    json_t *doc = json_pack("{s:O, s:{}, s:{}, s:b, s:i}", "flags", flags, "group_type_mapping",
                            "cohorts", "minimal_flag_called_events", 0, "property_matching_version", 1);
    /* The dump flags server.c uses, so the ETag is over the bytes it would send. */
    char *body = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    struct set *s = body ? calloc(1, sizeof *s) : NULL;
    char hash[KW_HASH_LEN + 1];
    kw_flag_regexes *regexes = NULL;
    if (!s || kw_key_hash(body, strlen(body), hash) || kw_flag_regexes_build(flags, &regexes)) {
        free(s);
        free(body);
        json_decref(flags);
        return KW_ERR_NOMEM;
    }
    s->pub.regexes = regexes;
    s->pub.project_id = project_id;
    s->pub.flags = flags;
    s->pub.body = body;
    s->pub.body_len = strlen(body);
    snprintf(s->pub.etag, sizeof s->pub.etag, "W/\"%.32s\"", hash + 7);  /* skip "sha256$" */
    atomic_store(&s->refs, 1);
    s->generation = gen;
    s->built_at = kw_now();
    *out = s;
    return KW_OK;
}

int kw_flagcache_get(kw_flagcache *c, int64_t project_id, const kw_flagset **out)
{
    struct set **slot;
    struct shard *sh = shard_of(c, project_id, &slot);
    uint64_t gen = generation(c);
    struct set *s;
    pthread_rwlock_rdlock(&sh->lock);
    s = *slot;
    if (s && s->pub.project_id == project_id && s->generation == gen &&
        (!c->ttl_us || kw_now() - s->built_at < c->ttl_us) && trusted(c))
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    else
        s = NULL;
    pthread_rwlock_unlock(&sh->lock);
    if (s) {
        atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
        *out = &s->pub;
        return KW_OK;
    }
    /* Miss: `gen` was read before the store, so a write landing after this
     * point makes the put below a no-op. */
    int rc = build(c, project_id, gen, &s);
    if (rc) return rc;
    atomic_fetch_add_explicit(&c->builds, 1, memory_order_relaxed);
    struct set *old = NULL;
    pthread_rwlock_wrlock(&sh->lock);
    if (gen == generation(c)) {
        old = *slot;
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);  /* the cache's */
        *slot = s;
    }
    pthread_rwlock_unlock(&sh->lock);
    kw_flagset_release(old ? &old->pub : NULL);
    *out = &s->pub;
    return KW_OK;
}
