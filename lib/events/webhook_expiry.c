/* webhook_expiry.c — key.expiring_soon and key.expired, announced by a
 * sweep (see webhook.h) rather than by a write: nothing happens to a key
 * when its time comes, so the delivery thread asks the store every few
 * seconds which keys crossed a line since their last notice.
 *
 * Each key is announced in its own transaction: its expiry_notified_at
 * moves (compare-and-set against the value read) together with the outbox
 * rows, so a crash announces it later or not at all but never loses the
 * notice after marking it, and two instances sweeping together announce it
 * once (the loser's mark changes no row and it rolls back). */
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/webhook.h"

/* Keys read per sweep and kind; the rest wait for the next sweep. */
#define BATCH 16

struct batch {
    kw_key_kind kind;
    size_t n;
    union {
        kw_pkey pkey[BATCH];
        kw_psk psk[BATCH];
    } rows;
};

static int take_pkey(void *ctx, const kw_pkey *k)
{
    struct batch *b = ctx;
    if (b->n < BATCH) b->rows.pkey[b->n++] = *k;
    return 0;
}

static int take_psk(void *ctx, const kw_psk *k)
{
    struct batch *b = ctx;
    if (b->n < BATCH) b->rows.psk[b->n++] = *k;
    return 0;
}

/* Announces row i of the batch; KW_ERR_NOTFOUND when another writer
 * announced it (or changed its expiry) first. */
static int announce(kw_store *store, struct batch *b, size_t i, kw_time now)
{
    kw_call c = {.store = store};
    int personal = b->kind == KW_KEY_PERSONAL;
    const char *id = personal ? b->rows.pkey[i].id : b->rows.psk[i].id;
    kw_time expires_at = personal ? b->rows.pkey[i].expires_at : b->rows.psk[i].expires_at;
    kw_time seen = personal ? b->rows.pkey[i].expiry_notified_at : b->rows.psk[i].expiry_notified_at;
    const char *activity = now >= expires_at ? "expired" : "expiring_soon";
    int rc = kw_store_begin(store);
    if (rc) return rc;
    rc = personal ? kw_store_pkey_expiry_mark(store, id, expires_at, seen, now)
                  : kw_store_psk_expiry_mark(store, id, expires_at, seen, now);
    if (!rc && personal) {
        rc = kw_webhook_personal_key_event(&c, &b->rows.pkey[i], activity, NULL);
    } else if (!rc) {
        const kw_psk *k = &b->rows.psk[i];
        kw_project project;
        rc = kw_store_project_get(store, k->project_id, &project);
        if (!rc)
            rc = kw_webhook_key_event(&c, project.org_id, activity,
                                      &(kw_webhook_key){k->id, k->label, k->mask_value,
                                                        "project_secret", k->project_id, 0,
                                                        k->expires_at},
                                      NULL);
    }
    if (!rc) rc = kw_store_commit(store);
    if (rc) kw_store_rollback(store);
    return rc;
}

int kw_webhook_expiry_sweep(kw_store *store, kw_time now, int64_t lead_us, int *announced)
{
    *announced = 0;
    struct batch *b = malloc(sizeof *b);
    if (!b) return KW_ERR_NOMEM;
    int rc = KW_OK;
    for (int kind = 0; !rc && kind < 2; kind++) {
        b->n = 0;
        b->kind = kind == 0 ? KW_KEY_PERSONAL : KW_KEY_SECRET;
        rc = kind == 0 ? kw_store_pkey_expiry_due(store, now, lead_us, BATCH, take_pkey, b)
                       : kw_store_psk_expiry_due(store, now, lead_us, BATCH, take_psk, b);
        for (size_t i = 0; !rc && i < b->n; i++) {
            int one = announce(store, b, i, now);
            if (one == KW_OK)
                (*announced)++;
            else if (one != KW_ERR_NOTFOUND)
                rc = one;
        }
    }
    free(b);
    return rc;
}
