/* webhook_send.c — delivers the webhook outbox: a few threads per
 * `keyward serve` claim due rows, POST each signed, and record the answer.
 *
 * Nothing is held in memory between attempts: a claim moves the row a
 * lease ahead in the database, the result sets its next attempt (or closes
 * it), so a restart or a SIGKILL loses nothing and at worst repeats one
 * delivery (the receiver sees the same webhook-id and drops it).  With
 * several instances each claim takes a different row (KW_SQL_OUTBOX_CLAIM).
 *
 * One organization's receiver must not delay the others'.  An attempt can
 * take TOTAL_TIMEOUT_MS, so: a claim holds the row's webhook (no other
 * sender, here or in another instance, attempts it meanwhile), a failed
 * attempt holds the whole webhook until its next retry (its backoff grows
 * with its consecutive failures, whatever number of rows it has queued),
 * webhooks without failures are claimed first, and SENDERS threads work at
 * once.  A receiver that never answers thus costs one thread one attempt
 * per backoff step, and other webhooks' events go out on the other threads.
 *
 * One of the threads also sweeps for keys that are about to expire or have
 * expired (kw_webhook_expiry_sweep): those events come from no write.  It
 * is the server's periodic housekeeping too: failed console sign-ins that
 * have left the login window are deleted there, whatever their key.
 *
 * SSRF: a webhook URL is chosen by an organization admin, and keyward
 * connects from inside the operator's network.  Only http and https are
 * ever spoken, redirects are not followed, proxies from the environment
 * are not used, and unless --webhook-allow-private is given the address
 * each connection actually goes to (after DNS, so a name cannot be
 * rebound to an internal address between check and use) must be a public
 * one (kw_webhook_address_public).  A refused address and a name that does
 * not resolve read the same in the delivery log, so the log cannot be used
 * to learn which internal names exist. */
#include "webhook_send.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "keyward/keyward.h"
#include "keyward/metrics.h"
#include "keyward/session.h"
#include "keyward/webhook.h"
#include "logger.h"

/* Threads per instance: with one, a receiver that never answers takes
 * the instance's whole delivery time while it is being tried. */
#define SENDERS 4
#define POLL_MS 250
/* The other threads poll less when idle (each claim is a write); a thread
 * that finds work wakes another, so a backlog fans out at once. */
#define IDLE_POLL_MS 2000
#define ERROR_WAIT_MS 1000
#define CONNECT_TIMEOUT_MS 5000L
#define TOTAL_TIMEOUT_MS 10000L
/* Keys that crossed their expiry-notice lines are looked for this often
 * (an indexed-free scan of keys with an expiry: cheap at keyward's sizes). */
#define SWEEP_EVERY_US ((int64_t)2 * 1000000)
/* Finished rows past the delivery log's retention go this often. */
#define PRUNE_EVERY_US ((int64_t)3600 * 1000000)
/* Rows past their day that a failing webhook's hold kept waiting are
 * closed this often. */
#define EXPIRE_EVERY_US ((int64_t)60 * 1000000)
/* Failed sign-ins past the login window go this often, LOGIN_SWEEP_BATCH
 * rows per statement; a full batch is followed by another at the next
 * pass, so a backlog drains without one long hold of the write lock. */
#define LOGIN_SWEEP_EVERY_US ((int64_t)60 * 1000000)
#define LOGIN_SWEEP_BATCH 1000
/* Longer than any attempt, so a claimed row is never taken by a second
 * sender while the first still works on it. */
#define LEASE_US ((int64_t)(TOTAL_TIMEOUT_MS + 20000) * 1000)

struct sender_arg {
    struct kw_webhook_sender *s;
    int first;  /* this thread does the chores */
};

struct kw_webhook_sender {
    kw_store *store;
    kw_webhook_sender_opts opts;
    pthread_t threads[SENDERS];
    struct sender_arg args[SENDERS];
    int started;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_int stopping;
};

/* The same words for a refused address and a name that does not resolve. */
#define ADDRESS_REFUSED \
    "address not allowed or not resolvable (private addresses need serve --webhook-allow-private)"

struct attempt {
    const kw_webhook_sender *s;
    int refused_address;
};

static curl_socket_t open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct attempt *at = ctx;
    (void)purpose;
    if (!at->s->opts.allow_private && !kw_webhook_address_public(&addr->addr)) {
        at->refused_address = 1;
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

static size_t discard(char *data, size_t size, size_t n, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * n;
}

/* Aborts the transfer when the server stops. */
static int progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const struct attempt *at = ctx;
    return atomic_load(&((kw_webhook_sender *)at->s)->stopping) ? 1 : 0;
}

