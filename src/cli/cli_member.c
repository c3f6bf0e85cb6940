/* cli_member.c — `keyward member list|set-level|remove`: an organization's
 * members from the shell, so an operator can script who may do what.
 *
 * As `keyward org` and `keyward project`, the command acts as a user
 * (--email) with that person's rights and no more: each action is
 * authorized by the API's own route-table row (kw_cli_authorize), then
 * runs the same lib/org/member.c operation with the same JSON body as
 * PATCH/DELETE /api/organizations/:org/members/:user_uuid/.  So the level
 * rules (never above one's own, the last owner stays) and the validation
 * of the level live in one place, and the activity log says "cli".  A
 * member is named by email or by user uuid; the level by name or number. */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "keyward/keyward.h"
#include "keyward/policy.h"
#include "keyward/service.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keyward member list      --email EMAIL --org ORG_ID [--db …]\n"
            "       keyward member set-level --email EMAIL --org ORG_ID USER LEVEL [--db …]\n"
            "       keyward member remove    --email EMAIL --org ORG_ID USER [--db …]\n\n"
            "Acts as the user --email, with the API's rules: only admins and owners\n"
            "change or remove members, never someone above their own level, never to\n"
            "a level above their own, and the last owner can be neither demoted nor\n"
            "removed.  ORG_ID may be @current (the user's first organization).  USER\n"
            "is an email address or a user uuid; LEVEL is member, admin or owner (or\n"
            "1, 8, 15).  Removing a member is departure from that organization: their\n"
            "personal keys stop reaching it at once; project secret keys they created\n"
            "keep working.\n");
}

static const char *level_name(int level)
{
    return level == KW_LEVEL_OWNER ? "owner" : level == KW_LEVEL_ADMIN ? "admin"
                                          : level == KW_LEVEL_MEMBER ? "member"
                                                                     : "?";
}

/* {"level": …}: a level name becomes its number; anything else is passed
 * as given (digits as a number), for lib/org/member.c to accept or refuse. */
static json_t *level_body(const char *text)
{
    static const struct {
        const char *name;
        int level;
    } NAMES[] = {{"member", KW_LEVEL_MEMBER}, {"admin", KW_LEVEL_ADMIN}, {"owner", KW_LEVEL_OWNER}};
    json_t *v = NULL;
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (strcmp(text, NAMES[i].name) == 0) v = json_integer(NAMES[i].level);
    if (!v && *text && strlen(text) < 6 && strspn(text, "0123456789") == strlen(text))
        v = json_integer(strtol(text, NULL, 10));
    if (!v) v = json_string(text);
    if (!v) v = json_null();  /* not UTF-8: refused as a bad level all the same */
    return json_pack("{s:o}", "level", v);
}

static int print_member(void *ctx, const kw_member *m)
{
    (void)ctx;
    printf("%-36s  %-6s  %s%s%s\n", m->user.uuid, level_name(m->level), m->user.email,
           m->user.first_name[0] ? "  " : "", m->user.first_name);
    return 0;
}

/* The user uuid for USER: an email is looked up, anything else is taken
 * as a uuid (an unknown one is the API's 404).  0, or 1 after printing. */
static int user_uuid(kw_store *store, const char *user, char out[KW_ID_LEN + 1])
{
    if (!strchr(user, '@')) {
        if (strlen(user) > KW_ID_LEN || !*user) {
            fprintf(stderr, "keyward member: no user %s\n", user);
            return 1;
        }
        strcpy(out, user);
        return 0;
    }
    kw_user u;
    if (kw_store_user_by_email(store, user, &u)) {
        fprintf(stderr, "keyward member: no user with email %s\n", user);
        return 1;
    }
    strcpy(out, u.uuid);
    return 0;
}

struct opts {
    const char *email, *org, *db;
};

/* 0 with the options read (positional arguments from optind), 2 on a
 * usage error, -1 after --help. */
static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option LONG[] = {{"email", required_argument, 0, 'e'},
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
        case 'o': o->org = optarg; break;
        case 'd': o->db = optarg; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
    }
    const char *action = argv[1];
    int want = strcmp(action, "list") == 0        ? 0
               : strcmp(action, "remove") == 0    ? 1
               : strcmp(action, "set-level") == 0 ? 2
                                                  : -1;
    if (want < 0 || argc - optind != want || !o->org || !*o->org) {
        usage(stderr);
        return 2;
    }
    return 0;
}

int kw_cli_member(int argc, char **argv)
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
    kw_call call = {.store = store, .actor = &me, .ip = "cli"};
    const char *action = argv[1];
    static kw_route_match m;
    kw_project project;
    kw_problem p;
    kw_member member;
    int level, failed;
    char path[512], uuid[KW_ID_LEN + 1];
    if (strcmp(action, "list") == 0) {
        snprintf(path, sizeof path, "/api/organizations/%s/members/", o.org);
        failed = kw_cli_authorize(store, &me, "member", "GET", path, &m, &project, &level);
        if (!failed && (failed = kw_store_org_members(store, m.org, INT32_MAX, 0, print_member,
                                                      NULL) != 0))
            fprintf(stderr, "keyward member: %s\n", KW_MSG_SERVER_ERROR);
    } else if ((failed = user_uuid(store, argv[optind], uuid)) == 0) {
        int set = strcmp(action, "set-level") == 0;
        snprintf(path, sizeof path, "/api/organizations/%s/members/%s/", o.org, uuid);
        failed = kw_cli_authorize(store, &me, "member", set ? "PATCH" : "DELETE", path, &m,
                                  &project, &level);
        if (!failed && set) {
            json_t *body = level_body(argv[optind + 1]);
            failed = kw_member_update(&call, m.org, level, uuid, body, &member, &p) != 0;
            json_decref(body);
            if (failed)
                kw_cli_print_problem("member", &p);
            else
                printf("%s is now %s of organization %s.\n", member.user.email,
                       member.level == KW_LEVEL_MEMBER  ? "a member"
                       : member.level == KW_LEVEL_ADMIN ? "an admin"
                                                        : "an owner",
                       m.org);
        } else if (!failed) {
            failed = kw_member_remove(&call, m.org, level, uuid, &p) != 0;
            if (failed)
                kw_cli_print_problem("member", &p);
            else
                printf("%s removed from organization %s; their personal keys no longer reach "
                       "it.\n",
                       argv[optind], m.org);
        }
    }
    kw_store_close(store);
    return failed ? 1 : 0;
}
