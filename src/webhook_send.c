/* webhook_send.c — delivers the webhook outbox: one thread per `keyward
 * serve` claims due rows, POSTs each signed, and records the answer.
 *
 * Nothing is held in memory between attempts: a claim moves the row a
 * lease ahead in the database, the result sets its next attempt (or closes
 * it), so a restart or a SIGKILL loses nothing and at worst repeats one
 * delivery (the receiver sees the same webhook-id and drops it).  With
 * several instances each claim takes a different row (KW_SQL_OUTBOX_CLAIM).
 *
 * The same thread sweeps for keys that are about to expire or have
 * expired (kw_webhook_expiry_sweep): those events come from no write.
 *
 * SSRF: a webhook URL is chosen by an organization admin, and keyward
 * connects from inside the operator's network.  Only http and https are
 * ever spoken, redirects are not followed, proxies from the environment
 * are not used, and unless --webhook-allow-private is given the address
 * each connection actually goes to (after DNS, so a name cannot be
 * rebound to an internal address between check and use) must be a public
 * one: loopback, private, link-local, CGNAT, multicast and unspecified
 * addresses are refused. */
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
#include "keyward/webhook.h"
#include "logger.h"

#define POLL_MS 250
#define ERROR_WAIT_MS 1000
#define CONNECT_TIMEOUT_MS 5000L
#define TOTAL_TIMEOUT_MS 10000L
/* Keys that crossed their expiry-notice lines are looked for this often
 * (an indexed-free scan of keys with an expiry: cheap at keyward's sizes). */
#define SWEEP_EVERY_US ((int64_t)2 * 1000000)
/* Finished rows past the delivery log's retention go this often. */
#define PRUNE_EVERY_US ((int64_t)3600 * 1000000)
/* Longer than any attempt, so a claimed row is never taken by a second
 * sender while the first still works on it. */
#define LEASE_US ((int64_t)(TOTAL_TIMEOUT_MS + 20000) * 1000)

struct kw_webhook_sender {
    kw_store *store;
    kw_webhook_sender_opts opts;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_int stopping;
};

struct attempt {
    const kw_webhook_sender *s;
    int refused_address;
};

static int public_v4(const unsigned char *a)
{
    if (a[0] == 0 || a[0] == 10 || a[0] == 127 || a[0] >= 224) return 0;
    if (a[0] == 169 && a[1] == 254) return 0;
    if (a[0] == 172 && (a[1] & 0xf0) == 16) return 0;
    if (a[0] == 192 && a[1] == 168) return 0;
    if (a[0] == 100 && (a[1] & 0xc0) == 64) return 0;  /* CGNAT 100.64/10 */
    return 1;
}

static int public_address(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        unsigned char v4[4];
        memcpy(v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return public_v4(v4);
    }
    if (sa->sa_family != AF_INET6) return 0;
    unsigned char a[16];
    memcpy(a, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
    static const unsigned char MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char ZERO[15] = {0};
    if (memcmp(a, MAPPED, 12) == 0) return public_v4(a + 12);
    if (memcmp(a, ZERO, 15) == 0) return 0;            /* :: and ::1 */
    if ((a[0] & 0xfe) == 0xfc) return 0;               /* fc00::/7 unique local */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return 0; /* fe80::/10 link-local */
    if (a[0] == 0xff) return 0;                        /* multicast */
    return 1;
}

static curl_socket_t open_socket(void *ctx, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct attempt *at = ctx;
    (void)purpose;
    if (!at->s->opts.allow_private && !public_address(&addr->addr)) {
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
    } else if (at.refused_address) {
        snprintf(error, error_size,
                 "address not allowed: loopback or private (serve --webhook-allow-private)");
    } else {
        snprintf(error, error_size, "%s", curl_easy_strerror(rc));
    }
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return status;
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
        return;
    }
    char signature[KW_WEBHOOK_SIGNATURE_MAX + 1];
    int64_t timestamp = now / 1000000;
    if (kw_webhook_sign(w.secret, d->id, timestamp, d->payload, strlen(d->payload), signature)) {
        memset(w.secret, 0, sizeof w.secret);
        kw_store_outbox_result(s->store, d->id, 0, now, 0, 0, 0, "the webhook's secret is unusable");
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
        return;
    }
    int ok = !error[0];
    kw_time next = ok ? 0 : kw_webhook_next_attempt(d->created_at, d->attempts, done, s->opts.retry_base_us);
    kw_store_outbox_result(s->store, d->id, next, done, ok ? done : 0, status, latency_ms, error);
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

static void *sender_thread(void *arg)
{
    kw_webhook_sender *s = arg;
    kw_webhook_delivery d;
    kw_time pruned = 0, swept = 0;
    while (!atomic_load(&s->stopping)) {
        kw_time now = kw_now();
        if (now - pruned >= PRUNE_EVERY_US && !kw_store_outbox_prune(s->store, now - KW_WEBHOOK_LOG_KEEP_US))
            pruned = now;
        if (now - swept >= SWEEP_EVERY_US) {
            int64_t backlog = 0;
            if (!kw_store_outbox_backlog(s->store, &backlog))
                kw_metrics_webhook_backlog((uint64_t)backlog);
            int announced = 0;
            int rc = kw_webhook_expiry_sweep(s->store, now, s->opts.expiring_lead_us, &announced);
            /* A full batch: look again at once. */
            if (!rc && announced < 16) swept = now;
        }
        int rc = kw_store_outbox_claim(s->store, now, now + LEASE_US, &d);
        if (rc == KW_ERR_NOTFOUND) {
            wait_ms(s, POLL_MS);
            continue;
        }
        if (rc) {
            wait_ms(s, ERROR_WAIT_MS);
            continue;
        }
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
    if (pthread_create(&s->thread, NULL, sender_thread, s)) {
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        free(s);
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
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}
