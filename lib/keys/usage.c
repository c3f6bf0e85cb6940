/* usage.c — the per-key scope-usage table (see usage.h).
 *
 * Layout: SHARDS shards, each a small open-addressed array probed from a
 * hash of the key id over PROBE consecutive slots, behind one mutex per
 * shard (a note is a read-modify-write; the common case — a bit already
 * seen — returns after one compare).  The flush copies a shard's pending
 * entries into a buffer allocated once, clears their pending bits under the
 * lock, and writes after unlocking, so a request never waits on the
 * database; a failed write puts its bits back.  Deleted keys simply stop
 * being noted: their entries have nothing pending and are the first to be
 * evicted.
 *
 * Writes are batched across shards, FLUSH_BATCH keys per store call
 * (kw_store_key_scopes_used_many: one statement per key kind on
 * PostgreSQL, one transaction on SQLite).  One UPDATE per key made the
 * flush after a burst of first uses — e.g. the last one, at shutdown —
 * cost a round trip per key: about 3 s for 10,000 keys on PostgreSQL. */
#include "keyward/usage.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "util/memcommit.h"
#include "keyward/strbuf.h"

#define SHARDS 64
#define PROBE 8
/* Keys per store call: bounds a statement's size (and, on SQLite, how long
 * one transaction holds the write lock) while cutting round trips by as
 * much. */
#define FLUSH_BATCH 512

struct entry {
    char key_id[KW_ID_LEN + 1];  /* "" = empty */
    kw_key_kind kind;
    uint64_t seen_read, seen_write;        /* everything noted in this process */
    uint64_t pending_read, pending_write;  /* not yet in the store */
};

struct shard {
    pthread_mutex_t lock;
    struct entry *slots;
} __attribute__((aligned(64)));

struct kw_usage {
    struct shard shards[SHARDS];
    unsigned per_shard;
    pthread_mutex_t flush_lock;  /* one flush at a time; guards the rest below */
    struct entry *buf;           /* batch_cap entries being written */
    kw_scope_use *uses;          /* batch_cap: the store call's arguments */
    size_t *json_at;             /* batch_cap: each entry's list in json */
    char *json;                  /* the lists, one after another; grown */
    size_t json_cap;
    unsigned batch_cap;          /* FLUSH_BATCH - 1 + per_shard: a shard always fits */
    _Atomic uint64_t dropped;
};

int kw_usage_new(unsigned slots, kw_usage **out)
{
    kw_usage *u = calloc(1, sizeof *u);
    if (!u) return KW_ERR_NOMEM;
    u->per_shard = slots / SHARDS + (slots % SHARDS != 0);
    if (u->per_shard < PROBE) u->per_shard = PROBE;
    u->batch_cap = FLUSH_BATCH - 1 + u->per_shard;
    u->buf = calloc(u->batch_cap, sizeof *u->buf);
    u->uses = calloc(u->batch_cap, sizeof *u->uses);
    u->json_at = calloc(u->batch_cap, sizeof *u->json_at);
    int i = 0;
    for (; u->buf && u->uses && u->json_at && i < SHARDS; i++) {
        u->shards[i].slots = calloc(u->per_shard, sizeof(struct entry));
        if (!u->shards[i].slots) break;
        kw_mem_commit(u->shards[i].slots, u->per_shard * sizeof(struct entry));
        pthread_mutex_init(&u->shards[i].lock, NULL);
    }
    if (i < SHARDS) {
        for (int j = 0; j < i; j++) {
            free(u->shards[j].slots);
            pthread_mutex_destroy(&u->shards[j].lock);
        }
        free(u->buf);
        free(u->uses);
        free(u->json_at);
        free(u);
        return KW_ERR_NOMEM;
    }
    pthread_mutex_init(&u->flush_lock, NULL);
    *out = u;
    return KW_OK;
}

