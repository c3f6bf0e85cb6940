/* directory.c — the directory generation as last read (see directory.h).
 * One atomic value: readers (every @me request) load it without a lock;
 * writers raise it with a compare-and-swap so it never moves back. */
#include <stdatomic.h>
#include <stdlib.h>

#include "keyward/directory.h"
#include "keyward/keyward.h"

struct kw_directory {
    kw_store *store;
    _Atomic int64_t generation;
};

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

void kw_directory_poll(void *d) { kw_directory_refresh(d); }

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
    atomic_init(&d->generation, 0);
    int rc = kw_directory_refresh(d);
    if (rc) {
        free(d);
        return rc;
    }
    *out = d;
    return KW_OK;
}

void kw_directory_free(kw_directory *d) { free(d); }