/* One POST.  Returns the HTTP status (0 when there was none) and fills
 * error ("" on a 2xx). */
static long post(kw_webhook_sender *s, const kw_webhook *w, const kw_webhook_delivery *d,
                 int64_t timestamp, const char *signature, char *error, size_t error_size)
{
    struct attempt at = {s, 0};
    char h_id[96], h_ts[64], h_sig[128];
    snprintf(h_id, sizeof h_id, "webhook-id: %s", d->id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", (long long)timestamp);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", signature);
    struct curl_slist *headers = NULL, *next;
    const char *lines[] = {"Content-Type: application/json", "User-Agent: keyward/" KW_VERSION,
                           h_id, h_ts, h_sig, "Expect:"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        next = curl_slist_append(headers, lines[i]);
        if (!next) break;
        headers = next;
    }
    long status = 0;
    CURL *curl = curl_easy_init();
    if (!curl || !headers) {
        snprintf(error, error_size, "out of memory");
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return 0;
    }
    curl_easy_setopt(curl, CURLOPT_URL, w->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROXY, "");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, TOTAL_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, d->payload);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(d->payload));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, &at);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &at);
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300)
            error[0] = '\0';
        else
            snprintf(error, error_size, "HTTP %ld", status);
    } else if (at.refused_address || rc == CURLE_COULDNT_RESOLVE_HOST) {
        snprintf(error, error_size, "%s", ADDRESS_REFUSED);
    } else {
        snprintf(error, error_size, "%s", curl_easy_strerror(rc));
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return status;
}

/* Ends the claim's hold on the webhook: at once, or (failed) until its
 * next retry, base_us doubled per consecutive failure up to an hour (the
 * rows' own schedule, with the webhook's failures for attempts). */
static void release(kw_webhook_sender *s, const kw_webhook *w, int failed, kw_time now)
{
    int64_t failures = failed ? w->failures + 1 : 0;
    kw_time until = failed ? kw_webhook_next_attempt(now, failures, now, s->opts.retry_base_us) : 0;
    kw_store_webhook_release(s->store, w->id, failures, until);
}

/* Delivers one claimed row and records how it went. */
static void deliver(kw_webhook_sender *s, kw_webhook_delivery *d)
{
    static _Thread_local kw_webhook w;
    int rc = kw_store_webhook_by_id(s->store, d->webhook_id, &w);
    if (rc == KW_ERR_NOTFOUND) return;  /* deleted meanwhile: its rows went with it */
    kw_time now = kw_now();
    char error[KW_WEBHOOK_ERROR_MAX + 1] = "";
    if (rc) {
        /* The database is away: the lease brings the row back. */
        return;
    }
    if (!w.enabled) {
        kw_store_outbox_result(s->store, d->id, 0, now, 0, 0, 0, "webhook disabled");
        memset(w.secret, 0, sizeof w.secret);
        release(s, &w, 0, now);
        return;
    }
    char signature[KW_WEBHOOK_SIGNATURE_MAX + 1];
    int64_t timestamp = now / 1000000;
    if (kw_webhook_sign(w.secret, d->id, timestamp, d->payload, strlen(d->payload), signature)) {
        memset(w.secret, 0, sizeof w.secret);
        kw_store_outbox_result(s->store, d->id, 0, now, 0, 0, 0, "the webhook's secret is unusable");
        release(s, &w, 0, now);
        return;
    }
    memset(w.secret, 0, sizeof w.secret);
    long status = post(s, &w, d, timestamp, signature, error, sizeof error);
    kw_time done = kw_now();
    int64_t latency_ms = (done - now) / 1000;
    if (atomic_load(&s->stopping) && status == 0) {
        /* Abandoned by the shutdown: due again at once for the next start. */
        kw_store_outbox_result(s->store, d->id, done, done, 0, 0, latency_ms,
                               "interrupted by shutdown");
        release(s, &w, 0, done);
        return;
    }
    int ok = !error[0];
    kw_time next = ok ? 0 : kw_webhook_next_attempt(d->created_at, d->attempts, done, s->opts.retry_base_us);
    kw_store_outbox_result(s->store, d->id, next, done, ok ? done : 0, status, latency_ms, error);
    release(s, &w, !ok, done);
    json_t *fields = json_pack("{s:s, s:s, s:s, s:I, s:i, s:I}", "webhook_id", d->webhook_id,
                               "delivery_id", d->id, "event", d->event, "attempt",
                               (json_int_t)d->attempts, "status", (int)status, "latency_ms",
                               (json_int_t)latency_ms);
    kw_metrics_webhook(ok ? KW_M_WEBHOOK_DELIVERED : next ? KW_M_WEBHOOK_RETRY : KW_M_WEBHOOK_GAVE_UP);
    if (ok)
        kw_log_event(KW_LOG_INFO, "webhook_delivered", fields, NULL);
    else
        kw_log_event(KW_LOG_WARN, next ? "webhook_retry" : "webhook_gave_up", fields,
                     "webhook %s delivery %s attempt %lld failed (%s)%s", d->webhook_id, d->id,
                     (long long)d->attempts, error, next ? "; will retry" : "; giving up");
}

