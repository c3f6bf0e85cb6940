/* cli_common.c — what every command shares: finding and opening the
 * database, and acting as a user from the shell. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_common.h"
#include "keyward/keyward.h"

const char *kw_cli_db_url(const char *option)
{
    if (option && *option) return option;
    const char *env = getenv("KEYWARD_DATABASE_URL");
    return env && *env ? env : "keyward.db";
}

kw_store *kw_cli_open_store(const char *option)
{
    const char *url = kw_cli_db_url(option);
    kw_store *store = NULL;
    int rc = kw_store_open(url, &store);
    if (rc) {
        /* Never echo a postgresql:// URL: it may carry a password. */
        fprintf(stderr, "keyward: cannot open database %s: %s\n",
                strncmp(url, "postgres", 8) == 0 ? "(PostgreSQL URL)" : url, kw_strerror(rc));
        return NULL;
    }
    return store;
}

int kw_cli_act_as(kw_store *store, const char *email, kw_principal *out)
{
    kw_user user;
    if (!email || !*email) {
        fprintf(stderr, "keyward: --email is required\n");
        return 2;
    }
    if (kw_store_user_by_email(store, email, &user)) {
        fprintf(stderr, "keyward: no user with email %s\n", email);
        return 1;
    }
    if (!user.is_active) {
        fprintf(stderr, "keyward: user %s is deactivated\n", email);
        return 1;
    }
    memset(out, 0, sizeof *out);
    out->session = 1;
    out->user_id = user.id;
    out->scopes.wildcard = 1;
    out->n_scoped_teams = out->n_scoped_orgs = -1;
    return 0;
}

int kw_cli_open_as(const char *db, const char *email, kw_store **store, kw_principal *out)
{
    *store = kw_cli_open_store(db);
    if (!*store) return 1;
    int rc = kw_cli_act_as(*store, email, out);
    if (rc) {
        kw_store_close(*store);
        *store = NULL;
    }
    return rc;
}

void kw_cli_print_problem(const char *cmd, const kw_problem *p)
{
    if (p->attr)
        fprintf(stderr, "keyward %s: %s: %s\n", cmd, p->attr, p->detail);
    else
        fprintf(stderr, "keyward %s: %s\n", cmd, p->detail);
}

int kw_cli_authorize(kw_store *store, const kw_principal *me, const char *cmd, const char *method,
                     const char *path, kw_route_match *m, kw_project *project, int *level)
{
    kw_problem p;
    if (kw_policy_match(method, path, m) != KW_MATCH_OK) {
        fprintf(stderr, "keyward %s: not found\n", cmd);
        return 1;
    }
    if (kw_policy_check(store, NULL, m, me, project, level, &p)) {
        kw_cli_print_problem(cmd, &p);
        return 1;
    }
    return 0;
}

const char *kw_cli_cache_dir(char *buf, size_t size)
{
    const char *set = getenv("KEYWARD_CACHE_DIR");
    if (set) return *set && strlen(set) < size ? strcpy(buf, set) : NULL;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    /* The XDG rule: a relative value is to be ignored. */
    int n = xdg && xdg[0] == '/'   ? snprintf(buf, size, "%s/keyward", xdg)
            : home && home[0] == '/' ? snprintf(buf, size, "%s/.cache/keyward", home)
                                     : -1;
    return n > 0 && (size_t)n < size ? buf : NULL;
}
