/* flagcache.h — each project's flag definitions, kept in memory.
 *
 * The execution routes (GET /flags/definitions, POST /flags, /decide) are
 * polled by every SDK and called on every page load; a project's flags
 * change a few times a day.  So a project's live (non-deleted) flags are
 * read from the store once, serialized once as the /flags/definitions body
 * (with its ETag) and kept parsed for evaluation, until a flag write makes
 * them stale.  An unchanged project then costs a memory probe, not a query.
 *
 * Staleness is per project, as in the verification cache it is per key: the
 * store logs which project each flag write touched (triggers), and the
 * cache forgets just that project's set — at once after a local write
 * (kw_flagcache_after_write, called by lib/flags/flag.c through kw_call),
 * and within one poll for writes by other processes or instances
 * (kw_flagcache_poll, run by the verifier's maintenance thread every
 * 200 ms and on a flags notification).  Entries also expire after a TTL,
 * as a safety net.
 *
 * The project's group types are part of the set (the definitions' group
 * type mapping, and what evaluation maps a flag's aggregation index
 * through); their writes are logged as flag writes of the project, so a new
 * group type makes the set stale like a flag change.
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
    /* The project's group types, {"0": "company", …} (index → name), as
     * the body's group_type_mapping; shared like `flags`. */
    const json_t *group_type_mapping;
    /* The project's browser SDK settings (the remote config's switches),
     * kept here so that route reads no database either; a settings write
     * is logged as a flag write of the project. */
    kw_project_settings settings;
    const char *body;     /* the /flags/definitions response, compact JSON */
    size_t body_len;
    char etag[48];        /* W/"<32 hex of sha256(body)>" */
    /* The flags' regex patterns, compiled once for this version of them:
     * put it in the kw_flag_context of every evaluation of these flags. */
    const kw_flag_regexes *regexes;
    /* flags[i] read once for evaluation (kw_flag_evaluate_prepared):
     * n_prepared == the size of flags. */
    const kw_flag_prepared *prepared;
    size_t n_prepared;
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
/* The same at a time the caller has just read (kw_now()), such as the
 * principal's verified_at: one clock reading serves a whole request. */
int kw_flagcache_get_at(kw_flagcache *c, int64_t project_id, int64_t now,
                        const kw_flagset **out);
void kw_flagset_release(const kw_flagset *set);

/* Something derived from a set and kept with it for as long as the set
 * lives — the HTTP layer's ready-to-send definitions responses and the
 * pre-rendered pieces of its evaluation answers, so a poll of unchanged
 * flags builds nothing.  Embed this as the first member; free_fn runs
 * once, when the set's last reference is released (so never while a
 * request still holds the set).  A set has one slot per use. */
typedef struct kw_flagset_attachment {
    void (*free_fn)(struct kw_flagset_attachment *self);
} kw_flagset_attachment;
enum kw_flagset_slot {
    KW_FLAGSET_DEFINITIONS,  /* the /flags/definitions answers */
    KW_FLAGSET_EVALUATION,   /* the /flags answers' pieces */
    KW_FLAGSET_ADMIN_LIST,   /* the flag list route's rendered objects */
    KW_FLAGSET_SLOTS
};
/* The set's attachment in `slot`, or NULL. */
kw_flagset_attachment *kw_flagset_attachment_get(const kw_flagset *set, enum kw_flagset_slot slot);
/* Attaches `a` in `slot` unless another thread got there first; returns
 * the one attached.  When that is not `a`, `a` is the caller's to free. */
kw_flagset_attachment *kw_flagset_attach(const kw_flagset *set, enum kw_flagset_slot slot,
                                         kw_flagset_attachment *a);

/* A local flag write committed: reads the store's change log and forgets
 * the sets of the projects it names (every set if the log cannot be
 * read).  NULL is a no-op. */
void kw_flagcache_after_write(kw_flagcache *c);
/* Forgets one project's set. */
void kw_flagcache_forget_project(kw_flagcache *c, int64_t project_id);
/* Makes every cached set stale.  NULL is a no-op. */
void kw_flagcache_bump(kw_flagcache *c);
/* Reads the store's flags generation and, when it moved, the changes since
 * the last poll (see auth/follow.h).  A failed read (database
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
