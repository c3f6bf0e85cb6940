/* webhooks.c — an organization's webhooks and their outbox, written once
 * over the database layer (statements in sql.c, schema migrations 14 and 18).
 *
 * The outbox is the durable half of delivery: a row is written in the
 * transaction of the event, claimed by a sender with a lease (the claim
 * moves next_attempt_at ahead, so a sender that dies leaves the row due
 * again when the lease ends) and closed by kw_store_outbox_result. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/key.h"
#include "keyward/keyward.h"
#include "keyward/metrics.h"
#include "keyward/webhook.h"
#include "store/db.h"

static const struct kw_db_field WEBHOOK_FIELDS[] = {
    KW_DB_TEXT(kw_webhook, id),         KW_DB_TEXT(kw_webhook, org_id),
    KW_DB_TEXT(kw_webhook, url),        KW_DB_TEXT(kw_webhook, events),
    KW_DB_INT(kw_webhook, enabled),     KW_DB_I64(kw_webhook, created_by),
    KW_DB_I64(kw_webhook, created_at),  KW_DB_I64(kw_webhook, failures),
    KW_DB_I64(kw_webhook, held_until),  KW_DB_TEXT(kw_webhook, secret),
};

static const struct kw_db_field DELIVERY_FIELDS[] = {
    KW_DB_TEXT(kw_webhook_delivery, id),
    KW_DB_TEXT(kw_webhook_delivery, webhook_id),
    KW_DB_TEXT(kw_webhook_delivery, event),
    KW_DB_DUP(kw_webhook_delivery, payload),
    KW_DB_I64(kw_webhook_delivery, created_at),
    KW_DB_I64(kw_webhook_delivery, attempts),
    KW_DB_I64(kw_webhook_delivery, next_attempt_at),
    KW_DB_I64(kw_webhook_delivery, last_attempt_at),
    KW_DB_I64(kw_webhook_delivery, delivered_at),
    KW_DB_I64(kw_webhook_delivery, last_status),
    KW_DB_I64(kw_webhook_delivery, last_latency_ms),
    KW_DB_TEXT(kw_webhook_delivery, last_error),
};

void kw_webhook_delivery_clear(kw_webhook_delivery *d)
{
    free(d->payload);
    d->payload = NULL;
}

int kw_store_webhook_insert(kw_store *s, const kw_webhook *w)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_WEBHOOK_INSERT, &st);
    if (rc) return rc;
    kw_db_text(st, 1, w->id);
    kw_db_text(st, 2, w->org_id);
    kw_db_text(st, 3, w->url);
    kw_db_text(st, 4, w->secret);
    kw_db_text(st, 5, w->events);
    kw_db_int(st, 6, w->enabled ? 1 : 0);
    kw_db_int_or_null(st, 7, w->created_by);
    kw_db_int(st, 8, w->created_at);
    return kw_db_exec(st, 1);
}

static int read_one(kw_db_stmt *st, kw_webhook *out)
{
    int rc = kw_db_one(st);
    if (rc) return rc;
    rc = kw_db_read_row(st, KW_DB_FIELDS(WEBHOOK_FIELDS), out);
    return kw_db_finish(st, rc);
}

int kw_store_webhook_get(kw_store *s, const char *org_id, const char *id, kw_webhook *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_WEBHOOK_GET, &st);
    if (rc) return rc;
    kw_db_text(st, 1, org_id);
    kw_db_text(st, 2, id);
    return read_one(st, out);
}

int kw_store_webhook_by_id(kw_store *s, const char *id, kw_webhook *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_WEBHOOK_BY_ID, &st);
    if (rc) return rc;
    kw_db_text(st, 1, id);
    return read_one(st, out);
}

int kw_store_webhook_list(kw_store *s, const char *org_id, int64_t limit, int64_t offset,
                          kw_webhook_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_WEBHOOK_LIST, &st);
    if (rc) return rc;
    kw_db_text(st, 1, org_id);
    kw_db_int(st, 2, limit);
    kw_db_int(st, 3, offset);
    static _Thread_local kw_webhook w;
    while ((rc = kw_db_next(st, KW_DB_FIELDS(WEBHOOK_FIELDS), &w)) == KW_DB_ROW)
        if ((rc = cb(ctx, &w))) break;
    return kw_db_finish(st, rc);
}

static int count_of(kw_store *s, enum kw_sql_id id, const char *key, int64_t *count)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, id, &st);
    if (rc) return rc;
    kw_db_text(st, 1, key);
    return kw_db_int_result(st, count);
}

int kw_store_webhook_count(kw_store *s, const char *org_id, int64_t *count)
{
    return count_of(s, KW_SQL_WEBHOOK_COUNT, org_id, count);
}

int kw_store_webhook_update(kw_store *s, const kw_webhook *w)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_WEBHOOK_UPDATE, &st);
    if (rc) return rc;
    kw_db_text(st, 1, w->org_id);
    kw_db_text(st, 2, w->id);
    kw_db_text(st, 3, w->url);
    kw_db_text(st, 4, w->events);
    kw_db_int(st, 5, w->enabled ? 1 : 0);
    return kw_db_exec(st, 1);
}

int kw_store_webhook_delete(kw_store *s, const char *org_id, const char *id)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_WEBHOOK_DELETE, &st);
    if (rc) return rc;
    kw_db_text(st, 1, org_id);
    kw_db_text(st, 2, id);
    return kw_db_exec(st, 1);
}

/* A filter is a JSON array of names from a fixed list (checked when it was
 * written), so a name is in it exactly when its quoted form is. */
