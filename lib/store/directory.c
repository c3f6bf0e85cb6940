/* directory.c — the directory generation as last read (see directory.h),
 * and the reads every administrative request makes answered from it.
 *
 * The generation is one atomic value: readers (every @me request, every
 * project route) load it without a lock; writers raise it
 * with a compare-and-swap so it never moves back.
 *
 * A project route's policy reads the project (to learn its organization)
 * on every request: a query that costs as much as the rest of a cached
 * answer.  The projects table bumps the generation, so a row read at
 * generation G is current while G is still the last value read.  Each
 * thread keeps what it read in a small table of its own (no lock, no
 * sharing); an entry is used only for the same directory (by serial
 * number: an address can be reused), the same generation, and for at most
 * ENTRY_TTL_US.  The generation is taken
 * before the row is read, so an entry may hold a row newer than its
 * generation (dropped early), never one older.
 *
 * The caller's membership level, which grants access, is kept the same
 * way (memberships bump the generation too) but for at most MEMBER_TTL_US:
 * a departure or a demotion written by this process re-reads the
 * generation before it is answered, so it applies at once here; one
 * written elsewhere (another instance, the command line, SQL) applies at
 * this instance's next poll, and within MEMBER_TTL_US even if polls fail
 * — the bound every instance already keeps for a revoked key or a
 * deactivated user.  That bound counts from when the entry was last known
 * current, not from when it was read: a poll that reads the generation
 * unchanged proves every entry at it still current as of the poll's start,
 * so while polls succeed an entry is not read again (a read is a database
 * round trip on the request thread, and every connection that thread
 * serves waits for it), and when they fail entries age out as before.
 * A membership is still read again MEMBER_READ_MAX_US after its read, for
 * the writes no trigger sees.
 * A project's deletion is seen by this instance at
 * once (the write re-reads the generation) and by others within one poll
 * — and its keys and token are revoked through the change log either way. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/directory.h"
#include "keyward/keyward.h"
#include "util/hash.h"

struct kw_directory {
    kw_store *store;
    _Atomic int64_t generation;
    /* Unique in the process: names its per-thread entries.  Replaced when
     * the database's counter is seen to go back, which makes them all
     * stale at once. */
    _Atomic uint64_t serial;
    /* When the last successful poll started: every entry at the generation
     * held now was current then (see kw_directory_poll). */
    _Atomic int64_t confirmed_at;
};

static _Atomic uint64_t serials;

static void raise_to(kw_directory *d, int64_t g)
{
    int64_t seen = atomic_load(&d->generation);
    while (g > seen && !atomic_compare_exchange_weak(&d->generation, &seen, g)) {}
}

int kw_directory_refresh(kw_directory *d)
{
    if (!d) return KW_OK;
    int64_t g = 0;
    int rc = kw_store_directory_generation(d->store, &g);
    if (!rc) raise_to(d, g);
    return rc;
}

/* The poll is where a counter that went back shows.  The value held
 * before the poll reads was itself read from the database, whose counter
 * only grows, so a poll that reads less means the database was restored
 * (or replaced); comparing with the value held before the read, not after,
 * keeps a raise by a concurrent commit from looking like one.  Values read
 * before and after a restore are not comparable: a new serial makes every
 * kept entry stale (stored before the generation, so a thread that sees
 * the new generation sees the new serial too), and the generation follows
 * the database down — unless something raised it meanwhile, in which case
 * the next poll looks again.  A second new serial after the lowering
 * retires whatever a lookup stamped between the two steps (the old
 * generation with the first new serial, over a row of the restored
 * database). */
void kw_directory_poll(void *arg)
{
    kw_directory *d = arg;
    if (!d) return;
    int64_t started = kw_now();
    int64_t held = atomic_load(&d->generation), g = 0;
    if (kw_store_directory_generation(d->store, &g)) return;
    if (g < held) {
        atomic_store(&d->serial, atomic_fetch_add(&serials, 1) + 1);
        atomic_compare_exchange_strong(&d->generation, &held, g);
        atomic_store(&d->serial, atomic_fetch_add(&serials, 1) + 1);
        return;
    }
    raise_to(d, g);
    /* No write to the directory committed between this read's snapshot
     * (taken after `started`) and any entry at g, so each was current at
     * `started`.  An entry at a higher generation (a request raised it
     * since) was read after that snapshot: `started` understates it too.
     * Stored after the raise, so a reader that sees this time sees the
     * raised generation (it loads them in the other order).  A plain
     * store: when two polls race, an earlier start stored last only
     * shortens the entries' life, and after the clock is set back the
     * confirmation follows it instead of staying in the future. */
    atomic_store_explicit(&d->confirmed_at, started, memory_order_release);
}

