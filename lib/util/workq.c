/* workq.c — one thread working through a queue of jobs (see workq.h). */
#include "keyward/workq.h"

#include <pthread.h>
#include <stdlib.h>

struct kw_workq {
    kw_workq_ops ops;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    kw_workq_link *head, *tail;
    size_t queued;
    int stopping;
    pthread_t thread;
};

/* Detaches the jobs `take` chose from the head.  Called locked, with a
 * job queued. */
static kw_workq_link *detach(kw_workq *q)
{
    size_t n = q->ops.take ? q->ops.take(q->ops.ctx, q->head) : 1;
    kw_workq_link *first = q->head, *last = first;
    for (size_t i = 1; i < n && last->next; i++) last = last->next;
    for (kw_workq_link *j = first; j != last->next; j = j->next) q->queued--;
    q->head = last->next;
    if (!q->head) q->tail = NULL;
    last->next = NULL;
    return first;
}

static void *worker(void *arg)
{
    kw_workq *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->head && !q->stopping) pthread_cond_wait(&q->wake, &q->lock);
        if (!q->head) break;  /* stopping, and nothing is left to run */
        kw_workq_link *chain = detach(q);
        pthread_mutex_unlock(&q->lock);
        q->ops.run(q->ops.ctx, chain);
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int kw_workq_start(const kw_workq_ops *ops, kw_workq **out)
{
    kw_workq *q = calloc(1, sizeof *q);
    if (!q) return -1;
    q->ops = *ops;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->wake, NULL);
    if (pthread_create(&q->thread, NULL, worker, q)) {
        pthread_cond_destroy(&q->wake);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return -1;
    }
    *out = q;
    return 0;
}

int kw_workq_submit(kw_workq *q, kw_workq_link *job)
{
    pthread_mutex_lock(&q->lock);
    int rc = q->stopping ? -1 : q->ops.max_queued && q->queued >= q->ops.max_queued ? 1 : 0;
    if (rc == 0) {
        job->next = NULL;
        if (q->tail) q->tail->next = job;
        else q->head = job;
        q->tail = job;
        q->queued++;
        pthread_cond_signal(&q->wake);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void kw_workq_stop(kw_workq *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->lock);
    int joined = q->stopping;
    q->stopping = 1;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
    if (!joined) pthread_join(q->thread, NULL);
}

void kw_workq_free(kw_workq *q)
{
    if (!q) return;
    kw_workq_stop(q);
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q);
}