static int filter_takes(const char *events, const char *event)
{
    if (strcmp(events, "[]") == 0 || !events[0]) return 1;
    char quoted[72];
    size_t n = strlen(event);
    if (n + 3 > sizeof quoted) return 0;
    quoted[0] = '"';
    memcpy(quoted + 1, event, n);
    quoted[n + 1] = '"';
    quoted[n + 2] = '\0';
    return strstr(events, quoted) != NULL;
}

int kw_store_outbox_insert(kw_store *s, const char *webhook_id, const char *event,
                           const char *payload, kw_time now)
{
    char id[KW_WEBHOOK_ID_MAX + 1] = "msg_";
    int rc = kw_random_base62(id + 4, 32);
    if (rc) return rc;
    id[36] = '\0';
    kw_db_stmt *st;
    rc = kw_db_prepare(s, KW_SQL_OUTBOX_INSERT, &st);
    if (rc) return rc;
    kw_db_text(st, 1, id);
    kw_db_text(st, 2, webhook_id);
    kw_db_text(st, 3, event);
    kw_db_text(st, 4, payload);
    kw_db_int(st, 5, now);
    kw_db_int(st, 6, KW_WEBHOOK_PENDING_MAX);
    while ((rc = kw_db_step(st)) == KW_DB_ROW) {
    }
    if (!rc && kw_db_changes(st) == 0) {
        kw_metrics_webhook(KW_M_WEBHOOK_DROPPED);
        rc = KW_ERR_LIMIT;
    }
    return kw_db_finish(st, rc);
}

int kw_store_webhook_enqueue(kw_store *s, const char *org_id, const char *only_webhook,
                             const char *event, const char *payload, kw_time now)
{
    if (only_webhook) return kw_store_outbox_insert(s, only_webhook, event, payload, now);
    /* The targets are read to the end before the inserts: one statement
     * at a time on this connection. */
    char ids[KW_WEBHOOK_MAX_PER_ORG][KW_ID_LEN + 1];
    size_t n = 0;
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_WEBHOOK_TARGETS, &st);
    if (rc) return rc;
    kw_db_text(st, 1, org_id);
    while ((rc = kw_db_step(st)) == KW_DB_ROW) {
        if (n == KW_WEBHOOK_MAX_PER_ORG || !filter_takes(kw_db_col_text(st, 1), event)) continue;
        kw_db_col_copy(st, 0, ids[n], sizeof ids[n]);
        n++;
    }
    rc = kw_db_finish(st, rc);
    /* A webhook at its bound loses this event; the others and the change
     * itself go on. */
    for (size_t i = 0; !rc && i < n; i++) {
        rc = kw_store_outbox_insert(s, ids[i], event, payload, now);
        if (rc == KW_ERR_LIMIT) rc = KW_OK;
    }
    return rc;
}