int64_t kw_directory_generation(const kw_directory *d)
{
    return d ? atomic_load_explicit(&((kw_directory *)d)->generation, memory_order_acquire) : 0;
}

int kw_directory_new(kw_store *store, kw_directory **out)
{
    *out = NULL;
    kw_directory *d = calloc(1, sizeof *d);
    if (!d) return KW_ERR_NOMEM;
    d->store = store;
    atomic_init(&d->serial, atomic_fetch_add(&serials, 1) + 1);
    atomic_init(&d->generation, 0);
    atomic_init(&d->confirmed_at, 0);
    int rc = kw_directory_refresh(d);
    if (rc) {
        free(d);
        return rc;
    }
    *out = d;
    return KW_OK;
}

void kw_directory_free(kw_directory *d) { free(d); }

/* ---- reads kept per thread ------------------------------------------------ */

#define PROJECT_SLOTS 64
/* Enough that the callers active on one thread within a second rarely
 * evict each other (~16 KB per thread). */
#define MEMBER_SLOTS 256
/* Bounds an entry's life even if a bump were missed (a write outside the
 * triggers' tables): the same order as the cross-instance revocation
 * window, not a correctness crutch. */
#define ENTRY_TTL_US ((int64_t)60 * 1000000)
/* A membership grants access: kept no longer than a revoked key may be
 * honoured by another instance after its last successful poll. */
#define MEMBER_TTL_US ((int64_t)1000000)
/* ... and read again this long after it was read even while polls keep
 * confirming it: what a write the triggers do not see (PostgreSQL's
 * TRUNCATE, triggers disabled by a restore or replication, a restored
 * database whose counter lands on the value held) leaves behind is
 * bounded.  One re-read per caller and thread every ten seconds instead
 * of every second. */
#define MEMBER_READ_MAX_US ((int64_t)10 * 1000000)

/* What every kept read records besides its answer: the directory (by
 * serial), the generation and the time it was read at, and whether it
 * found the row. */
struct kept_read {
    uint64_t directory;  /* its serial; 0 = empty */
    int64_t generation;
    int64_t read_at;
    int rc;  /* KW_OK or KW_ERR_NOTFOUND */
};

struct project_entry {
    struct kept_read kept;
    int64_t id;
    kw_project project;
};

struct member_entry {
    struct kept_read kept;
    int64_t user_id;
    char org_id[KW_ID_LEN + 1];
    int level;  /* only when kept.rc is KW_OK; otherwise not a member */
};

struct thread_reads {
    struct project_entry projects[PROJECT_SLOTS];
    struct member_entry members[MEMBER_SLOTS];
};

static pthread_key_t reads_key;
static pthread_once_t reads_once = PTHREAD_ONCE_INIT;
static int reads_key_ok;

static void reads_key_make(void) { reads_key_ok = pthread_key_create(&reads_key, free) == 0; }

/* This thread's entries, made on first use; NULL without memory. */
static struct thread_reads *thread_reads(void)
{
    pthread_once(&reads_once, reads_key_make);
    if (!reads_key_ok) return NULL;
    struct thread_reads *t = pthread_getspecific(reads_key);
    if (t) return t;
    t = calloc(1, sizeof *t);
    if (t && pthread_setspecific(reads_key, t)) {
        free(t);
        t = NULL;
    }
    return t;
}

/* What entries are checked against, loaded once per lookup: the
 * confirmation before the generation (see kw_directory_poll). */
struct directory_view {
    int64_t confirmed_at;
    int64_t generation;
    uint64_t serial;
    int settled;  /* the generation did not move while serial was loaded */
    int64_t now;
};

