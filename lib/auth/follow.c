/* follow.c — following the store's change log (see follow.h). */
#include "auth/follow.h"

#include "keyward/keyward.h"

/* More changes than this since the last poll are not read one by one: the
 * cache is dropped instead (a bulk write; a follower that slept). */
#define FOLLOW_MAX_BATCH 1000
/* Rows each follower keeps in the log behind the generation it has read,
 * pruning older ones; another instance further behind than this drops its
 * cache instead of reading what it missed. */
#define FOLLOW_KEEP 10000

void kw_follow_init(kw_follow *f, int stream)
{
    f->stream = stream;
    f->last = 0;
    f->seen = 0;
    f->pruned_through = 0;
    pthread_mutex_init(&f->lock, NULL);
}

void kw_follow_destroy(kw_follow *f) { pthread_mutex_destroy(&f->lock); }

struct apply_ctx {
    const kw_follow_ops *ops;
    void *ctx;
};

static int apply_one(void *arg, const kw_change *change)
{
    struct apply_ctx *a = arg;
    a->ops->apply(a->ctx, change);
    return 0;
}

static int read_generation(kw_store *store, int stream, int64_t *g)
{
    return stream == KW_CHANGE_AUTH ? kw_store_auth_generation(store, g)
                                    : kw_store_flags_generation(store, g);
}

int kw_follow_poll(kw_follow *f, kw_store *store, const kw_follow_ops *ops, void *ctx)
{
    int64_t g;
    pthread_mutex_lock(&f->lock);
    int rc = read_generation(store, f->stream, &g);
    if (rc) goto out;
    if (f->seen && g == f->last) goto out;  /* rc = 0: nothing changed */
    if (!f->seen || g < f->last || g - f->last > FOLLOW_MAX_BATCH) {
        ops->drop_all(ctx);
    } else {
        struct apply_ctx a = {ops, ctx};
        int n = kw_store_changes(store, f->stream, f->last, g, apply_one, &a);
        if (n < 0) {
            rc = n;
            goto out;  /* keep our place: the next poll reads them again */
        }
        if (n != g - f->last) ops->drop_all(ctx);  /* pruned: some are unknown */
    }
    f->last = g;
    f->seen = 1;
    if (g - f->pruned_through > 2 * FOLLOW_KEEP) {
        /* Best effort: a failed prune is retried at the next change. */
        if (kw_store_changes_prune(store, f->stream, g - FOLLOW_KEEP) == KW_OK)
            f->pruned_through = g - FOLLOW_KEEP;
    }
    rc = 1;
out:
    pthread_mutex_unlock(&f->lock);
    return rc;
}
