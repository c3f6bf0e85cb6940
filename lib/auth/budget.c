/* budget.c — admission for unauthenticated expensive work (see budget.h).
 *
 * Token buckets: one global, and a direct-mapped table of per-address
 * buckets.  All of it sits behind one mutex: only rare unauthenticated
 * work takes it (legacy-hash checks, console password hashes, leak
 * reports), never a request with a current-format key.  An address
 * colliding with another on a slot takes over the slot with a full bucket:
 * that can only let one address spend another's small burst, and the
 * global bucket and the one-at-a-time rule still hold whatever the table
 * says. */
#include "auth/budget.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
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
    kw_budget_limits limits;
    struct bucket global;
    int running;
    struct bucket clients[CLIENT_SLOTS];
};

int kw_budget_new_limits(const kw_budget_limits *limits, kw_budget **out)
{
    kw_budget *b = calloc(1, sizeof *b);
    if (!b) return KW_ERR_NOMEM;
    pthread_mutex_init(&b->lock, NULL);
    b->limits = *limits;
    if (b->limits.max_running < 1) b->limits.max_running = 1;
    b->global.tokens = limits->global_burst;
    b->global.updated_at = kw_now();
    *out = b;
    return KW_OK;
}

int kw_budget_new(kw_budget **out)
{
    const kw_budget_limits legacy = {KW_BUDGET_GLOBAL_BURST, KW_BUDGET_GLOBAL_PER_MINUTE,
                                     KW_BUDGET_CLIENT_BURST, KW_BUDGET_CLIENT_PER_MINUTE, 1};
    return kw_budget_new_limits(&legacy, out);
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

/* The bucket name of an address: an IPv6 one by its /64 (one host holds
 * a whole /64, so counting its addresses apart would multiply its share);
 * anything else as it is. */
static void client_of(const char *ip, char out[ADDR_MAX])
{
    struct in6_addr a6;
    if (inet_pton(AF_INET6, ip, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
        memset(a6.s6_addr + 8, 0, 8);
        if (inet_ntop(AF_INET6, &a6, out, ADDR_MAX)) return;
    }
    snprintf(out, ADDR_MAX, "%s", ip);
}

enum admission { PEEK, TAKE, SPEND };

/* The answer of an admission (0 or seconds).  TAKE spends the tokens and
 * counts the unit as running; SPEND only spends them. */
static int admit(kw_budget *b, const char *ip, int64_t now, enum admission how)
{
    const kw_budget_limits *l = &b->limits;
    char client[ADDR_MAX] = "";
    if (ip && *ip) client_of(ip, client);
    pthread_mutex_lock(&b->lock);
    struct bucket *c = NULL;
    if (*client) {
        c = &b->clients[kw_hash_text(KW_HASH_START, client) % CLIENT_SLOTS];
        if (strcmp(c->addr, client) != 0) {
            memcpy(c->addr, client, sizeof c->addr);  /* client_of ended it */
            c->tokens = l->client_burst;
            c->updated_at = now;
        }
    }
    int wait = c ? refill(c, l->client_burst, l->client_per_minute, now) : 0;
    int global = refill(&b->global, l->global_burst, l->global_per_minute, now);
    if (global > wait) wait = global;
    if (!wait && how == TAKE && b->running >= l->max_running) wait = 1;
    if (!wait && how != PEEK) {
        if (how == TAKE) b->running++;
        b->global.tokens -= 1.0;
        if (c) c->tokens -= 1.0;
    }
    pthread_mutex_unlock(&b->lock);
    return wait;
}

int kw_budget_take(kw_budget *b, const char *client, int64_t now)
{
    return admit(b, client, now, TAKE);
}

int kw_budget_peek(kw_budget *b, const char *client, int64_t now)
{
    return admit(b, client, now, PEEK);
}

int kw_budget_spend(kw_budget *b, const char *client, int64_t now)
{
    return admit(b, client, now, SPEND);
}

void kw_budget_done(kw_budget *b)
{
    pthread_mutex_lock(&b->lock);
    if (b->running > 0) b->running--;
    pthread_mutex_unlock(&b->lock);
}