void kw_usage_free(kw_usage *u)
{
    if (!u) return;
    for (int i = 0; i < SHARDS; i++) {
        free(u->shards[i].slots);
        pthread_mutex_destroy(&u->shards[i].lock);
    }
    pthread_mutex_destroy(&u->flush_lock);
    free(u->buf);
    free(u->uses);
    free(u->json_at);
    free(u->json);
    free(u);
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The entry for key_id in shard s (lock held): found, an empty slot, or a
 * clean one to evict; NULL when the window is all pending work. */
static struct entry *find_slot(kw_usage *u, struct shard *s, uint64_t h, const char *key_id)
{
    struct entry *empty = NULL, *clean = NULL;
    for (unsigned i = 0; i < PROBE; i++) {
        struct entry *e = &s->slots[(h / SHARDS + i) % u->per_shard];
        if (!e->key_id[0]) {
            if (!empty) empty = e;
        } else if (strcmp(e->key_id, key_id) == 0) {
            return e;
        } else if (!clean && !e->pending_read && !e->pending_write) {
            clean = e;
        }
    }
    struct entry *e = empty ? empty : clean;
    if (e) {
        memset(e, 0, sizeof *e);
        snprintf(e->key_id, sizeof e->key_id, "%s", key_id);
    }
    return e;
}

static void note_bits(kw_usage *u, kw_key_kind kind, const char *key_id, uint64_t r, uint64_t w)
{
    uint64_t h = fnv1a(key_id);
    struct shard *s = &u->shards[h % SHARDS];
    pthread_mutex_lock(&s->lock);
    struct entry *e = find_slot(u, s, h, key_id);
    if (!e) {
        atomic_fetch_add_explicit(&u->dropped, 1, memory_order_relaxed);
    } else {
        e->kind = kind;
        e->pending_read |= r & ~e->seen_read;
        e->pending_write |= w & ~e->seen_write;
        e->seen_read |= r;
        e->seen_write |= w;
    }
    pthread_mutex_unlock(&s->lock);
}

void kw_usage_note(kw_usage *u, kw_key_kind kind, const char *key_id, int object,
                   kw_scope_action action)
{
    if (!u || !key_id || !*key_id || object < 0 || object >= 64) return;
    uint64_t bit = (uint64_t)1 << object;
    note_bits(u, kind, key_id, action == KW_SCOPE_READ ? bit : 0, action == KW_SCOPE_WRITE ? bit : 0);
}

uint64_t kw_usage_dropped(const kw_usage *u)
{
    return atomic_load(&((kw_usage *)u)->dropped);
}

int kw_usage_json(const kw_scopes *used, char *out, size_t size)
{
    /* Object names are appended in name order so the text is canonical. */
    int n = kw_scope_object_count();
    int order[64];
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(kw_scope_object_name(order[j - 1]),
                                         kw_scope_object_name(order[j])) > 0; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int first = 1;
    kw_strbuf sb;
    kw_sb_init(&sb, out, size);
    kw_sb_append(&sb, "[");
    for (int k = 0; k < n; k++) {
        uint64_t bit = (uint64_t)1 << order[k];
        for (int a = 0; a < 2; a++) {
            if (!((a ? used->write : used->read) & bit)) continue;
            kw_sb_appendf(&sb, "%s\"%s:%s\"", first ? "" : ",", kw_scope_object_name(order[k]),
                          a ? "write" : "read");
            first = 0;
        }
    }
    kw_sb_append(&sb, "]");
    return kw_sb_ok(&sb) ? KW_OK : KW_ERR_LIMIT;
}

/* Gives a failed write's bits back to its entry, so the next flush
 * retries them (lost only if the probe window has since filled up). */
static void put_back(kw_usage *u, const struct entry *e)
{
    uint64_t h = fnv1a(e->key_id);
    struct shard *s = &u->shards[h % SHARDS];
    pthread_mutex_lock(&s->lock);
    struct entry *back = find_slot(u, s, h, e->key_id);
    if (back) {
        back->kind = e->kind;
        back->pending_read |= e->pending_read;
        back->pending_write |= e->pending_write;
        back->seen_read |= e->pending_read;
        back->seen_write |= e->pending_write;
    }
    pthread_mutex_unlock(&s->lock);
}

/* Appends `text` to the json arena at *len (flush_lock held). */
static int json_put(kw_usage *u, size_t *len, const char *text)
{
    size_t n = strlen(text) + 1;
    if (*len + n > u->json_cap) {
        size_t cap = u->json_cap ? u->json_cap : 16384;
        while (cap < *len + n) cap *= 2;
        char *p = realloc(u->json, cap);
        if (!p) return KW_ERR_NOMEM;
        u->json = p;
        u->json_cap = cap;
    }
    memcpy(u->json + *len, text, n);
    *len += n;
    return KW_OK;
}

/* Writes buf[0..n) in one store call (flush_lock held). */
static int write_batch(kw_usage *u, kw_store *store, unsigned n)
{
    size_t len = 0;
    int rc = KW_OK;
    for (unsigned j = 0; !rc && j < n; j++) {
        const struct entry *e = &u->buf[j];
        kw_scopes used = {e->pending_read, e->pending_write, 0};
        char json[KW_JSON_LIST_MAX];
        u->json_at[j] = len;
        rc = kw_usage_json(&used, json, sizeof json);
        if (!rc) rc = json_put(u, &len, json);
    }
    /* Pointers into the arena only once it has stopped moving. */
    for (unsigned j = 0; !rc && j < n; j++)
        u->uses[j] = (kw_scope_use){u->buf[j].kind, u->buf[j].key_id, u->json + u->json_at[j]};
    if (!rc) rc = kw_store_key_scopes_used_many(store, u->uses, n);
    if (rc)
        for (unsigned j = 0; j < n; j++) put_back(u, &u->buf[j]);
    return rc;
}

int kw_usage_flush(kw_usage *u, kw_store *store)
{
    if (!u) return KW_OK;
    int first_error = KW_OK;
    unsigned n = 0;
    pthread_mutex_lock(&u->flush_lock);
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &u->shards[i];
        pthread_mutex_lock(&s->lock);
        for (unsigned j = 0; j < u->per_shard; j++) {
            struct entry *e = &s->slots[j];
            if (!e->key_id[0] || (!e->pending_read && !e->pending_write)) continue;
            u->buf[n++] = *e;
            e->pending_read = e->pending_write = 0;
        }
        pthread_mutex_unlock(&s->lock);
        if (n >= FLUSH_BATCH || (i == SHARDS - 1 && n)) {
            int rc = write_batch(u, store, n);
            if (rc && !first_error) first_error = rc;
            n = 0;
        }
    }
    pthread_mutex_unlock(&u->flush_lock);
    return first_error;
}
