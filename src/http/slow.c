/* slow.c — legacy (pbkdf2) key checks off the request threads.
 *
 * The server answers requests on a few threads (one per core), each
 * serving many connections in turn.  A legacy check costs two PBKDF2 runs
 * (about half a second); run on a request thread it would stall every
 * other connection that thread serves, so a stranger presenting made-up
 * legacy-length keys could slow valid requests down.  Instead the request
 * is suspended (server.c), its check runs on this one thread, and the
 * request resumes with the answer.  One thread is enough: the verifier's
 * budget grants one legacy check at a time. */
#include <pthread.h>
#include <stdlib.h>

#include "http/http.h"

struct kw_slow_queue {
    kw_verifier *verifier;
    void (*done)(kw_http_slow *job);
    pthread_mutex_t lock;
    pthread_cond_t wake;
    kw_http_slow *head, *tail;
    int stopping;
    pthread_t thread;
};

static void *worker(void *arg)
{
    kw_slow_queue *q = arg;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        while (!q->head && !q->stopping) pthread_cond_wait(&q->wake, &q->lock);
        kw_http_slow *job = q->head;
        if (!job) break;  /* stopping, and nothing is left to answer */
        q->head = job->next;
        if (!q->head) q->tail = NULL;
        pthread_mutex_unlock(&q->lock);
        job->result = kw_verify_personal_legacy(q->verifier, job->key, job->len, &job->principal);
        q->done(job);
        pthread_mutex_lock(&q->lock);
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

int kw_slow_start(kw_verifier *verifier, void (*done)(kw_http_slow *job), kw_slow_queue **out)
{
    kw_slow_queue *q = calloc(1, sizeof *q);
    if (!q) return -1;
    q->verifier = verifier;
    q->done = done;
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

int kw_slow_submit(kw_slow_queue *q, kw_http_slow *job)
{
    pthread_mutex_lock(&q->lock);
    int refused = q->stopping;
    if (!refused) {
        job->next = NULL;
        if (q->tail) q->tail->next = job;
        else q->head = job;
        q->tail = job;
        pthread_cond_signal(&q->wake);
    }
    pthread_mutex_unlock(&q->lock);
    return refused ? -1 : 0;
}

void kw_slow_stop(kw_slow_queue *q)
{
    if (!q) return;
    pthread_mutex_lock(&q->lock);
    int joined = q->stopping;
    q->stopping = 1;
    pthread_cond_signal(&q->wake);
    pthread_mutex_unlock(&q->lock);
    if (!joined) pthread_join(q->thread, NULL);
}

void kw_slow_free(kw_slow_queue *q)
{
    if (!q) return;
    kw_slow_stop(q);
    pthread_cond_destroy(&q->wake);
    pthread_mutex_destroy(&q->lock);
    free(q);
}
