/* leak_guard.c — what keeps the unauthenticated leak-report endpoint cheap
 * (see leak.h): a rate limit per address and in total, and a memory of recently
 * reported tokens — their first answer and, for legacy-length phx_, the
 * pbkdf2 forms that cost two PBKDF2 runs to compute.
 *
 * The memory never answers in place of a lookup: a token reported as
 * unknown may be imported a minute later, and a report of it then must
 * revoke it.  It only spares the PBKDF2 runs (the forms of a token never
 * change) and repeats the first answer when nothing live is found.
 *
 * It is a fixed, direct-mapped table keyed by the token's sha256 (never
 * the token), behind one mutex: reports are rare, and a report of 1000
 * tokens takes it 2000 times, which is nothing next to the lookups.  A
 * collision forgets the older entry, which only costs its PBKDF2 runs
 * again.  Per instance: behind a load balancer another instance computes
 * the forms once itself. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/budget.h"
#include "keyward/keyward.h"
#include "keyward/leak.h"

#define MEMO_SLOTS 8192
/* How long an answer is remembered. */
#define MEMO_TTL_US ((int64_t)3600 * 1000000)

struct memo {
    kw_leak_memo m;
    int64_t at;  /* 0: empty */
};

struct kw_leak_guard {
    kw_budget *rate;  /* per client address (IPv6: per /64) and in total */
    pthread_mutex_t lock;
    struct memo memo[MEMO_SLOTS];
};

int kw_leak_guard_new(kw_leak_guard **out)
{
    kw_leak_guard *g = calloc(1, sizeof *g);
    if (!g) return KW_ERR_NOMEM;
    const kw_budget_limits limits = {KW_LEAK_REPORTS_PER_MINUTE_ALL / 4, KW_LEAK_REPORTS_PER_MINUTE_ALL,
                                     KW_LEAK_REPORTS_PER_MINUTE, KW_LEAK_REPORTS_PER_MINUTE, 1};
    int rc = kw_budget_new_limits(&limits, &g->rate);
    if (rc) {
        free(g);
        return rc;
    }
    pthread_mutex_init(&g->lock, NULL);
    *out = g;
    return KW_OK;
}

void kw_leak_guard_free(kw_leak_guard *g)
{
    if (!g) return;
    kw_budget_free(g->rate);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

int kw_leak_guard_admit(kw_leak_guard *g, const char *client, int64_t now)
{
    if (!g) return 0;
    return kw_budget_spend(g->rate, client && *client ? client : "-", now);
}

static struct memo *slot(kw_leak_guard *g, const char *token_hash)
{
    /* The hash is hex sha256: its first digits are already uniform. */
    char head[9] = {0};
    memcpy(head, token_hash, 8);
    return &g->memo[strtoul(head, NULL, 16) % MEMO_SLOTS];
}

int kw_leak_guard_recall(kw_leak_guard *g, const char *token_hash, int64_t now,
                         kw_leak_memo *out)
{
    if (!g) return 0;
    int found = 0;
    pthread_mutex_lock(&g->lock);
    struct memo *e = slot(g, token_hash);
    if (e->at && now - e->at < MEMO_TTL_US && strcmp(e->m.first.token_hash, token_hash) == 0) {
        *out = e->m;
        found = 1;
    }
    pthread_mutex_unlock(&g->lock);
    return found;
}

void kw_leak_guard_remember(kw_leak_guard *g, const kw_leak_memo *m, int64_t now)
{
    if (!g) return;
    pthread_mutex_lock(&g->lock);
    struct memo *e = slot(g, m->first.token_hash);
    e->m = *m;
    e->at = now;
    pthread_mutex_unlock(&g->lock);
}
