/* cli_init.c — `keyward init`: the first user, organization, project and
 * personal key of a fresh install.  The key is printed once, here. */
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
            "usage: keyward init --email EMAIL [--org NAME] [--project NAME] [--db FILE|URL]\n\n"
            "Creates the first user (owner of a new organization), a project with its\n"
            "phc_ token, and prints one personal API key (phx_) with scope \"*\".\n"
            "Refuses to run on a database that already has users.\n");
}

int kw_cli_init(int argc, char **argv)
{
    const char *email = NULL, *org = "Default organization", *project = "Default project", *db = NULL;
    static const struct option opts[] = {{"email", required_argument, 0, 'e'},
                                         {"org", required_argument, 0, 'o'},
                                         {"project", required_argument, 0, 'p'},
                                         {"db", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'e': email = optarg; break;
        case 'o': org = optarg; break;
        case 'p': project = optarg; break;
        case 'd': db = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!email || !strchr(email, '@') || strlen(email) > KW_EMAIL_MAX || optind < argc) {
        usage(stderr);
        return 2;
    }
    kw_store *store = kw_cli_open_store(db);
    if (!store) return 1;
    kw_user user;
    kw_project proj;
    char value[KW_KEY_LEN + 1];
    kw_problem p;
    int rc = kw_bootstrap(store, email, org, project, &user, &proj, value, &p);
    if (rc) {
        kw_cli_print_problem("init", &p);
    } else {
        printf("Created user %s, organization \"%s\" and project %lld \"%s\".\n"
               "Project token (public, for capture and flags): %s\n\n"
               "Personal API key (scope *). It is shown once; store it now:\n\n    %s\n\n",
               user.email, org, (long long)proj.id, proj.name, proj.api_token, value);
    }
    memset(value, 0, sizeof value);
    kw_store_close(store);
    return rc ? 1 : 0;
}
