/* budget.c — admission for unauthenticated expensive work (see budget.h).
 *
 * Token buckets: one global, and a direct-mapped table of per-address
 * buckets.  All of it sits behind one mutex: only the rare legacy-hash
 * path takes it, never a request with a current-format key.  An address
 * colliding with another on a slot takes over the slot with a full bucket:
 * that can only let one address spend another's small burst, and the
 * global bucket and the one-at-a-time rule still hold whatever the table
 * says. */
#include "auth/budget.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "util/hash.h"

#define CLIENT_SLOTS 4096
#define ADDR_MAX 64

struct bucket {
    char addr[ADDR_MAX];
    double tokens;
    int64_t updated_at;
};

struct kw_budget {
    pthread_mutex_t lock;
    struct bucket global;
    int running;
    struct bucket clients[CLIENT_SLOTS];
};

int kw_budget_new(kw_budget **out)
{
    kw_budget *b = calloc(1, sizeof *b);
    if (!b) return KW_ERR_NOMEM;
    pthread_mutex_init(&b->lock, NULL);
    b->global.tokens = KW_BUDGET_GLOBAL_BURST;
    b->global.updated_at = kw_now();
    *out = b;
    return KW_OK;
}

void kw_budget_free(kw_budget *b)
{
    if (!b) return;
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* Refills `k` to `now`; answers 0 when a token is there, else the seconds
 * until one is. */
static int refill(struct bucket *k, int burst, int per_minute, int64_t now)
{
    const double rate = per_minute / 60e6;  /* tokens per microsecond */
    if (now > k->updated_at) {
        k->tokens += (double)(now - k->updated_at) * rate;
        if (k->tokens > burst) k->tokens = burst;
        k->updated_at = now;
    }
    if (k->tokens >= 1.0) return 0;
    int wait = (int)ceil((1.0 - k->tokens) / rate / 1e6 - 1e-6);
    return wait < 1 ? 1 : wait;
}

int kw_budget_take(kw_budget *b, const char *client, int64_t now)
{
    pthread_mutex_lock(&b->lock);
    struct bucket *c = NULL;
    if (client && *client) {
        c = &b->clients[kw_hash_text(KW_HASH_START, client) % CLIENT_SLOTS];
        if (strncmp(c->addr, client, ADDR_MAX - 1) != 0) {
            strncpy(c->addr, client, ADDR_MAX - 1);
            c->addr[ADDR_MAX - 1] = '\0';
            c->tokens = KW_BUDGET_CLIENT_BURST;
            c->updated_at = now;
        }
    }
    int wait = c ? refill(c, KW_BUDGET_CLIENT_BURST, KW_BUDGET_CLIENT_PER_MINUTE, now) : 0;
    int global = refill(&b->global, KW_BUDGET_GLOBAL_BURST, KW_BUDGET_GLOBAL_PER_MINUTE, now);
    if (global > wait) wait = global;
    if (!wait && b->running) wait = 1;
    if (!wait) {
        b->running = 1;
        b->global.tokens -= 1.0;
        if (c) c->tokens -= 1.0;
    }
    pthread_mutex_unlock(&b->lock);
    return wait;
}

void kw_budget_done(kw_budget *b)
{
    pthread_mutex_lock(&b->lock);
    b->running = 0;
    pthread_mutex_unlock(&b->lock);
}
