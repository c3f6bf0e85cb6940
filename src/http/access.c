/* access.c — what every answered request leaves behind: its count and
 * latency under its route in the metrics and, with `--log-format json`,
 * one access line.  One function, called by server_request.c for every answer
 * (413s before the body included), so no route can be missed.
 *
 * The line names the route by its pattern, the caller by credential kind
 * and key id (or user id for a console session): never the key, the
 * Authorization header, a cookie, the query string or a body.  The path
 * itself is logged only when no route matched (scanners probing for
 * files are worth seeing), cleaned by kw_log_clean: printable ASCII only,
 * token-shaped runs blanked, at most 160 bytes. */
#include <string.h>

#include "http/http.h"
#include "keyward/metrics.h"
#include "logger.h"

static const char *credential(const kw_principal *p)
{
    if (!p) return "none";
    switch (p->kind) {
    case KW_KEY_PERSONAL: return "personal";
    case KW_KEY_SECRET: return "secret";
    case KW_KEY_PROJECT: return "project";
    default: return p->session ? "session" : "none";
    }
}

static void access_line(const kw_http_done *d)
{
    json_t *f = json_object();
    if (!f) return;
    char clean[192];
    const char *method = d->route ? d->route->method : NULL;
    if (d->route && strcmp(d->method, "HEAD") == 0) method = "HEAD";
    json_object_set_new(f, "method", json_string(method ? method
                                                        : kw_log_clean(d->method, strlen(d->method),
                                                                       clean, 24)));
    json_object_set_new(f, "route", d->route ? json_string(d->route->pattern) : json_null());
    if (!d->route)
        json_object_set_new(f, "path", json_string(kw_log_clean(d->path, strlen(d->path), clean,
                                                                sizeof clean - 32)));
    json_object_set_new(f, "status", json_integer(d->status));
    json_object_set_new(f, "latency_ms", json_real((double)(d->ns / 1000) / 1000.0));
    const kw_principal *p = d->principal;
    json_object_set_new(f, "credential", json_string(credential(p)));
    if (p && (p->kind == KW_KEY_PERSONAL || p->kind == KW_KEY_SECRET) && p->key_id[0])
        json_object_set_new(f, "key_id", json_string(p->key_id));
    if (p && p->kind == KW_KEY_PERSONAL && p->user_id)
        json_object_set_new(f, "user_id", json_integer(p->user_id));
    else if (p && p->kind != KW_KEY_PERSONAL && p->session && p->user_id)
        json_object_set_new(f, "user_id", json_integer(p->user_id));
    if (p && (p->kind == KW_KEY_SECRET || p->kind == KW_KEY_PROJECT) && p->project_id)
        json_object_set_new(f, "project_id", json_integer(p->project_id));
    json_object_set_new(f, "ip", json_string(d->ip));
    kw_log_event(KW_LOG_INFO, "request", f, NULL);
}

void kw_http_observe(const kw_app *app, const kw_http_done *d)
{
    (void)app;
    kw_metrics_http(d->route ? (int)d->route->id : KW_M_ROUTE_NONE, d->status, d->ns);
    if (kw_log_get_format() == KW_LOG_JSON) access_line(d);
}
