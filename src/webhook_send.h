/* webhook_send.h — the delivery thread of `keyward serve` (see
 * webhook_send.c); it also runs the expiry-notice sweep and the server's
 * other periodic housekeeping. */
#ifndef KW_WEBHOOK_SEND_H
#define KW_WEBHOOK_SEND_H

#include <stdint.h>

#include "keyward/store.h"

typedef struct kw_webhook_sender kw_webhook_sender;

typedef struct kw_webhook_sender_opts {
    int64_t retry_base_us;  /* first retry delay, doubled per attempt (default 5 s) */
    int allow_private;      /* deliver to loopback and private addresses too */
    int64_t expiring_lead_us;  /* key.expiring_soon this long before an expiry */
} kw_webhook_sender_opts;

/* Starts the thread; KW_OK or a kw_err. */
int kw_webhook_sender_start(kw_store *store, const kw_webhook_sender_opts *opts,
                            kw_webhook_sender **out);
/* Stops it: an attempt in flight is abandoned and its row made due again
 * at once.  NULL is fine. */
void kw_webhook_sender_stop(kw_webhook_sender *s);

#endif
