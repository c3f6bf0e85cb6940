/* capture_group.c — group commit for captured events.
 *
 * SDKs send many small batches at once.  Stored one request at a time,
 * every request is a transaction of its own: on SQLite the request threads
 * queue on the database's single write lock (whose busy handler sleeps in
 * steps of milliseconds), on PostgreSQL each commit waits for its own
 * WAL flush.  Here one thread stores whatever was queued while it stored
 * the previous group, in one transaction, and only then tells each request
 * it is done — so a request is answered only once its events are
 * committed, and one commit serves many requests.
 *
 * Consecutive batches of one project go to the store as one list of
 * events: on PostgreSQL one insert statement (one round trip) for them
 * all instead of one per request.
 *
 * A group refused by the database (a broken batch, a project deleted
 * meanwhile) is retried batch by batch, so each request gets its own
 * outcome.  A group that failed because the database is unavailable (down,
 * or its write lock held past the busy timeout) is not: one more wait per
 * request would make the k-th request of a group wait k times as long, and
 * the queue behind it longer still, until clients time out — and then
 * store events their SDKs send again.  Requests waiting for the outcome
 * get it at once (503 with Retry-After; nothing of theirs is stored);
 * those already answered (the ack window) get one more try together, which
 * a dropped connection's reconnect passes.  The queue is bounded: when it
 * is full the caller sheds the request (503 with Retry-After) instead of
 * letting the backlog grow without limit. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "events/capture_batch.h"
#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keyward/workq.h"

/* At most this many events go into one transaction; the rest wait for the
 * next one (a transaction's size bounds how long the lock is held). */
#define GROUP_MAX_EVENTS 5000

struct kw_capture_group {
    kw_call call;  /* the store and caches; no actor: capture is not administration */
    kw_workq *work;
    /* The events of a run of one project's batches, laid end to end;
     * grown as needed and kept (only the group's thread uses it). */
    kw_event *run;
    size_t run_cap;
    _Atomic size_t held_bytes;  /* of the batches submitted and not yet done */
};

/* A queued batch from its link (the batch's first member). */
static kw_capture_batch *batch_of(kw_workq_link *link) { return (kw_capture_batch *)link; }
static size_t events_of(const kw_workq_link *link) { return ((const kw_capture_batch *)link)->n; }

/* Inserts the events of the batches from `b` up to `end` (all of one
 * project): as one list when there are several batches.  A group holds at
 * most GROUP_MAX_EVENTS events, so the list is bounded. */
static int insert_run(kw_capture_group *g, kw_capture_batch *b, kw_capture_batch *end)
{
    if (batch_of(b->link.next) == end) return kw_store_events_insert(g->call.store, b->project_id,
                                                                     b->events, b->n);
    size_t total = 0;
    for (kw_capture_batch *x = b; x != end; x = batch_of(x->link.next)) total += x->n;
    if (total > g->run_cap) {
        kw_event *grown = realloc(g->run, total * sizeof *grown);
        if (!grown) return KW_ERR_NOMEM;
        g->run = grown;
        g->run_cap = total;
    }
    size_t at = 0;
    for (kw_capture_batch *x = b; x != end; x = batch_of(x->link.next)) {
        if (x->n) memcpy(g->run + at, x->events, x->n * sizeof *x->events);
        at += x->n;
    }
    return kw_store_events_insert(g->call.store, b->project_id, g->run, total);
}

/* The first batch after b's run of batches of b's project (NULL: none). */
static kw_capture_batch *run_end(kw_capture_batch *b)
{
    kw_capture_batch *end = batch_of(b->link.next);
    while (end && end->project_id == b->project_id) end = batch_of(end->link.next);
    return end;
}

/* Stores a group in one transaction: KW_OK, or the first error (nothing
 * of the group is then stored). */
static int store_together(kw_capture_group *g, kw_capture_batch *first)
{
    kw_store *store = g->call.store;
    kw_capture_batch *end = run_end(first);
    /* One project's batches are one insert, and that is atomic by itself
     * (one statement on PostgreSQL, its own transaction on SQLite): on
     * PostgreSQL a BEGIN and a COMMIT around it would add two round trips
     * (and two wake-ups of the database backend) to every group. */
    if (!end) return insert_run(g, first, NULL);
    int rc = kw_store_begin(store);
    for (kw_capture_batch *b = first; !rc && b; b = end) {
        end = run_end(b);
        rc = insert_run(g, b, end);
    }
    if (!rc) rc = kw_store_commit(store);
    if (rc) kw_store_rollback(store);
    return rc;
}

