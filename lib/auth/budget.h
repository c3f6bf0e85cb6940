/* budget.h — a bound on work anyone can make the server do without a
 * valid credential (internal).
 *
 * Keys imported from PostHog may be stored as pbkdf2_sha256: checking a
 * made-up legacy-length phx_ against them costs two PBKDF2 runs (a quarter
 * of a second of CPU) on the request's thread, and the caller needs no
 * credential to make us do it.  kw_budget admits that work under three
 * bounds at once, separate from every other request: one at a time in the
 * whole process (so at most one HTTP thread is ever busy with it), a small
 * global rate, and a smaller rate per client address.  Once spent, the
 * caller is told to come back later instead of being made to wait, so a
 * flood of guesses costs a table probe each.  The same admission, with
 * its own bounds (kw_budget_limits), meters the console's password
 * hashes and the leak-report endpoint. */
#ifndef KW_BUDGET_H
#define KW_BUDGET_H

#include <stdint.h>

/* Global: a burst of this many, refilled at GLOBAL_PER_MINUTE. */
#define KW_BUDGET_GLOBAL_BURST 4
#define KW_BUDGET_GLOBAL_PER_MINUTE 30
/* Per client address. */
#define KW_BUDGET_CLIENT_BURST 3
#define KW_BUDGET_CLIENT_PER_MINUTE 6

typedef struct kw_budget kw_budget;

/* The bounds of one budget: a global and a per-address token bucket
 * (burst, refill per minute), and how many units may run at once. */
typedef struct kw_budget_limits {
    int global_burst, global_per_minute;
    int client_burst, client_per_minute;
    int max_running;
} kw_budget_limits;

/* The legacy-hash budget (the KW_BUDGET_* bounds, one at a time). */
int kw_budget_new(kw_budget **out);
int kw_budget_new_limits(const kw_budget_limits *limits, kw_budget **out);
void kw_budget_free(kw_budget *b);

/* Admits one unit of work for `client` (an address, an IPv6 one counted
 * by its /64; NULL or "" counts against the global bound only) at `now`
 * (microseconds).  0: admitted —
 * the caller runs the work, then calls kw_budget_done.  Otherwise the
 * whole seconds (≥ 1) after which asking again may succeed. */
int kw_budget_take(kw_budget *b, const char *client, int64_t now);
void kw_budget_done(kw_budget *b);
/* Admits and spends one unit like kw_budget_take, for work that is bounded
 * by the rates alone: nothing counts as running, so no kw_budget_done. */
int kw_budget_spend(kw_budget *b, const char *client, int64_t now);
/* Whether the rates would admit one unit now, taking nothing (the units
 * running do not count: a caller that queues its work asks this first, to
 * refuse at once what would only be refused later). */
int kw_budget_peek(kw_budget *b, const char *client, int64_t now);

#endif
