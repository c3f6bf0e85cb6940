/* webhook.h — signed webhooks on key events, per organization.
 *
 * An organization's admins register URLs (kw_webhook_create …); every key
 * event of the organization (a key created, rolled, deleted, revoked after
 * a leak report) writes one outbox row per matching webhook in the same
 * transaction as the change, so a crash loses none and a change rolled
 * back sends none.  A sender (the program's delivery thread) claims due
 * rows, POSTs them signed the Standard Webhooks way (webhook-id,
 * webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of
 * "id.timestamp.body">, the key being the base64 after "whsec_"), and
 * records the answer: delivered, or retried with exponential backoff until
 * KW_WEBHOOK_GIVE_UP_US after the event.  Payloads never carry a key's
 * value: its id, mask, label, kind and project. */
#ifndef KEYWARD_WEBHOOK_H
#define KEYWARD_WEBHOOK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "keyward/auth.h"
#include "keyward/problem.h"
#include "keyward/service.h"
#include "keyward/store.h"

#define KW_WEBHOOK_URL_MAX 2048
#define KW_WEBHOOK_SECRET_MAX 64    /* "whsec_" + base64 of 24 bytes is 38 */
#define KW_WEBHOOK_EVENTS_MAX 512   /* the events filter as JSON text */
#define KW_WEBHOOK_MAX_PER_ORG 20
#define KW_WEBHOOK_ID_MAX 48        /* outbox ids: "msg_" + 32 base62 */
#define KW_WEBHOOK_ERROR_MAX 256
#define KW_WEBHOOK_SIGNATURE_MAX 64 /* "v1," + base64 of 32 bytes */
/* Undelivered rows one webhook may have: an event for a webhook that has
 * this many still to deliver is dropped (and counted in the metrics), so a
 * receiver that never answers cannot grow the outbox without bound. */
#define KW_WEBHOOK_PENDING_MAX 1000
/* Retries: first after the base delay (5 s by default), doubling, at most
 * an hour apart, none after a day. */
#define KW_WEBHOOK_BACKOFF_CAP_US ((int64_t)3600 * 1000000)
#define KW_WEBHOOK_GIVE_UP_US ((int64_t)24 * 3600 * 1000000)

typedef struct kw_webhook {
    char id[KW_ID_LEN + 1];
    char org_id[KW_ID_LEN + 1];
    char url[KW_WEBHOOK_URL_MAX + 1];
    char events[KW_WEBHOOK_EVENTS_MAX + 1];  /* JSON array of names; [] = every event */
    int enabled;
    int64_t created_by;
    kw_time created_at;
    /* Its health, kept by the senders: consecutive failed attempts (0
     * after a delivery), and until when none of its rows is attempted
     * (an attempt in flight, or the wait after a failure; 0: none). */
    int64_t failures;
    kw_time held_until;
    /* Filled only by kw_store_webhook_by_id (the sender's read) and by
     * kw_webhook_create (shown once); "" everywhere else. */
    char secret[KW_WEBHOOK_SECRET_MAX + 1];
} kw_webhook;
typedef int (*kw_webhook_cb)(void *ctx, const kw_webhook *webhook);

/* One event for one webhook, and how its delivery went. */
typedef struct kw_webhook_delivery {
    char id[KW_WEBHOOK_ID_MAX + 1];  /* the webhook-id header */
    char webhook_id[KW_ID_LEN + 1];
    char event[64];
    char *payload;                   /* owned; kw_webhook_delivery_clear */
    kw_time created_at;
    int64_t attempts;
    kw_time next_attempt_at;         /* 0: done (delivered or given up) */
    kw_time last_attempt_at;
    kw_time delivered_at;
    int64_t last_status;             /* HTTP status of the last attempt, 0: none */
    int64_t last_latency_ms;
    char last_error[KW_WEBHOOK_ERROR_MAX + 1];
} kw_webhook_delivery;
typedef int (*kw_webhook_delivery_cb)(void *ctx, const kw_webhook_delivery *delivery);
void kw_webhook_delivery_clear(kw_webhook_delivery *d);

