/* cli_common.h — helpers shared by the command modules. */
#ifndef KW_CLI_COMMON_H
#define KW_CLI_COMMON_H

#include "keyward/auth.h"
#include "keyward/policy.h"
#include "keyward/problem.h"
#include "keyward/store.h"

/* --db, else $KEYWARD_DATABASE_URL, else keyward.db */
const char *kw_cli_db_url(const char *option);
kw_store *kw_cli_open_store(const char *option);
/* The shell user acts as the person with that email (all their rights,
 * none beyond: membership checks still apply). 0, or an exit status. */
int kw_cli_act_as(kw_store *store, const char *email, kw_principal *out);
/* Both: opens the store (--db) and acts as `email`.  0 with *store open
 * (close it with kw_store_close), or an exit status with nothing open. */
int kw_cli_open_as(const char *db, const char *email, kw_store **store, kw_principal *out);
void kw_cli_print_problem(const char *cmd, const kw_problem *p);
/* Where keyward keeps what it can rebuild (the scanner's compiled rules):
 * $KEYWARD_CACHE_DIR (empty: no cache), else $XDG_CACHE_HOME/keyward,
 * else $HOME/.cache/keyward.  Written into buf; NULL when there is none. */
const char *kw_cli_cache_dir(char *buf, size_t size);
/* Runs the API's own route-table row for `method path` as `me`
 * (kw_policy_match + kw_policy_check), so a command is allowed exactly
 * what the same request to the API would be: 0 when allowed (m->org,
 * *project and *level resolved), else 1 after printing why. */
int kw_cli_authorize(kw_store *store, const kw_principal *me, const char *cmd, const char *method,
                     const char *path, kw_route_match *m, kw_project *project, int *level);

#endif
