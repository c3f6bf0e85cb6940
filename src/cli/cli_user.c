/* cli_user.c — `keyward user deactivate|activate EMAIL`: departure from
 * the shell; `keyward user set-password` is in cli_password.c.
 *
 * The operator at the shell holds the database already, so no membership
 * check applies (the API's PATCH /api/users/:id/ requires an organization
 * admin); the change still goes through lib/org/user.c, in one transaction
 * with its activity entries ("cli" as the address, no acting user).  A
 * running server drops its cached verifications within its auth
 * generation poll (200 ms), so the user's personal keys stop working
 * within a second; project secret keys they created keep working. */
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
            "usage: keyward user deactivate   EMAIL [--db FILE|postgresql://…]\n"
            "       keyward user activate     EMAIL [--db …]\n"
            "       keyward user set-password EMAIL [--db …]   (console password, from stdin)\n\n"
            "A deactivated user's personal API keys (phx_) stop working at once;\n"
            "project secret keys (phs_) they created keep working.\n");
}

int kw_cli_user(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *action = argv[1], *db = NULL;
    if (strcmp(action, "set-password") == 0) return kw_cli_user_set_password(argc - 1, argv + 1);
    static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    int active = strcmp(action, "activate") == 0;
    if ((!active && strcmp(action, "deactivate") != 0) || optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *email = argv[optind];
    kw_store *store = kw_cli_open_store(db);
    if (!store) return 1;
    kw_user user;
    int rc = kw_store_user_by_email(store, email, &user);
    if (rc) {
        if (rc == KW_ERR_NOTFOUND)
            fprintf(stderr, "keyward user: no user with email %s\n", email);
        else
            fprintf(stderr, "keyward user: %s\n", kw_strerror(rc));
        kw_store_close(store);
        return 1;
    }
    kw_call call = {.store = store, .ip = "cli"};
    kw_problem p;
    int was_active = user.is_active;
    if (kw_user_set_active(&call, user.id, active, &user, &p)) {
        kw_cli_print_problem(action, &p);
        kw_store_close(store);
        return 1;
    }
    if (was_active == active)
        printf("User %s is already %s.\n", email, active ? "active" : "deactivated");
    else
        printf("User %s %s.%s\n", email, active ? "activated" : "deactivated",
               active ? "" : " Their personal API keys no longer work.");
    kw_store_close(store);
    return 0;
}
