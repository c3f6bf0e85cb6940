/* h_webhooks.c — an organization's webhooks over
 * /api/organizations/:id/webhooks/[:webhook_id/[deliveries/|test/]].
 *
 * The policy has resolved :org and checked the caller is an admin there
 * with the webhook scope; the rules are in lib/events/webhook.c.  The
 * secret is in the create answer only: no other answer has the field. */
#include <stdio.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/webhook.h"

static json_t *webhook_json(const kw_webhook *w)
{
    json_t *events = json_loads(w->events, 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:o, s:b, s:o, s:o}", "id", w->id, "organization_id",
                     w->org_id, "url", w->url, "events", events ? events : json_array(), "enabled",
                     w->enabled, "created_by", w->created_by ? json_integer(w->created_by) : json_null(),
                     "created_at", kw_json_time(w->created_at));
}

static int add_webhook(void *ctx, const kw_webhook *w)
{
    json_array_append_new(ctx, webhook_json(w));
    return 0;
}

int kw_h_webhook_list(kw_http_req *req, kw_http_resp *resp)
{
    int64_t limit, offset, count;
    kw_req_page(req, 100, 1000, &limit, &offset);
    json_t *list = json_array();
    int rc = kw_store_webhook_count(req->app->store, req->match.org, &count);
    if (!rc) rc = kw_store_webhook_list(req->app->store, req->match.org, limit, offset, add_webhook, list);
    if (rc) {
        json_decref(list);
        return rc;
    }
    kw_resp_json(resp, 200, kw_page_json(req, count, limit, offset, list));
    return KW_OK;
}

int kw_h_webhook_create(kw_http_req *req, kw_http_resp *resp)
{
    kw_webhook w;
    kw_problem p;
    if (kw_webhook_create(&req->call, req->match.org, req->json, &w, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    json_t *body = webhook_json(&w);
    json_object_set_new(body, "secret", json_string(w.secret));  /* once */
    memset(w.secret, 0, sizeof w.secret);
    kw_resp_json(resp, 201, body);
    return KW_OK;
}

int kw_h_webhook_get(kw_http_req *req, kw_http_resp *resp)
{
    kw_webhook w;
    kw_problem p;
    if (kw_webhook_load(&req->call, req->match.org, req->match.id, &w, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 200, webhook_json(&w));
    return KW_OK;
}

int kw_h_webhook_update(kw_http_req *req, kw_http_resp *resp)
{
    kw_webhook w;
    kw_problem p;
    if (kw_webhook_update(&req->call, req->match.org, req->match.id, req->json, &w, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 200, webhook_json(&w));
    return KW_OK;
}

int kw_h_webhook_delete(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    if (kw_webhook_delete(&req->call, req->match.org, req->match.id, &p))
        kw_resp_problem(resp, &p);
    else
        kw_resp_json(resp, 204, NULL);
    return KW_OK;
}

static json_t *delivery_json(const kw_webhook_delivery *d)
{
    const char *status = d->delivered_at ? "delivered" : d->next_attempt_at ? "pending" : "failed";
    return json_pack("{s:s, s:s, s:s, s:o, s:I, s:o, s:o, s:o, s:o, s:o, s:s?}", "id", d->id,
                     "event", d->event, "status", status, "created_at", kw_json_time(d->created_at),
                     "attempts", (json_int_t)d->attempts, "last_attempt_at",
                     kw_json_time(d->last_attempt_at), "next_attempt_at",
                     kw_json_time(d->next_attempt_at), "delivered_at", kw_json_time(d->delivered_at),
                     "last_status", d->last_status ? json_integer(d->last_status) : json_null(),
                     "last_latency_ms",
                     d->last_attempt_at ? json_integer(d->last_latency_ms) : json_null(),
                     "last_error", d->last_error[0] ? d->last_error : NULL);
}

static int add_delivery(void *ctx, const kw_webhook_delivery *d)
{
    json_array_append_new(ctx, delivery_json(d));
    return 0;
}

int kw_h_webhook_deliveries(kw_http_req *req, kw_http_resp *resp)
{
    kw_webhook w;
    kw_problem p;
    if (kw_webhook_load(&req->call, req->match.org, req->match.id, &w, &p)) {
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    int64_t limit, offset, count;
    kw_req_page(req, 100, 1000, &limit, &offset);
    json_t *list = json_array();
    int rc = kw_store_outbox_count(req->app->store, w.id, &count);
    if (!rc) rc = kw_store_outbox_list(req->app->store, w.id, limit, offset, add_delivery, list);
    if (rc) {
        json_decref(list);
        return rc;
    }
    kw_resp_json(resp, 200, kw_page_json(req, count, limit, offset, list));
    return KW_OK;
}

int kw_h_webhook_test(kw_http_req *req, kw_http_resp *resp)
{
    kw_problem p;
    int retry_after = 0;
    if (kw_webhook_test(&req->call, req->match.org, req->match.id, &retry_after, &p)) {
        kw_resp_problem(resp, &p);
        if (p.kind == KW_P_THROTTLED) {
            char text[16];
            snprintf(text, sizeof text, "%d", retry_after);
            kw_resp_header(resp, "Retry-After", text);
        }
    } else
        kw_resp_json(resp, 202, json_pack("{s:s}", "status", "queued"));
    return KW_OK;
}
