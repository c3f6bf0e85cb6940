/* cli_report.c — `keyward keys report` (also `keyward key report`): the
 * key report (rotation, use, least privilege) from the shell, the same as
 * GET /api/projects/:id/key_report/.
 *
 * With --email, the report covers that user's personal keys and the
 * project secret keys of every project of their organizations; without
 * it, every key in the store (the operator's view).  --format json prints
 * the same document as the HTTP report routes; text is one block per key.
 * Scope usage is whatever running servers have flushed (they do so every
 * few seconds and on shutdown). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "keyward/keyward.h"
#include "keyward/report.h"
#include "keyward/strbuf.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keyward keys report [--email EMAIL] [--format text|json] [--rotation-days N]\n"
            "                           [--db FILE|postgresql://…]\n\n"
            "Flags keys not rotated in N days (default 90), unused for 30 days or expiring\n"
            "within 14 days, and compares each key's scopes with the scopes it has used.\n");
}

struct walk {
    kw_store *store;
    const kw_report_opts *o;
    json_t *results;
    json_t *seen_projects;  /* ids already reported, as object keys */
    int rc;
};

static int add_project(void *ctx, const kw_project *p)
{
    struct walk *w = ctx;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)p->id);
    if (json_object_get(w->seen_projects, id)) return 0;
    json_object_set_new(w->seen_projects, id, json_true());
    w->rc = kw_report_project_keys(w->store, p, w->o, w->results);
    return w->rc;
}

static int add_user(void *ctx, const kw_user *u)
{
    struct walk *w = ctx;
    w->rc = kw_report_user_keys(w->store, u->id, NULL, w->o, w->results);
    return w->rc;
}

static void print_list(const char *name, json_t *list)
{
    printf("  %-17s", name);
    size_t i;
    json_t *v;
    if (json_array_size(list) == 0) printf("(none)");
    json_array_foreach(list, i, v) printf("%s%s", i ? ", " : "", json_string_value(v));
    printf("\n");
}

static void print_text(json_t *doc)
{
    size_t i;
    json_t *e;
    printf("%lld key(s); rotation window %lld days\n\n",
           (long long)json_integer_value(json_object_get(doc, "count")),
           (long long)json_integer_value(json_object_get(doc, "rotation_days")));
    json_array_foreach(json_object_get(doc, "results"), i, e) {
        json_t *f = json_object_get(e, "flags");
        const char *names[] = {"not_rotated", "unused", "expiring_soon", "expired"};
        char flags[96];  /* room for all four names */
        kw_strbuf sb;
        kw_sb_init(&sb, flags, sizeof flags);
        for (size_t k = 0; k < 4; k++)
            if (json_is_true(json_object_get(f, names[k])))
                kw_sb_appendf(&sb, "%s%s", flags[0] ? "," : "", names[k]);
        printf("%s  %s  %s  %s\n", json_string_value(json_object_get(e, "kind")),
               json_string_value(json_object_get(e, "id")),
               json_string_value(json_object_get(e, "mask_value")),
               json_string_value(json_object_get(e, "label")));
        printf("  %-17s%s\n", "flags", flags[0] ? flags : "-");
        print_list("scopes", json_object_get(e, "scopes"));
        print_list("scopes used", json_object_get(e, "scopes_used"));
        print_list("suggested", json_object_get(e, "suggested_scopes"));
        printf("  %-17s%s\n\n", "suggestion", json_string_value(json_object_get(e, "suggestion")));
    }
}

int kw_cli_key_report(int argc, char **argv)
{
    const char *email = NULL, *db = NULL, *format = "text";
    kw_report_opts o;
    kw_report_opts_init(&o);
    static const struct option opts[] = {{"email", required_argument, 0, 'e'},
                                         {"format", required_argument, 0, 'f'},
                                         {"rotation-days", required_argument, 0, 'r'},
                                         {"db", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': email = optarg; break;
        case 'f': format = optarg; break;
        case 'r': o.rotation_days = atoi(optarg); break;
        case 'd': db = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || o.rotation_days < 1 || o.rotation_days > 3650 ||
        (strcmp(format, "text") != 0 && strcmp(format, "json") != 0)) {
        usage(stderr);
        return 2;
    }
    kw_store *store = kw_cli_open_store(db);
    if (!store) return 1;
    struct walk w = {store, &o, json_array(), json_object(), 0};
    int rc;
    if (email) {
        kw_principal me;
        rc = kw_cli_act_as(store, email, &me);
        if (rc) {
            json_decref(w.results);
            json_decref(w.seen_projects);
            kw_store_close(store);
            return rc;
        }
        rc = kw_report_user_keys(store, me.user_id, NULL, &o, w.results);
        if (!rc) rc = kw_store_user_projects(store, me.user_id, add_project, &w);
    } else {
        rc = kw_store_user_list(store, add_user, &w);
        if (!rc) rc = kw_store_project_list(store, add_project, &w);
    }
    json_decref(w.seen_projects);
    if (rc) {
        fprintf(stderr, "keyward keys report: %s\n", kw_strerror(rc));
        json_decref(w.results);
        kw_store_close(store);
        return 1;
    }
    json_t *doc = kw_report_wrap(w.results, &o);
    if (strcmp(format, "json") == 0) {
        json_dumpf(doc, stdout, JSON_INDENT(2));
        printf("\n");
    } else {
        print_text(doc);
    }
    json_decref(doc);
    kw_store_close(store);
    return 0;
}