/* The serial after the generation (a restore stores them in the other
 * order), and both before any read this lookup makes: an entry is stamped
 * with them, so a restore seen during the read leaves it stale.  When the
 * generation moved meanwhile the pair may not belong together: nothing is
 * used or kept on this lookup. */
static struct directory_view view_of(const kw_directory *d)
{
    struct directory_view v;
    v.confirmed_at = atomic_load_explicit(&((kw_directory *)d)->confirmed_at, memory_order_acquire);
    v.generation = kw_directory_generation(d);
    v.serial = atomic_load_explicit(&((kw_directory *)d)->serial, memory_order_acquire);
    v.settled = kw_directory_generation(d) == v.generation;
    v.now = kw_now();
    return v;
}

/* Current: same directory and generation, known current (read, or
 * confirmed by a poll) less than ttl ago and read less than max_age ago —
 * never when either time is ahead of the clock (set back since): the
 * entry is read again. */
static int kept_current(const struct kept_read *k, const struct directory_view *v, int64_t ttl,
                        int64_t max_age)
{
    int64_t known = k->read_at > v->confirmed_at ? k->read_at : v->confirmed_at;
    return v->settled && k->directory == v->serial && k->generation == v->generation &&
           v->now >= known &&
           v->now - known < ttl && v->now - k->read_at < max_age;
}

static void kept_stamp(struct kept_read *k, const struct directory_view *v, int64_t generation,
                       int rc)
{
    k->directory = v->settled ? v->serial : 0;  /* 0: empty, never current */
    k->generation = generation;
    k->read_at = v->now;
    k->rc = rc;
}

/* Only answers are kept: a database error is retried next time. */
static int keepable(int rc) { return rc == KW_OK || rc == KW_ERR_NOTFOUND; }

int kw_directory_project(kw_directory *d, kw_store *store, int64_t id, kw_project *out)
{
    struct thread_reads *t = d ? thread_reads() : NULL;
    if (!t) return kw_store_project_get(store, id, out);
    struct directory_view v = view_of(d);
    struct project_entry *e = &t->projects[(uint64_t)id % PROJECT_SLOTS];
    /* At most ENTRY_TTL_US from its read: confirmations do not extend it. */
    if (e->id == id && kept_current(&e->kept, &v, ENTRY_TTL_US, ENTRY_TTL_US)) {
        if (e->kept.rc == KW_OK) *out = e->project;
        return e->kept.rc;
    }
    int rc = kw_store_project_get(store, id, out);
    if (keepable(rc)) {
        kept_stamp(&e->kept, &v, v.generation, rc);
        e->id = id;
        if (rc == KW_OK) e->project = *out;
    }
    return rc;
}

static size_t member_slot(int64_t user_id, const char *org_id)
{
    return (size_t)(kw_hash_text(KW_HASH_START ^ (uint64_t)user_id, org_id) % MEMBER_SLOTS);
}

int kw_directory_membership_level(kw_directory *d, kw_store *store, int64_t user_id,
                                  const char *org_id, int *level)
{
    size_t org_len = strlen(org_id);
    struct thread_reads *t = d && org_len <= KW_ID_LEN ? thread_reads() : NULL;
    if (!t) return kw_store_membership_level(store, user_id, org_id, level);
    struct directory_view v = view_of(d);
    struct member_entry *e = &t->members[member_slot(user_id, org_id)];
    if (e->user_id == user_id && strcmp(e->org_id, org_id) == 0 &&
        kept_current(&e->kept, &v, MEMBER_TTL_US, MEMBER_READ_MAX_US)) {
        if (e->kept.rc == KW_OK) *level = e->level;
        return e->kept.rc;
    }
    /* The row and the generation come from one statement, one snapshot:
     * the entry is current exactly while nothing has been seen to change
     * since, and raising the process's generation to it makes a change
     * this read saw (a departure) stale every older entry on every thread
     * before this request is answered. */
    int64_t seen = 0;
    int rc = kw_store_membership_level_at(store, user_id, org_id, level, &seen);
    if (keepable(rc)) {
        raise_to(d, seen);
        kept_stamp(&e->kept, &v, seen, rc);
        e->user_id = user_id;
        memcpy(e->org_id, org_id, org_len + 1);
        e->level = rc == KW_OK ? *level : 0;
    }
    return rc;
}
