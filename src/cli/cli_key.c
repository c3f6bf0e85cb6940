/* cli_key.c — `keyward key create|list|roll|revoke`: personal keys from the
 * shell, acting as a user (--email).  Same rules as the API: the request is
 * built as the JSON body the API would receive and goes through lib/keys/pkey.c. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "keyward/keyward.h"
#include "keyward/service.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keyward key create --email EMAIL --label LABEL --scopes S1,S2 [--teams ID,…] [--db …]\n"
            "       keyward key list   --email EMAIL [--db …]\n"
            "       keyward key roll   --email EMAIL KEY_ID [--db …]\n"
            "       keyward key revoke --email EMAIL KEY_ID [--db …]\n"
            "       keyward key report [--email EMAIL] [--format text|json] [--rotation-days N] [--db …]\n\n"
            "Scopes are object:read|write (e.g. feature_flag:read) or *.  A new or rolled\n"
            "key's value is printed once.\n");
}

static json_t *split_list(const char *csv, int as_ints)
{
    json_t *list = json_array();
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", csv);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        json_array_append_new(list, as_ints ? json_integer(strtoll(tok, NULL, 10)) : json_string(tok));
    }
    return list;
}

static int print_key(void *ctx, const kw_pkey *k)
{
    (void)ctx;
    char created[KW_TIME_TEXT], used[KW_TIME_TEXT] = "never";
    kw_time_format(k->created_at, created);
    if (k->last_used_at) kw_time_format(k->last_used_at, used);
    printf("%-36s  %-14s  %-40s  scopes=%s  created=%s  last_used=%s\n", k->id, k->mask_value, k->label,
           k->scopes[0] ? k->scopes : "(none)", created, used);
    return 0;
}

int kw_cli_key(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *action = argv[1];
    if (strcmp(action, "report") == 0) return kw_cli_key_report(argc, argv);
    const char *email = NULL, *label = NULL, *scopes = NULL, *teams = NULL, *db = NULL;
    static const struct option opts[] = {{"email", required_argument, 0, 'e'},
                                         {"label", required_argument, 0, 'l'},
                                         {"scopes", required_argument, 0, 's'},
                                         {"teams", required_argument, 0, 't'},
                                         {"db", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': email = optarg; break;
        case 'l': label = optarg; break;
        case 's': scopes = optarg; break;
        case 't': teams = optarg; break;
        case 'd': db = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int needs_id = strcmp(action, "roll") == 0 || strcmp(action, "revoke") == 0;
    int known = needs_id || strcmp(action, "create") == 0 || strcmp(action, "list") == 0;
    if (!known || (needs_id && optind != argc - 1) || (!needs_id && optind != argc)) {
        usage(stderr);
        return 2;
    }
    kw_store *store;
    kw_principal me;
    int rc = kw_cli_open_as(db, email, &store, &me);
    if (rc) return rc;
    kw_call call = {.store = store, .actor = &me, .ip = "cli"};
    static kw_pkey key;
    char value[KW_KEY_LEN + 1] = "";
    kw_problem p;
    int refused = 0;
    if (strcmp(action, "list") == 0) {
        refused = kw_store_pkey_list(store, me.user_id, print_key, NULL) != 0;
        if (refused) kw_problem_set(&p, KW_P_SERVER, NULL, NULL, KW_MSG_SERVER_ERROR);
    } else if (strcmp(action, "create") == 0) {
        json_t *body = json_object();
        if (label) json_object_set_new(body, "label", json_string(label));
        if (scopes) json_object_set_new(body, "scopes", split_list(scopes, 0));
        if (teams) json_object_set_new(body, "scoped_teams", split_list(teams, 1));
        refused = kw_pkey_create(&call, body, &key, value, &p);
        json_decref(body);
    } else if (strcmp(action, "roll") == 0) {
        refused = kw_pkey_roll(&call, argv[optind], NULL, &key, value, &p);
    } else {
        refused = kw_pkey_delete(&call, argv[optind], &p);
        if (!refused) printf("Revoked key %s.\n", argv[optind]);
    }
    if (refused)
        kw_cli_print_problem(action, &p);
    else if (value[0])
        printf("Key %s (%s) — shown once, store it now:\n\n    %s\n\n", key.id, key.label, value);
    memset(value, 0, sizeof value);
    kw_store_close(store);
    return refused ? 1 : 0;
}
