/* cli_webhook.c — `keyward webhook list|create|delete|test|deliveries`: an
 * organization's webhooks from the shell.
 *
 * As `keyward org`, the command acts as a user (--email) with that
 * person's rights and no more: each action is authorized by the API's own
 * route-table row (kw_policy_match + kw_policy_check on the path the API
 * would serve), then runs the same lib/events/webhook.c operation with the
 * same JSON body, so the shell bypasses neither the admin level nor a
 * validation rule.  The secret is printed once, by create. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "keyward/keyward.h"
#include "keyward/policy.h"
#include "keyward/service.h"
#include "keyward/webhook.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keyward webhook list       --email EMAIL [--org ORG_ID] [--db …]\n"
            "       keyward webhook create     --email EMAIL --url URL [--events E1,E2]\n"
            "                                  [--org ORG_ID] [--db …]\n"
            "       keyward webhook delete     --email EMAIL WEBHOOK_ID [--org ORG_ID] [--db …]\n"
            "       keyward webhook test       --email EMAIL WEBHOOK_ID [--org ORG_ID] [--db …]\n"
            "       keyward webhook deliveries --email EMAIL WEBHOOK_ID [--org ORG_ID] [--db …]\n\n"
            "Without --org, the user's current organization (their first); the user must\n"
            "be an admin there.  Events: key.created, key.rolled, key.deleted, key.revoked,\n"
            "key.expiring_soon, key.expired, key.rate_limited, webhook.test (default:\n"
            "all).  The secret (whsec_…) is printed once, at creation.  Deliveries are\n"
            "sent by `keyward serve` (docs/webhooks.md).\n");
}

struct opts {
    const char *email, *url, *events, *org, *db, *id;
};

static const char *const ACTIONS[] = {"list", "create", "delete", "test", "deliveries"};

/* 0 with the options read, or the exit status to return (-1: help). */
static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option LONG[] = {{"email", required_argument, 0, 'e'},
                                         {"url", required_argument, 0, 'u'},
                                         {"events", required_argument, 0, 'v'},
                                         {"org", required_argument, 0, 'o'},
                                         {"db", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", LONG, NULL)) != -1) {
        switch (c) {
        case 'e': o->email = optarg; break;
        case 'u': o->url = optarg; break;
        case 'v': o->events = optarg; break;
        case 'o': o->org = optarg; break;
        case 'd': o->db = optarg; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    const char *action = argv[1];
    int known = 0;
    for (size_t i = 0; i < sizeof ACTIONS / sizeof ACTIONS[0]; i++)
        if (strcmp(action, ACTIONS[i]) == 0) known = 1;
    int takes_id = strcmp(action, "list") != 0 && strcmp(action, "create") != 0;
    int create = strcmp(action, "create") == 0;
    if (!known || (takes_id ? optind != argc - 1 : optind != argc) || (create && !o->url) ||
        (!create && (o->url || o->events))) {
        usage(stderr);
        return 2;
    }
    if (takes_id) o->id = argv[optind];
    return 0;
}

static int print_webhook(void *ctx, const kw_webhook *w)
{
    (void)ctx;
    printf("%-36s  %-8s  %s  %s\n", w->id, w->enabled ? "enabled" : "disabled", w->url,
           strcmp(w->events, "[]") == 0 ? "(all events)" : w->events);
    return 0;
}

static int print_delivery(void *ctx, const kw_webhook_delivery *d)
{
    (void)ctx;
    char when[KW_TIME_TEXT];
    kw_time_format(d->created_at, when);
    printf("%-36s  %-18s  %-9s  %s  attempts=%lld  status=%lld  %s\n", d->id, d->event,
           d->delivered_at ? "delivered" : d->next_attempt_at ? "pending" : "failed", when,
           (long long)d->attempts, (long long)d->last_status, d->last_error);
    return 0;
}

/* {"url": …, "events": [comma-separated list]} */
static json_t *create_body(const struct opts *o)
{
    json_t *body = json_pack("{s:s}", "url", o->url);
    if (!body || !o->events) return body;
    json_t *events = json_array();
    const char *s = o->events;
    while (*s) {
        size_t n = strcspn(s, ",");
        json_array_append_new(events, json_stringn(s, n));
        s += n;
        if (*s == ',') s++;
    }
    json_object_set_new(body, "events", events);
    return body;
}

/* Authorizes `method` on the API path of this action, then runs it. */
static int act(kw_store *store, const kw_principal *me, const char *action, const struct opts *o)
{
    kw_call call = {.store = store, .actor = me, .ip = "cli"};
    int create = strcmp(action, "create") == 0, list = strcmp(action, "list") == 0;
    const char *method = list || strcmp(action, "deliveries") == 0 ? "GET"
                         : strcmp(action, "delete") == 0          ? "DELETE"
                                                                  : "POST";
    char path[512];
    int n = snprintf(path, sizeof path, "/api/organizations/%s/webhooks/%s%s%s",
                     o->org ? o->org : "@current", o->id ? o->id : "", o->id ? "/" : "",
                     strcmp(action, "test") == 0 ? "test/"
                     : strcmp(action, "deliveries") == 0 ? "deliveries/"
                                                        : "");
    static kw_route_match m;
    kw_project project;
    kw_problem p;
    int level;
    if (n < 0 || (size_t)n >= sizeof path || kw_policy_match(method, path, &m) != KW_MATCH_OK) {
        fprintf(stderr, "keyward webhook: not found\n");
        return 1;
    }
    if (kw_policy_check(store, NULL, &m, me, &project, &level, &p)) {
        kw_cli_print_problem("webhook", &p);
        return 1;
    }
    kw_webhook w;
    int failed = 0;
    if (list) {
        failed = kw_store_webhook_list(store, m.org, 1000, 0, print_webhook, NULL) != 0;
    } else if (create) {
        json_t *body = create_body(o);
        failed = kw_webhook_create(&call, m.org, body, &w, &p);
        json_decref(body);
        if (!failed) {
            printf("Webhook %s created in organization %s.\n"
                   "Signing secret (shown once; verify deliveries with it): %s\n",
                   w.id, w.org_id, w.secret);
            memset(w.secret, 0, sizeof w.secret);
        }
    } else if (strcmp(action, "delete") == 0) {
        if (!(failed = kw_webhook_delete(&call, m.org, m.id, &p))) printf("Webhook %s deleted.\n", m.id);
    } else if (strcmp(action, "test") == 0) {
        int retry_after;
        if (!(failed = kw_webhook_test(&call, m.org, m.id, &retry_after, &p)))
            printf("Test event queued for webhook %s.\n", m.id);
    } else {
        failed = kw_webhook_load(&call, m.org, m.id, &w, &p);
        if (!failed && kw_store_outbox_list(store, w.id, 1000, 0, print_delivery, NULL)) {
            kw_problem_set(&p, KW_P_SERVER, NULL, NULL, KW_MSG_SERVER_ERROR);
            failed = 1;
        }
    }
    if (failed && list)
        fprintf(stderr, "keyward webhook: %s\n", KW_MSG_SERVER_ERROR);
    else if (failed)
        kw_cli_print_problem("webhook", &p);
    return failed ? 1 : 0;
}

int kw_cli_webhook(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    struct opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    kw_store *store;
    kw_principal me;
    if ((rc = kw_cli_open_as(o.db, o.email, &store, &me))) return rc;
    rc = act(store, &me, argv[1], &o);
    kw_store_close(store);
    return rc;
}
