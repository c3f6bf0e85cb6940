/* slow.c — legacy (pbkdf2) key checks, and other costly hashing (the leak
 * report's PBKDF2, the console's argon2id sign-ins), off the request
 * threads.
 *
 * The server answers requests on a few threads (one per core), each
 * serving many connections in turn.  A legacy check costs two PBKDF2 runs
 * (about half a second); run on a request thread it would stall every
 * other connection that thread serves, so a stranger presenting made-up
 * legacy-length keys could slow valid requests down.  Instead the request
 * is suspended (server_hold.c), its check runs on this one thread, and the
 * request resumes with the answer.  One thread is enough: the verifier's
 * budget grants one legacy check at a time.  The server starts a second
 * queue of the same kind for endpoint queries (kw_http_slow.query), so a
 * query running up to its time limit never delays a legacy check. */
#include <stdlib.h>

#include "http/http.h"

struct kw_slow_queue {
    kw_verifier *verifier;
    void (*done)(kw_http_slow *job);
    kw_workq *work;
};

void kw_slow_run(kw_verifier *verifier, kw_http_slow *job)
{
    if (job->work) job->work(job);
    else job->result = kw_verify_personal_legacy(verifier, job->key, job->len, &job->principal);
}

void kw_http_slow_free(kw_http_slow *job)
{
    if (!job) return;
    if (job->release) job->release(job->ctx);
    free(job);
}

static void run(void *ctx, kw_workq_link *chain)
{
    kw_slow_queue *q = ctx;
    kw_http_slow *job = (kw_http_slow *)chain;  /* one at a time: the link is first */
    kw_slow_run(q->verifier, job);
    q->done(job);
}

int kw_slow_start(kw_verifier *verifier, void (*done)(kw_http_slow *job), kw_slow_queue **out)
{
    kw_slow_queue *q = calloc(1, sizeof *q);
    if (!q) return -1;
    q->verifier = verifier;
    q->done = done;
    kw_workq_ops ops = {.run = run, .ctx = q};
    if (kw_workq_start(&ops, &q->work)) {
        free(q);
        return -1;
    }
    *out = q;
    return 0;
}

int kw_slow_submit(kw_slow_queue *q, kw_http_slow *job)
{
    return kw_workq_submit(q->work, &job->link) ? -1 : 0;
}

void kw_slow_stop(kw_slow_queue *q)
{
    if (q) kw_workq_stop(q->work);
}

void kw_slow_free(kw_slow_queue *q)
{
    if (!q) return;
    kw_workq_free(q->work);
    free(q);
}
