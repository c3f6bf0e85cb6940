/* flagcache.c — per-project flag definitions in memory (see flagcache.h).
 *
 * Layout: SHARDS shards × (slots / SHARDS) direct-mapped slots, chosen from
 * the project id (ids are sequential, so id % SHARDS spreads them evenly and
 * neighbouring projects never share a lock).  A slot holds a pointer to an
 * immutable, reference-counted set; a collision replaces the older set, and
 * its next request pays one store read, which is what it paid before this
 * cache existed.
 *
 * Staleness is per project (util/stamps.h): a flag write forgets only its
 * project's set, so a busy project's edits never cost the others a
 * rebuild.  What changed is read from the store's change log (the flags
 * stream, auth/follow.h), right after a local write and at every poll for
 * writes by other processes or instances.
 *
 * A hit takes the shard's read lock, checks the project's stamp and age,
 * and adds a reference: no allocation, no store access.  A miss reads the
 * store outside any lock (so a slow database never blocks other projects'
 * readers), then publishes under the write lock only if the project was
 * not forgotten since its ticket was taken before the read — a write that
 * lands meanwhile makes the fresh set stale already, so it is returned to
 * its caller but not cached.  Concurrent
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
#include "auth/follow.h"
#include "util/stamps.h"

#define SHARDS 16
/* Projects sharing a stamp bucket forget each other's sets: a rebuild. */
#define STAMP_BUCKETS 4096

struct set {
    kw_flagset pub;        /* first: a kw_flagset * is a struct set * */
    _Atomic int refs;
    uint64_t ticket;     /* taken before the store read it was built from */
    uint64_t identity;   /* its project's, for the stamps */
    int64_t built_at;
    _Atomic(kw_flagset_attachment *) attachment[KW_FLAGSET_SLOTS];
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
    kw_stamps stamps;
    kw_follow flags_log;  /* where this cache is in the flags change log */
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
    if (kw_stamps_init(&c->stamps, STAMP_BUCKETS)) {
        free(c);
        return KW_ERR_NOMEM;
    }
    kw_follow_init(&c->flags_log, KW_CHANGE_FLAGS);
    atomic_store(&c->grace_us, DEFAULT_GRACE_US);
    for (int i = 0; i < SHARDS; i++) {
        c->shards[i].slots = calloc(c->per_shard, sizeof(struct set *));
        if (!c->shards[i].slots) {
            for (int j = 0; j < i; j++) free(c->shards[j].slots);
            kw_follow_destroy(&c->flags_log);
            kw_stamps_destroy(&c->stamps);
            free(c);
            return KW_ERR_NOMEM;
        }
        pthread_rwlock_init(&c->shards[i].lock, NULL);
    }
    *out = c;
    return KW_OK;
}

static void prepared_free(kw_flag_prepared *p, size_t n)
{
    for (size_t i = 0; i < n; i++) kw_flag_prepared_free(&p[i]);
    free(p);
}

/* Every flag of the set read once for evaluation; a flag that cannot be
 * prepared (no key) stays zeroed, which evaluation refuses as it refuses
 * the definition. */
static int prepare_all(const json_t *flags, kw_flag_prepared **out, size_t *n_out)
{
    size_t n = json_array_size(flags);
    *out = NULL;
    *n_out = 0;
    if (!n) return KW_OK;
    kw_flag_prepared *p = calloc(n, sizeof *p);
    if (!p) return KW_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (kw_flag_prepare(json_array_get(flags, i), &p[i]) == KW_ERR_NOMEM) {
            prepared_free(p, n);
            return KW_ERR_NOMEM;
        }
    *out = p;
    *n_out = n;
    return KW_OK;
}

