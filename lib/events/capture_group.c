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
 * A failed group transaction (a broken batch, the database going away) is
 * retried batch by batch, so each request gets its own outcome.  The
 * queue is bounded: when it is full the caller sheds the request (503
 * with Retry-After) instead of letting the backlog grow without limit. */
#include <pthread.h>
#include <stdlib.h>

#include "events/capture_batch.h"
#include "keyward/keyward.h"
#include "keyward/service.h"

/* At most this many events go into one transaction; the rest wait for the
 * next one (a transaction's size bounds how long the lock is held). */
#define GROUP_MAX_EVENTS 5000

struct kw_capture_group {
    kw_call call;  /* the store and caches; no actor: capture is not administration */
    size_t max_queued;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    kw_capture_batch *head, *tail;
    size_t queued;
    int stopping;
    pthread_t thread;
};

/* Stores a group in one transaction: KW_OK, or the first error (nothing
 * of the group is then stored). */
static int store_together(kw_capture_group *g, kw_capture_batch *first)
{
    kw_store *store = g->call.store;
    int rc = kw_store_begin(store);
    for (kw_capture_batch *b = first; !rc && b; b = b->next)
        if (b->n) rc = kw_store_events_insert(store, b->project_id, b->events, b->n);
    if (!rc) rc = kw_store_commit(store);
    if (rc) kw_store_rollback(store);
    return rc;
}

static void store_group(kw_capture_group *g, kw_capture_batch *first)
{
    int together = first->next ? store_together(g, first) : -1;
    kw_capture_batch *next;
    for (kw_capture_batch *b = first; b; b = next) {
        next = b->next;
        b->next = NULL;
        int rc;
        if (together == KW_OK) {
            kw_capture_batch_stored(&g->call, b);
            rc = KW_OK;
        } else {
            rc = kw_capture_store(&g->call, b);  /* alone: its own outcome */
        }
        b->done(b, rc, b->done_ctx);
    }
}

/* Takes the batches at the head of the queue up to GROUP_MAX_EVENTS
 * events (at least one batch).  Called with the lock held. */
static kw_capture_batch *take_group(kw_capture_group *g)
{
    kw_capture_batch *first = g->head, *last = first;
    size_t events = first->n;
    g->queued--;
    while (last->next && events + last->next->n <= GROUP_MAX_EVENTS) {
        last = last->next;
        events += last->n;
        g->queued--;
    }
    g->head = last->next;
    if (!g->head) g->tail = NULL;
    last->next = NULL;
    return first;
}

static void *committer(void *arg)
{
    kw_capture_group *g = arg;
    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (!g->head && !g->stopping) pthread_cond_wait(&g->wake, &g->lock);
        if (!g->head) break;  /* stopping, and nothing is left to store */
        kw_capture_batch *group = take_group(g);
        pthread_mutex_unlock(&g->lock);
        store_group(g, group);
        pthread_mutex_lock(&g->lock);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

int kw_capture_group_start(const kw_call *c, size_t max_queued, kw_capture_group **out)
{
    kw_capture_group *g = calloc(1, sizeof *g);
    if (!g) return KW_ERR_NOMEM;
    g->call = *c;
    g->call.actor = NULL;
    g->call.ip = NULL;
    g->max_queued = max_queued ? max_queued : 1;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->wake, NULL);
    if (pthread_create(&g->thread, NULL, committer, g)) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return KW_ERR_NOMEM;
    }
    *out = g;
    return KW_OK;
}

int kw_capture_group_submit(kw_capture_group *g, kw_capture_batch *b, kw_capture_done done,
                            void *ctx)
{
    pthread_mutex_lock(&g->lock);
    int rc = g->stopping ? KW_ERR_UNAVAILABLE : g->queued >= g->max_queued ? KW_ERR_LIMIT : KW_OK;
    if (rc == KW_OK) {
        b->next = NULL;
        b->done = done;
        b->done_ctx = ctx;
        if (g->tail) g->tail->next = b;
        else g->head = b;
        g->tail = b;
        g->queued++;
        pthread_cond_signal(&g->wake);
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
}

void kw_capture_group_stop(kw_capture_group *g)
{
    if (!g) return;
    pthread_mutex_lock(&g->lock);
    int joined = g->stopping;
    g->stopping = 1;
    pthread_cond_signal(&g->wake);
    pthread_mutex_unlock(&g->lock);
    if (!joined) pthread_join(g->thread, NULL);
}

void kw_capture_group_free(kw_capture_group *g)
{
    if (!g) return;
    kw_capture_group_stop(g);
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}
