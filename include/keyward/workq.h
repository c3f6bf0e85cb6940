/* workq.h — one thread working through a queue of jobs, for work that
 * must not run on a request thread (a legacy key check, a group commit).
 *
 * Jobs are the caller's structs with a kw_workq_link as their first
 * member; the queue links them, never allocates.  The thread detaches as
 * many jobs from the head as `take` says (by default one) and runs them,
 * lock released: submitters are never kept waiting by a running job.  The
 * lifecycle is the part callers got wrong before, so it is here once:
 * stop refuses new jobs, lets the thread finish every queued one, and
 * joins it; free comes after stop, once no thread can submit. */
#ifndef KEYWARD_WORKQ_H
#define KEYWARD_WORKQ_H

#include <stddef.h>

typedef struct kw_workq_link {
    struct kw_workq_link *next;
} kw_workq_link;

typedef struct kw_workq kw_workq;

typedef struct kw_workq_ops {
    /* Runs a chain of jobs detached by take (linked by next, NULL-ended),
     * on the queue's thread; the jobs are run's from then on. */
    void (*run)(void *ctx, kw_workq_link *chain);
    /* How many jobs from the head (never empty) to run together, >= 1;
     * called with the queue locked.  NULL: one at a time. */
    size_t (*take)(void *ctx, const kw_workq_link *head);
    void *ctx;
    /* Submissions beyond this many waiting jobs are refused; 0: no bound. */
    size_t max_queued;
    /* How long (µs) the thread lets jobs submitted with
     * kw_workq_submit_can_wait gather before it runs them, so that one run
     * serves more; 0: it runs them at once.  A job submitted with
     * kw_workq_submit, a half-full queue or stop ends the wait. */
    unsigned linger_us;
} kw_workq_ops;

/* Starts the thread: 0, or -1 (no memory or no thread). */
int kw_workq_start(const kw_workq_ops *ops, kw_workq **out);
/* Queues a job: 0; 1 when the queue is full; -1 once stopping.  A refused
 * job stays the caller's. */
int kw_workq_submit(kw_workq *q, kw_workq_link *job);
/* The same for a job that may wait up to ops.linger_us for others to join
 * its run (nobody is waiting on it). */
int kw_workq_submit_can_wait(kw_workq *q, kw_workq_link *job);
/* Refuses new jobs, runs every queued one, joins the thread.  Idempotent;
 * NULL is a no-op. */
void kw_workq_stop(kw_workq *q);
/* Stops it if needed and frees it.  NULL is a no-op. */
void kw_workq_free(kw_workq *q);

#endif