void kw_flagset_release(const kw_flagset *pub)
{
    struct set *s = (struct set *)pub;
    if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
    /* Before the body: an attachment may point into it. */
    for (int i = 0; i < KW_FLAGSET_SLOTS; i++) {
        kw_flagset_attachment *a = atomic_load_explicit(&s->attachment[i], memory_order_acquire);
        if (a) a->free_fn(a);
    }
    kw_flag_regexes_free((kw_flag_regexes *)s->pub.regexes);
    prepared_free((kw_flag_prepared *)s->pub.prepared, s->pub.n_prepared);
    json_decref((json_t *)s->pub.flags);
    json_decref((json_t *)s->pub.group_type_mapping);
    free((char *)s->pub.body);
    free(s);
}

kw_flagset_attachment *kw_flagset_attachment_get(const kw_flagset *pub, enum kw_flagset_slot slot)
{
    struct set *s = (struct set *)pub;
    return atomic_load_explicit(&s->attachment[slot], memory_order_acquire);
}

kw_flagset_attachment *kw_flagset_attach(const kw_flagset *pub, enum kw_flagset_slot slot,
                                         kw_flagset_attachment *a)
{
    struct set *s = (struct set *)pub;
    kw_flagset_attachment *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&s->attachment[slot], &expected, a,
                                                memory_order_acq_rel,
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
    kw_follow_destroy(&c->flags_log);
    kw_stamps_destroy(&c->stamps);
    free(c);
}

static struct shard *shard_of(kw_flagcache *c, int64_t project_id, struct set ***slot)
{
    uint64_t id = (uint64_t)project_id;
    struct shard *s = &c->shards[id % SHARDS];
    *slot = &s->slots[(id / SHARDS) % c->per_shard];
    return s;
}

void kw_flagcache_bump(kw_flagcache *c)
{
    if (c) kw_stamps_drop_all(&c->stamps);
}

void kw_flagcache_forget_project(kw_flagcache *c, int64_t project_id)
{
    if (c) kw_stamps_forget(&c->stamps, kw_stamps_id_int('p', project_id));
}

static void forget_change(void *ctx, const kw_change *ch)
{
    if (!strcmp(ch->kind, "flags"))
        kw_flagcache_forget_project(ctx, strtoll(ch->ref, NULL, 10));
    else
        kw_flagcache_bump(ctx);  /* a kind this version does not know */
}

static void forget_all(void *ctx) { kw_flagcache_bump(ctx); }

static const kw_follow_ops FLAGS_LOG = {forget_change, forget_all};

