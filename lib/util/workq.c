/* workq.c — one thread working through a queue of jobs (see workq.h). */
#include "keyward/workq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct kw_workq {
    kw_workq_ops ops;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    kw_workq_link *head, *tail;
    size_t queued;
    int stopping;
    /* A queued job must not wait: the thread stops gathering.  Kept until
     * the queue is empty (the job may be left after a partial take). */
    int hurry;
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

/* Lets jobs that can wait gather for ops.linger_us, so that one run serves
 * more of them; a job that cannot wait, a half-full queue or stop ends it
 * early.  Called locked, with a job queued. */
static void gather(kw_workq *q)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long long ns = until.tv_nsec + (long long)q->ops.linger_us * 1000;
    until.tv_sec += (time_t)(ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    while (!q->hurry && !q->stopping &&
           pthread_cond_timedwait(&q->wake, &q->lock, &until) != ETIMEDOUT) {
    }
}

static void *worker(void *arg)
{
    kw_workq *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->head && !q->stopping) pthread_cond_wait(&q->wake, &q->lock);
        if (!q->head) break;  /* stopping, and nothing is left to run */
        if (q->ops.linger_us && !q->hurry && !q->stopping) gather(q);
        kw_workq_link *chain = detach(q);
        if (!q->head) q->hurry = 0;
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
    /* gather's deadline is on the monotonic clock: a wall-clock step must
     * not stretch or cut it. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->wake, &attr);
    pthread_condattr_destroy(&attr);
    if (pthread_create(&q->thread, NULL, worker, q)) {
        pthread_cond_destroy(&q->wake);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return -1;
    }
    *out = q;
    return 0;
}

static int submit(kw_workq *q, kw_workq_link *job, int can_wait)
{
    pthread_mutex_lock(&q->lock);
    int rc = q->stopping ? -1 : q->ops.max_queued && q->queued >= q->ops.max_queued ? 1 : 0;
    if (rc == 0) {
        int was_empty = !q->head;
        job->next = NULL;
        if (q->tail) q->tail->next = job;
        else q->head = job;
        q->tail = job;
        q->queued++;
        /* A job that can wait leaves a gathering thread asleep (no wake-up
         * per job) until the queue is half full: gathering must never fill
         * it, or jobs would be refused. */
        if (!can_wait || (q->ops.max_queued && q->queued >= (q->ops.max_queued + 1) / 2))
            q->hurry = 1;
        if (q->hurry || was_empty) pthread_cond_signal(&q->wake);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int kw_workq_submit(kw_workq *q, kw_workq_link *job) { return submit(q, job, 0); }

int kw_workq_submit_can_wait(kw_workq *q, kw_workq_link *job) { return submit(q, job, 1); }

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