/* ---- storage (lib/store/webhooks.c) ---- */
int kw_store_webhook_insert(kw_store *store, const kw_webhook *w);  /* with w->secret */
int kw_store_webhook_get(kw_store *store, const char *org_id, const char *id, kw_webhook *out);
int kw_store_webhook_by_id(kw_store *store, const char *id, kw_webhook *out);  /* with the secret */
int kw_store_webhook_list(kw_store *store, const char *org_id, int64_t limit, int64_t offset,
                          kw_webhook_cb cb, void *ctx);
int kw_store_webhook_count(kw_store *store, const char *org_id, int64_t *count);
int kw_store_webhook_update(kw_store *store, const kw_webhook *w);  /* url, events, enabled */
int kw_store_webhook_delete(kw_store *store, const char *org_id, const char *id);
/* Queues `payload` as `event` for every enabled webhook of the
 * organization whose filter takes it (and for `only_webhook` alone when
 * it is not NULL, whatever its filter: the test event).  Call inside the
 * change's transaction. */
int kw_store_webhook_enqueue(kw_store *store, const char *org_id, const char *only_webhook,
                             const char *event, const char *payload, kw_time now);
/* Queues `payload` for one webhook unless it already has
 * KW_WEBHOOK_PENDING_MAX rows to deliver: KW_OK, or KW_ERR_LIMIT when the
 * event was dropped (and counted).  Call inside the change's transaction. */
int kw_store_outbox_insert(kw_store *store, const char *webhook_id, const char *event,
                           const char *payload, kw_time now);
/* Claims the oldest due row (next_attempt_at <= now) of a webhook that is
 * not held, webhooks without failures first, moving the row to lease_until
 * and counting the attempt, and holds its webhook until lease_until, so
 * no other sender attempts that webhook meanwhile: KW_OK with *out
 * filled, KW_ERR_NOTFOUND when nothing is due. */
int kw_store_outbox_claim(kw_store *store, kw_time now, kw_time lease_until,
                          kw_webhook_delivery *out);
/* Ends an attempt's hold on a webhook: failures is its new count of
 * consecutive failures, held_until when its rows may next be attempted
 * (0: at once). */
int kw_store_webhook_release(kw_store *store, const char *webhook_id, int64_t failures,
                             kw_time held_until);
/* When a pending "webhook.test" row of the webhook, if any, is next due
 * (0: none pending). */
int kw_store_outbox_pending_test(kw_store *store, const char *webhook_id, kw_time *next);
/* Closes, as given up, pending rows of events made before `before`: those
 * of a held webhook may not have been attempted since their day ran out. */
int kw_store_outbox_expire(kw_store *store, kw_time before, kw_time now);
/* Records an attempt: next_attempt_at 0 = done; delivered_at 0 = not
 * delivered; error "" = none. */
int kw_store_outbox_result(kw_store *store, const char *id, kw_time next_attempt_at,
                           kw_time attempted_at, kw_time delivered_at, int64_t status,
                           int64_t latency_ms, const char *error);
int kw_store_outbox_list(kw_store *store, const char *webhook_id, int64_t limit, int64_t offset,
                         kw_webhook_delivery_cb cb, void *ctx);  /* newest first */
int kw_store_outbox_count(kw_store *store, const char *webhook_id, int64_t *count);
/* Deletes finished rows (delivered or given up) of events made before
 * `before`: the delivery log keeps KW_WEBHOOK_LOG_KEEP_US. */
#define KW_WEBHOOK_LOG_KEEP_US ((int64_t)30 * 24 * 3600 * 1000000)
int kw_store_outbox_prune(kw_store *store, kw_time before);
/* Rows still to deliver (due now or scheduled for a retry). */
int kw_store_outbox_backlog(kw_store *store, int64_t *count);

/* ---- signing and retry schedule (lib/events/webhook_sign.c) ---- */
/* A new secret: "whsec_" + base64 of 24 random bytes. */
int kw_webhook_new_secret(char out[KW_WEBHOOK_SECRET_MAX + 1]);
/* "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", the key being the
 * base64-decoded part of `secret` after "whsec_".  KW_ERR_INVALID for a
 * secret that does not decode. */