void kw_flagcache_poll(void *cache)
{
    kw_flagcache *c = cache;
    if (kw_follow_poll(&c->flags_log, c->store, &FLAGS_LOG, c) >= 0) {
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

void kw_flagcache_after_write(kw_flagcache *c)
{
    if (c && kw_follow_poll(&c->flags_log, c->store, &FLAGS_LOG, c) < 0) kw_flagcache_bump(c);
}

void kw_flagcache_set_grace(kw_flagcache *c, int64_t grace_us) { atomic_store(&c->grace_us, grace_us); }

/* Whether cached sets may be served: always while polls succeed (or none
 * ran: a cache without a poll hook), else within the grace window. */
static int trusted(kw_flagcache *c, int64_t now)
{
    if (!atomic_load_explicit(&c->poll_failing, memory_order_relaxed)) return 1;
    return now - atomic_load_explicit(&c->last_poll_ok, memory_order_relaxed) <=
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

/* One group type → its entry in the mapping, "<index>": "<name>". */
static int add_group_type(void *ctx, const kw_group_type *g)
{
    char index[24];
    snprintf(index, sizeof index, "%lld", (long long)g->index);
    return json_object_set_new(ctx, index, json_string(g->group_type)) ? KW_ERR_NOMEM : 0;
}

static int build(kw_flagcache *c, int64_t project_id, uint64_t ticket, struct set **out)
{
    json_t *flags = json_array(), *mapping = json_object();
    int rc = flags && mapping ? KW_OK : KW_ERR_NOMEM;
    if (!rc) rc = kw_store_flag_list(c->store, project_id, KW_FLAG_BY_KEY, 0, add_def, flags);
    if (!rc) rc = kw_store_group_types(c->store, project_id, add_group_type, mapping);
    /* The project's browser SDK settings ride along for the remote config
     * (a project that is gone has PostHog's defaults: nothing reads them). */
    kw_project_settings settings = {0, 1, 0};
    if (!rc) rc = kw_store_project_settings_get(c->store, project_id, &settings);
    if (rc == KW_ERR_NOTFOUND) rc = KW_OK;
    if (rc) {
        json_decref(flags);
        json_decref(mapping);
        return rc;
    }
    json_t *doc = json_pack("{s:O, s:O, s:{}, s:b, s:i}", "flags", flags, "group_type_mapping",
                            mapping, "cohorts", "minimal_flag_called_events", 0,
                            "property_matching_version", 1);
    /* The dump flags server_response.c uses, so the ETag is over the bytes it would send. */
    char *body = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    struct set *s = body ? calloc(1, sizeof *s) : NULL;
    char hash[KW_HASH_LEN + 1];
    kw_flag_regexes *regexes = NULL;
    kw_flag_prepared *prepared = NULL;
    size_t n_prepared = 0;
    if (!s || kw_key_hash(body, strlen(body), hash) || kw_flag_regexes_build(flags, &regexes) ||
        prepare_all(flags, &prepared, &n_prepared)) {
        kw_flag_regexes_free(regexes);
        free(s);
        free(body);
        json_decref(flags);
        json_decref(mapping);
        return KW_ERR_NOMEM;
    }
    s->pub.group_type_mapping = mapping;
    s->pub.settings = settings;
    s->pub.regexes = regexes;
    s->pub.prepared = prepared;
    s->pub.n_prepared = n_prepared;
    s->pub.project_id = project_id;
    s->pub.flags = flags;
    s->pub.body = body;
    s->pub.body_len = strlen(body);
    snprintf(s->pub.etag, sizeof s->pub.etag, "W/\"%.32s\"", hash + 7);  /* skip "sha256$" */
    atomic_store(&s->refs, 1);
    s->ticket = ticket;
    s->identity = kw_stamps_id_int('p', project_id);
    s->built_at = kw_now();
    *out = s;
    return KW_OK;
}

int kw_flagcache_get(kw_flagcache *c, int64_t project_id, const kw_flagset **out)
{
    return kw_flagcache_get_at(c, project_id, kw_now(), out);
}

/* One clock reading for the ttl and the grace (`now`), taken by the caller
 * when it has one: a reading costs ~20-26 ns on a KVM guest's clock, a
 * good part of a hit. */
int kw_flagcache_get_at(kw_flagcache *c, int64_t project_id, int64_t now,
                        const kw_flagset **out)
{
    struct set **slot;
    struct shard *sh = shard_of(c, project_id, &slot);
    uint64_t ticket = kw_stamps_ticket(&c->stamps);
    struct set *s;
    pthread_rwlock_rdlock(&sh->lock);
    s = *slot;
    if (s && s->pub.project_id == project_id &&
        kw_stamps_fresh(&c->stamps, s->ticket, s->identity, s->identity) &&
        (!c->ttl_us || now - s->built_at < c->ttl_us) && trusted(c, now))
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    else
        s = NULL;
    pthread_rwlock_unlock(&sh->lock);
    if (s) {
        atomic_fetch_add_explicit(&c->hits, 1, memory_order_relaxed);
        *out = &s->pub;
        return KW_OK;
    }
    /* Miss: `ticket` was taken before the store read, so a write landing
     * after this point makes the put below a no-op. */
    int rc = build(c, project_id, ticket, &s);
    if (rc) return rc;
    atomic_fetch_add_explicit(&c->builds, 1, memory_order_relaxed);
    struct set *old = NULL;
    pthread_rwlock_wrlock(&sh->lock);
    if (kw_stamps_fresh(&c->stamps, ticket, s->identity, s->identity)) {
        old = *slot;
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);  /* the cache's */
        *slot = s;
    }
    pthread_rwlock_unlock(&sh->lock);
    kw_flagset_release(old ? &old->pub : NULL);
    *out = &s->pub;
    return KW_OK;
}