/* Hands b its outcome (b leaves the group's chain). */
static void finish(kw_capture_group *g, kw_capture_batch *b, int rc)
{
    size_t bytes = b->bytes;
    b->link.next = NULL;
    if (rc == KW_OK) kw_capture_batch_stored(&g->call, b);
    b->done(b, rc, b->done_ctx);  /* which frees b */
    atomic_fetch_sub_explicit(&g->held_bytes, bytes, memory_order_relaxed);
}

/* Answers the batches whose requests wait for their outcome with rc and
 * returns the chain of the others (answered already), in order. */
static kw_capture_batch *fail_waiting(kw_capture_group *g, kw_capture_batch *first, int rc)
{
    kw_capture_batch *kept = NULL, **tail = &kept, *next;
    for (kw_capture_batch *b = first; b; b = next) {
        next = batch_of(b->link.next);
        if (b->answered) {
            *tail = b;
            tail = (kw_capture_batch **)&b->link.next;
        } else {
            finish(g, b, rc);
        }
    }
    *tail = NULL;
    return kept;
}

/* The work queue's job: a group of batches (see take_group). */
static void store_group(void *ctx, kw_workq_link *chain)
{
    kw_capture_group *g = ctx;
    kw_capture_batch *first = batch_of(chain), *next;
    int rc = store_together(g, first);
    if (rc == KW_ERR_UNAVAILABLE) {
        first = fail_waiting(g, first, rc);
        if (!first) return;
        rc = store_together(g, first);
    }
    /* Refused as a group of several: each alone, for its own outcome —
     * until the database turns out unavailable, which then answers the
     * rest at once, as above. */
    int alone = rc != KW_OK && rc != KW_ERR_UNAVAILABLE && first->link.next;
    for (kw_capture_batch *b = first; b; b = next) {
        next = batch_of(b->link.next);
        b->link.next = NULL;
        int own = kw_capture_refusal(&g->call, b, alone ? store_together(g, b) : rc);
        if (own == KW_ERR_UNAVAILABLE) alone = 0, rc = own;
        finish(g, b, own);
    }
}

/* The batches at the head of the queue up to GROUP_MAX_EVENTS events (at
 * least one batch).  Called with the queue locked. */
static size_t take_group(void *ctx, const kw_workq_link *head)
{
    (void)ctx;
    size_t n = 1, events = events_of(head);
    for (const kw_workq_link *l = head->next; l && events + events_of(l) <= GROUP_MAX_EVENTS;
         l = l->next) {
        events += events_of(l);
        n++;
    }
    return n;
}

int kw_capture_group_start(const kw_call *c, size_t max_queued, kw_capture_group **out)
{
    kw_capture_group *g = calloc(1, sizeof *g);
    if (!g) return KW_ERR_NOMEM;
    g->call = *c;
    g->call.actor = NULL;
    g->call.ip = NULL;
    kw_workq_ops ops = {.run = store_group, .take = take_group, .ctx = g,
                        .max_queued = max_queued ? max_queued : 1,
                        .linger_us = KW_CAPTURE_GATHER_US};
    if (kw_workq_start(&ops, &g->work)) {
        free(g);
        return KW_ERR_NOMEM;
    }
    *out = g;
    return KW_OK;
}

static int submit(kw_capture_group *g, kw_capture_batch *b, kw_capture_done done, void *ctx,
                  int answered)
{
    b->done = done;
    b->done_ctx = ctx;
    b->answered = answered;
    size_t before = atomic_fetch_add_explicit(&g->held_bytes, b->bytes, memory_order_relaxed);
    int rc = before + b->bytes > KW_CAPTURE_QUEUE_BYTES ? 1
             : answered ? kw_workq_submit_can_wait(g->work, &b->link)
                        : kw_workq_submit(g->work, &b->link);
    if (rc) atomic_fetch_sub_explicit(&g->held_bytes, b->bytes, memory_order_relaxed);
    return rc < 0 ? KW_ERR_UNAVAILABLE : rc > 0 ? KW_ERR_LIMIT : KW_OK;
}

int kw_capture_group_submit(kw_capture_group *g, kw_capture_batch *b, kw_capture_done done,
                            void *ctx)
{
    return submit(g, b, done, ctx, 0);
}

int kw_capture_group_submit_answered(kw_capture_group *g, kw_capture_batch *b,
                                     kw_capture_done done, void *ctx)
{
    return submit(g, b, done, ctx, 1);
}

void kw_capture_group_stop(kw_capture_group *g)
{
    if (g) kw_workq_stop(g->work);
}

void kw_capture_group_free(kw_capture_group *g)
{
    if (!g) return;
    kw_workq_free(g->work);
    free(g->run);
    free(g);
}