static void wait_ms(kw_webhook_sender *s, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += ms * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&s->lock);
    if (!atomic_load(&s->stopping)) pthread_cond_timedwait(&s->wake, &s->lock, &until);
    pthread_mutex_unlock(&s->lock);
}

/* The housekeeping one thread does besides delivering: the delivery
 * log's retention, rows past their day, the backlog gauge, expiry
 * notices, failed sign-ins past the login window. */
struct chores {
    kw_time pruned, expired, swept, logins_swept;
};

static void do_chores(kw_webhook_sender *s, struct chores *c, kw_time now)
{
    if (now - c->pruned >= PRUNE_EVERY_US && !kw_store_outbox_prune(s->store, now - KW_WEBHOOK_LOG_KEEP_US))
        c->pruned = now;
    if (now - c->expired >= EXPIRE_EVERY_US &&
        !kw_store_outbox_expire(s->store, now - KW_WEBHOOK_GIVE_UP_US, now))
        c->expired = now;
    if (now - c->swept >= SWEEP_EVERY_US) {
        int64_t backlog = 0;
        if (!kw_store_outbox_backlog(s->store, &backlog))
            kw_metrics_webhook_backlog((uint64_t)backlog);
        int announced = 0;
        int rc = kw_webhook_expiry_sweep(s->store, now, s->opts.expiring_lead_us, &announced);
        /* A full batch: look again at once. */
        if (!rc && announced < 16) c->swept = now;
    }
    if (now - c->logins_swept >= LOGIN_SWEEP_EVERY_US) {
        int64_t removed = 0;
        int rc = kw_store_login_failure_sweep(s->store, now - KW_LOGIN_WINDOW, LOGIN_SWEEP_BATCH,
                                              &removed);
        if (!rc && removed < LOGIN_SWEEP_BATCH) c->logins_swept = now;
    }
}

static void *sender_thread(void *arg)
{
    const struct sender_arg *a = arg;
    kw_webhook_sender *s = a->s;
    kw_webhook_delivery d;
    struct chores chores = {0, 0, 0, 0};
    while (!atomic_load(&s->stopping)) {
        kw_time now = kw_now();
        if (a->first) do_chores(s, &chores, now);
        int rc = kw_store_outbox_claim(s->store, now, now + LEASE_US, &d);
        if (rc == KW_ERR_NOTFOUND) {
            wait_ms(s, a->first ? POLL_MS : IDLE_POLL_MS);
            continue;
        }
        if (rc) {
            wait_ms(s, ERROR_WAIT_MS);
            continue;
        }
        pthread_mutex_lock(&s->lock);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        deliver(s, &d);
        kw_webhook_delivery_clear(&d);
    }
    return NULL;
}

int kw_webhook_sender_start(kw_store *store, const kw_webhook_sender_opts *opts,
                            kw_webhook_sender **out)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return KW_ERR_NOMEM;
    kw_webhook_sender *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    s->store = store;
    s->opts = *opts;
    if (s->opts.retry_base_us <= 0) s->opts.retry_base_us = 5 * 1000000LL;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    for (int i = 0; i < SENDERS; i++) {
        s->args[i].s = s;
        s->args[i].first = i == 0;
        if (pthread_create(&s->threads[i], NULL, sender_thread, &s->args[i])) break;
        s->started++;
    }
    if (s->started < SENDERS) {
        kw_webhook_sender_stop(s);
        return KW_ERR_NOMEM;
    }
    *out = s;
    return KW_OK;
}

void kw_webhook_sender_stop(kw_webhook_sender *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stopping, 1);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    for (int i = 0; i < s->started; i++) pthread_join(s->threads[i], NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}
