/* stamps.h — invalidation by identity for the in-memory caches (internal).
 *
 * The verification cache and the flag definitions cache must forget what a
 * write changed — one key, one user's keys, one project's token or flags —
 * without dropping everything else: a revocation of key A must not cost key
 * B its cached answer (and with it the grace it would get if the database
 * went down next).  Scanning a 64K-slot table per write would work but
 * costs milliseconds; stamps cost one atomic load per identity on a hit.
 *
 * A counter hands out tickets.  A reader takes a ticket before it reads the
 * store and keeps it with what it caches.  Forgetting an identity stamps its
 * bucket (identity hash modulo a fixed size) with a newer ticket; an entry
 * is fresh while its ticket is no older than the stamps of the identities
 * it depends on and than the floor, which dropping everything raises.  Two
 * identities that share a bucket forget each other too: a spurious miss,
 * one store read, never a stale answer.  A write that lands between a
 * reader's ticket and its store read stamps a newer ticket than the
 * reader's, so what the reader caches is already stale. */
#ifndef KW_STAMPS_H
#define KW_STAMPS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct kw_stamps {
    _Atomic uint64_t seq;    /* the last ticket handed out; starts at 1 */
    _Atomic uint64_t floor;  /* entries with older tickets are all stale */
    unsigned mask;           /* buckets - 1 (a power of two) */
    _Atomic uint64_t *bucket;
} kw_stamps;

/* `buckets` is rounded up to a power of two. */
int kw_stamps_init(kw_stamps *s, unsigned buckets);
void kw_stamps_destroy(kw_stamps *s);

/* An identity: a tag naming its kind ('k' key, 'u' user, 'p' project…)
 * and its id as text.  Computed once when an entry is stored. */
uint64_t kw_stamps_id(char tag, const char *id);
uint64_t kw_stamps_id_int(char tag, int64_t id);

/* Taken before reading the store; 0 is never a ticket (empty slots). */
static inline uint64_t kw_stamps_ticket(kw_stamps *s)
{
    return atomic_load_explicit(&s->seq, memory_order_acquire);
}

/* Everything read before now is stale. */
void kw_stamps_drop_all(kw_stamps *s);
/* Everything depending on identity `id` read before now is stale. */
void kw_stamps_forget(kw_stamps *s, uint64_t id);

/* Whether an entry stored with `ticket`, depending on identities a and b
 * (pass the same one twice for one), is still fresh. */
static inline int kw_stamps_fresh(kw_stamps *s, uint64_t ticket, uint64_t a, uint64_t b)
{
    return ticket && ticket >= atomic_load_explicit(&s->floor, memory_order_acquire) &&
           ticket >= atomic_load_explicit(&s->bucket[a & s->mask], memory_order_acquire) &&
           ticket >= atomic_load_explicit(&s->bucket[b & s->mask], memory_order_acquire);
}

#endif
