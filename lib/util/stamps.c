/* stamps.c — invalidation by identity for the in-memory caches (see stamps.h). */
#include "util/stamps.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "keyward/keyward.h"

int kw_stamps_init(kw_stamps *s, unsigned buckets)
{
    unsigned n = 1;
    while (n < buckets) n <<= 1;
    s->bucket = calloc(n, sizeof *s->bucket);
    if (!s->bucket) return KW_ERR_NOMEM;
    s->mask = n - 1;
    atomic_store(&s->seq, 1);
    atomic_store(&s->floor, 1);
    return KW_OK;
}

void kw_stamps_destroy(kw_stamps *s)
{
    free((void *)s->bucket);
    s->bucket = NULL;
}

/* FNV-1a: identities are short, and the stamps only need them spread. */
uint64_t kw_stamps_id(char tag, const char *id)
{
    uint64_t h = 14695981039346656037ULL;
    h = (h ^ (unsigned char)tag) * 1099511628211ULL;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h ^ (h >> 29);
}

uint64_t kw_stamps_id_int(char tag, int64_t id)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, id);
    return kw_stamps_id(tag, text);
}

/* Raises *slot to `ticket` unless a concurrent stamp already went higher:
 * a plain store could lower it and revive entries that one made stale. */
static void raise_to(_Atomic uint64_t *slot, uint64_t ticket)
{
    uint64_t cur = atomic_load_explicit(slot, memory_order_relaxed);
    while (cur < ticket &&
           !atomic_compare_exchange_weak_explicit(slot, &cur, ticket, memory_order_acq_rel,
                                                  memory_order_relaxed))
        ;
}

void kw_stamps_drop_all(kw_stamps *s)
{
    raise_to(&s->floor, atomic_fetch_add_explicit(&s->seq, 1, memory_order_acq_rel) + 1);
}

void kw_stamps_forget(kw_stamps *s, uint64_t id)
{
    raise_to(&s->bucket[id & s->mask], atomic_fetch_add_explicit(&s->seq, 1, memory_order_acq_rel) + 1);
}