int kw_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
                    size_t body_len, char out[KW_WEBHOOK_SIGNATURE_MAX + 1]);
/* When to try again after `attempts` failed attempts of an event made at
 * created_at: base_us doubled per attempt, capped at an hour; 0 when the
 * next attempt would fall past a day after the event (give up). */
kw_time kw_webhook_next_attempt(kw_time created_at, int64_t attempts, kw_time now, int64_t base_us);

/* ---- where deliveries may go (lib/events/webhook_addr.c) ---- */
/* 1 when a delivery may connect to this address without
 * --webhook-allow-private: a globally routable unicast address, IPv4 or
 * IPv6, IPv4 embedded in IPv6 judged as IPv4; 0 otherwise. */
struct sockaddr;
int kw_webhook_address_public(const struct sockaddr *sa);

/* ---- management and events (lib/events/webhook.c) ----
 * The policy has checked the caller's membership and level in org_id.
 * Body fields: url (http:// or https://, at most KW_WEBHOOK_URL_MAX
 * bytes), events (a list of names from kw_webhook_event_names; empty or
 * absent: every event), enabled (boolean).  The secret is in out->secret
 * after create only. */
int kw_webhook_create(const kw_call *c, const char *org_id, const json_t *body, kw_webhook *out,
                      kw_problem *problem);
int kw_webhook_update(const kw_call *c, const char *org_id, const char *id, const json_t *body,
                      kw_webhook *out, kw_problem *problem);
int kw_webhook_delete(const kw_call *c, const char *org_id, const char *id, kw_problem *problem);
int kw_webhook_load(const kw_call *c, const char *org_id, const char *id, kw_webhook *out,
                    kw_problem *problem);
/* Queues a "webhook.test" event for this webhook alone.  Refused (400)
 * while the webhook is paused, and (429, *retry_after seconds) while a
 * test of it is still pending: one caller cannot fill the outbox. */
int kw_webhook_test(const kw_call *c, const char *org_id, const char *id, int *retry_after,
                    kw_problem *problem);
/* The event names a filter may hold, NULL-terminated. */
extern const char *const kw_webhook_event_names[];

/* A key event, inside the change's transaction: activity "created",
 * "rolled", "deleted", "revoked", "expiring_soon" or "expired" becomes
 * key.<activity>; any other activity queues nothing.  kind is "personal"
 * or "project_secret"; project_id 0 for a personal key; expires_at 0 for
 * none; context (may be NULL) is copied into the payload (a leak report's
 * reason and URL). */
typedef struct kw_webhook_key {
    const char *id, *label, *mask, *kind;
    int64_t project_id;
    int64_t user_id;
    kw_time expires_at;
} kw_webhook_key;
int kw_webhook_key_event(const kw_call *c, const char *org_id, const char *activity,
                         const kw_webhook_key *key, const json_t *context);
/* The same for a personal key, once to each organization it reaches
 * (lib/events/audit.c, which fans its activity entries out alike). */
int kw_webhook_personal_key_event(const kw_call *c, const kw_pkey *key, const char *activity,
                                  const json_t *context);
/* key.rate_limited for a key the verifier saw refused (kw_verifier_rate_notices),
 * in a transaction of its own; a key deleted since is skipped. */
int kw_webhook_rate_limited(const kw_call *c, const kw_rate_notice *notice);

/* Expiry notices (lib/events/webhook_expiry.c): queues key.expiring_soon
 * for keys that expire within lead_us of now, and key.expired for keys
 * that have expired (within the last day), each once per expiry — the
 * key's expiry_notified_at records it, set in the transaction that queues
 * the events, compare-and-set so that instances sweeping together
 * announce a key once.  At most a batch per call; *announced counts the
 * keys announced. */
int kw_webhook_expiry_sweep(kw_store *store, kw_time now, int64_t lead_us, int *announced);

#endif
