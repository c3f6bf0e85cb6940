/* flagcache.h — each project's flag definitions, kept in memory.
 *
 * The execution routes (GET /flags/definitions, POST /flags, /decide) are
 * polled by every SDK and called on every page load; a project's flags
 * change a few times a day.  So a project's live (non-deleted) flags are
 * read from the store once, serialized once as the /flags/definitions body
 * (with its ETag) and kept parsed for evaluation, until a flag write makes
 * them stale.  An unchanged project then costs a memory probe, not a query.
 *
 * Staleness is by generation, as in the verification cache: a local flag
 * write bumps the cache's generation at once (kw_flagcache_bump, called by
 * lib/flag.c through kw_call), and writes by other processes or instances
 * are noticed within one poll of the store's flags generation (a counter
 * bumped by triggers; kw_flagcache_poll, run by the verifier's maintenance
 * thread every 200 ms).  Entries also expire after a TTL, as a safety net.
 *
 * A kw_flagset is immutable once published and reference counted: readers
 * take a reference under the shard's read lock and release it when done,
 * so a rebuild never frees what a request is still reading. */
#ifndef KEYWARD_FLAGCACHE_H
#define KEYWARD_FLAGCACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "keyward/flags.h"
#include "keyward/store.h"

typedef struct kw_flagcache kw_flagcache;

typedef struct kw_flagset {
    int64_t project_id;
    /* Array of flag definition objects in PostHog's shape, ordered by key.
     * Shared between threads: read it, never modify, incref or decref it
     * (jansson's reference counts are not atomic), and copy what you put
     * in a response. */
    const json_t *flags;
    const char *body;     /* the /flags/definitions response, compact JSON */
    size_t body_len;
    char etag[48];        /* W/"<32 hex of sha256(body)>" */
    /* The flags' regex patterns, compiled once for this version of them:
     * put it in the kw_flag_context of every evaluation of these flags. */
    const kw_flag_regexes *regexes;
} kw_flagset;

/* `slots` projects (rounded up to a multiple of the shard count; a project
 * whose slot is taken replaces the older entry); ttl_us bounds an entry's
 * life even without a write (0 = no bound). */
int kw_flagcache_new(kw_store *store, unsigned slots, int64_t ttl_us, kw_flagcache **out);
/* Frees the table; sets still referenced by callers stay valid until they
 * are released. */
void kw_flagcache_free(kw_flagcache *c);

/* The project's flags: from memory, or built with one store read on a
 * miss.  On KW_OK *out holds a reference: pass it to kw_flagset_release.
 * A project without flags is a set with an empty array. */
int kw_flagcache_get(kw_flagcache *c, int64_t project_id, const kw_flagset **out);
void kw_flagset_release(const kw_flagset *set);

/* Something derived from a set and kept with it for as long as the set
 * lives — the HTTP layer's ready-to-send responses, so a poll of
 * unchanged flags builds nothing.  Embed this as the first member;
 * free_fn runs once, when the set's last reference is released (so never
 * while a request still holds the set). */
typedef struct kw_flagset_attachment {
    void (*free_fn)(struct kw_flagset_attachment *self);
} kw_flagset_attachment;
/* The set's attachment, or NULL. */
kw_flagset_attachment *kw_flagset_attachment_get(const kw_flagset *set);
/* Attaches `a` unless another thread got there first; returns the one
 * attached.  When that is not `a`, `a` is the caller's to free. */
kw_flagset_attachment *kw_flagset_attach(const kw_flagset *set, kw_flagset_attachment *a);

/* A local flag write committed: every cached set is stale.  NULL is a no-op. */
void kw_flagcache_bump(kw_flagcache *c);
/* Feeds the store's flags generation; a change from the last value seen
 * makes every set stale.  Returns 1 when it did. */
int kw_flagcache_sync(kw_flagcache *c, int64_t store_generation);
/* Reads the store's flags generation and syncs.  A failed read (database
 * unreachable) keeps the sets: they are served for the grace period after
 * the last successful poll, then refused until a poll succeeds again.
 * `cache` is a kw_flagcache *: the signature of a poll hook
 * (kw_verifier_on_poll). */
void kw_flagcache_poll(void *cache);
/* The grace period (default 30 s, like the verification cache's). */
void kw_flagcache_set_grace(kw_flagcache *c, int64_t grace_us);

/* Counters, for tests and diagnostics: lookups answered from memory, and
 * sets built from the store. */
void kw_flagcache_stats(kw_flagcache *c, uint64_t *hits, uint64_t *builds);

#endif
