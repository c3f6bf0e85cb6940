/* cli_org.c — `keyward org create|list` and `keyward project
 * create|list|delete`: organizations and projects (environments) from the
 * shell, so an operator can script a staging and a production project.
 *
 * Like `keyward key`, the command acts as a user (--email) with that
 * person's rights and no more: each action is authorized by the API's own
 * route-table row (kw_policy_match + kw_policy_check on the path the API
 * would serve), then runs the same lib/org/org.c operation with the same
 * JSON body, so the shell can bypass neither a level, nor a membership,
 * nor a validation rule, and the activity log says "cli". */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "keyward/keyward.h"
#include "keyward/policy.h"
#include "keyward/service.h"

static void usage(FILE *out, int projects)
{
    if (projects)
        fprintf(out,
                "usage: keyward project create --email EMAIL --name NAME [--org ORG_ID] [--db …]\n"
                "       keyward project list   --email EMAIL [--org ORG_ID] [--db …]\n"
                "       keyward project delete --email EMAIL PROJECT_ID [--db …]\n\n"
                "Without --org, the user's current organization (their first).  A new\n"
                "project's phc_ token is printed.  Deleting a project revokes its project\n"
                "secret keys (phs_) and its token at once, and deletes its flags.\n");
    else
        fprintf(out,
                "usage: keyward org create --email EMAIL --name NAME [--db …]\n"
                "       keyward org list   --email EMAIL [--db …]\n\n"
                "The user becomes the new organization's owner.\n");
}

struct opts {
    const char *email, *name, *org, *db, *arg;
};

/* 0 with the options read, or the exit status to return. */
static int parse(int argc, char **argv, int projects, struct opts *o)
{
    static const struct option LONG[] = {{"email", required_argument, 0, 'e'},
                                         {"name", required_argument, 0, 'n'},
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
        case 'n': o->name = optarg; break;
        case 'o':
            if (!projects) goto bad;
            o->org = optarg;
            break;
        case 'd': o->db = optarg; break;
        case 'h': usage(stdout, projects); return -1;
        default: goto bad;
        }
    }
    const char *action = argv[1];
    int takes_id = projects && strcmp(action, "delete") == 0;
    int known = strcmp(action, "create") == 0 || strcmp(action, "list") == 0 || takes_id;
    if (!known || (takes_id ? optind != argc - 1 : optind != argc)) goto bad;
    if (takes_id) o->arg = argv[optind];
    if (strcmp(action, "create") == 0 && !o->name) goto bad;
    return 0;
bad:
    usage(stderr, projects);
    return 2;
}

static int print_org(void *ctx, const kw_org *org, int level)
{
    (void)ctx;
    static const char *const NAMES[16] = {[1] = "member", [8] = "admin", [15] = "owner"};
    printf("%-36s  %-6s  %s\n", org->id, level >= 0 && level < 16 && NAMES[level] ? NAMES[level] : "?",
           org->name);
    return 0;
}

static int print_project(void *ctx, const kw_project *p)
{
    (void)ctx;
    printf("%-6lld  %-36s  %-58s  %s\n", (long long)p->id, p->org_id, p->api_token, p->name);
    return 0;
}

static int run(int argc, char **argv, int projects)
{
    const char *cmd = projects ? "project" : "org";
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout, projects);
        return argc < 2 ? 2 : 0;
    }
    struct opts o;
    int rc = parse(argc, argv, projects, &o);
    if (rc) return rc < 0 ? 0 : rc;
    kw_store *store;
    kw_principal me;
    if ((rc = kw_cli_open_as(o.db, o.email, &store, &me))) return rc;
    kw_call call = {.store = store, .actor = &me, .ip = "cli"};
    const char *action = argv[1];
    static kw_route_match m;
    kw_project project;
    kw_problem p;
    int level, failed = 0;
    char path[512];
    json_t *body = json_object();
    if (o.name) json_object_set_new(body, "name", json_string(o.name));
    if (!projects && strcmp(action, "list") == 0) {
        failed = kw_store_user_orgs(store, me.user_id, print_org, NULL) != 0;
        if (failed) fprintf(stderr, "keyward org: %s\n", KW_MSG_SERVER_ERROR);
    } else if (!projects) {
        kw_org org;
        failed = kw_cli_authorize(store, &me, cmd, "POST", "/api/organizations/", &m, &project, &level);
        if (!failed && (failed = kw_org_create(&call, body, &org, &p)))
            kw_cli_print_problem(cmd, &p);
        if (!failed)
            printf("Organization %s (%s) created; %s is its owner.\n", org.id, org.name, o.email);
    } else if (strcmp(action, "delete") == 0) {
        snprintf(path, sizeof path, "/api/projects/%s/", o.arg);
        failed = kw_cli_authorize(store, &me, cmd, "DELETE", path, &m, &project, &level);
        if (!failed && (failed = kw_project_delete(&call, &project, &p)))
            kw_cli_print_problem(cmd, &p);
        if (!failed)
            printf("Project %lld (%s) deleted; its project secret keys and token no longer work.\n",
                   (long long)project.id, project.name);
    } else {
        int create = strcmp(action, "create") == 0;
        snprintf(path, sizeof path, "/api/organizations/%s/projects/", o.org ? o.org : "@current");
        failed = kw_cli_authorize(store, &me, cmd, create ? "POST" : "GET", path, &m, &project, &level);
        if (!failed && create) {
            if ((failed = kw_project_create(&call, m.org, body, &project, &p)))
                kw_cli_print_problem(cmd, &p);
            else
                printf("Project %lld (%s) created in organization %s.\nProject token (public, for "
                       "SDKs): %s\n",
                       (long long)project.id, project.name, project.org_id, project.api_token);
        } else if (!failed) {
            failed = kw_store_org_projects(store, m.org, print_project, NULL) != 0;
            if (failed) fprintf(stderr, "keyward project: %s\n", KW_MSG_SERVER_ERROR);
        }
    }
    json_decref(body);
    kw_store_close(store);
    return failed ? 1 : 0;
}

int kw_cli_org(int argc, char **argv) { return run(argc, argv, 0); }
int kw_cli_project(int argc, char **argv) { return run(argc, argv, 1); }