static int claim_row(kw_store *s, kw_time now, kw_time lease_until, kw_webhook_delivery *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_OUTBOX_CLAIM, &st);
    if (rc) return rc;
    kw_db_int(st, 1, now);
    kw_db_int(st, 2, lease_until);
    rc = kw_db_next(st, KW_DB_FIELDS(DELIVERY_FIELDS), out);
    if (rc == KW_DB_ROW) {
        /* Step to the end so the UPDATE … RETURNING completes. */
        while ((rc = kw_db_step(st)) == KW_DB_ROW) {
        }
        return kw_db_finish(st, rc);
    }
    return kw_db_finish(st, rc ? rc : KW_ERR_NOTFOUND);
}

static int hold(kw_store *s, const char *webhook_id, kw_time until)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_WEBHOOK_HOLD, &st);
    if (rc) return rc;
    kw_db_text(st, 1, webhook_id);
    kw_db_int(st, 2, until);
    return kw_db_exec(st, 0);
}

/* The row and its webhook's hold in one transaction: a sender that
 * claimed a row has its webhook to itself until the lease ends, and one
 * killed mid-attempt frees both when it does. */
int kw_store_outbox_claim(kw_store *s, kw_time now, kw_time lease_until, kw_webhook_delivery *out)
{
    memset(out, 0, sizeof *out);
    int rc = kw_store_begin(s);
    if (rc) return rc;
    rc = claim_row(s, now, lease_until, out);
    if (!rc) rc = hold(s, out->webhook_id, lease_until);
    if (!rc) rc = kw_store_commit(s);
    if (rc) {
        kw_store_rollback(s);
        kw_webhook_delivery_clear(out);
    }
    return rc;
}

int kw_store_webhook_release(kw_store *s, const char *webhook_id, int64_t failures,
                             kw_time held_until)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_WEBHOOK_RELEASE, &st);
    if (rc) return rc;
    kw_db_text(st, 1, webhook_id);
    kw_db_int(st, 2, failures);
    kw_db_int_or_null(st, 3, held_until);
    return kw_db_exec(st, 0);
}

int kw_store_outbox_pending_test(kw_store *s, const char *webhook_id, kw_time *next)
{
    return count_of(s, KW_SQL_OUTBOX_PENDING_TEST, webhook_id, next);
}

int kw_store_outbox_expire(kw_store *s, kw_time before, kw_time now)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_OUTBOX_EXPIRE, &st);
    if (rc) return rc;
    kw_db_int(st, 1, before);
    kw_db_int(st, 2, now);
    return kw_db_exec(st, 0);
}

int kw_store_outbox_result(kw_store *s, const char *id, kw_time next_attempt_at,
                           kw_time attempted_at, kw_time delivered_at, int64_t status,
                           int64_t latency_ms, const char *error)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_OUTBOX_RESULT, &st);
    if (rc) return rc;
    kw_db_text(st, 1, id);
    kw_db_int_or_null(st, 2, next_attempt_at);
    kw_db_int(st, 3, attempted_at);
    kw_db_int_or_null(st, 4, delivered_at);
    kw_db_int_or_null(st, 5, status);
    kw_db_int(st, 6, latency_ms);
    kw_db_text_or_null(st, 7, error);
    return kw_db_exec(st, 0);
}

int kw_store_outbox_list(kw_store *s, const char *webhook_id, int64_t limit, int64_t offset,
                         kw_webhook_delivery_cb cb, void *ctx)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_OUTBOX_LIST, &st);
    if (rc) return rc;
    kw_db_text(st, 1, webhook_id);
    kw_db_int(st, 2, limit);
    kw_db_int(st, 3, offset);
    kw_webhook_delivery d;
    memset(&d, 0, sizeof d);
    while ((rc = kw_db_next(st, KW_DB_FIELDS(DELIVERY_FIELDS), &d)) == KW_DB_ROW) {
        rc = cb(ctx, &d);
        kw_webhook_delivery_clear(&d);
        if (rc) break;
    }
    kw_webhook_delivery_clear(&d);
    return kw_db_finish(st, rc);
}

int kw_store_outbox_count(kw_store *s, const char *webhook_id, int64_t *count)
{
    return count_of(s, KW_SQL_OUTBOX_COUNT, webhook_id, count);
}

int kw_store_outbox_prune(kw_store *s, kw_time before)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_OUTBOX_PRUNE, &st);
    if (rc) return rc;
    kw_db_int(st, 1, before);
    return kw_db_exec(st, 0);
}

int kw_store_outbox_backlog(kw_store *s, int64_t *count)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_OUTBOX_BACKLOG, &st);
    if (rc) return rc;
    return kw_db_int_result(st, count);
}
