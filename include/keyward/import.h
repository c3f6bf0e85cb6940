/* import.h — importing a PostHog installation's users, projects and keys.
 *
 * Moving from PostHog to keyward must not force every user to mint new
 * keys: PostHog stores personal keys hashed (pbkdf2_sha256 in older rows,
 * sha256 in newer ones), so the hashes themselves are imported and keep
 * verifying — lib/auth/auth.c rewrites a pbkdf2 row as sha256 on its first use.
 * Ids are kept (project ids appear in every API path and in keys'
 * scoped_teams; organization ids in scoped_organizations), as are phc_
 * tokens, masks and times.  Each project's legacy feature-flags secure key
 * (team.secret_api_token) becomes a phs_ project secret key with
 * feature_flag:read, stored as its sha256, as PostHog's own migration did.
 * The format is documented in docs/import.md. */
#ifndef KEYWARD_IMPORT_H
#define KEYWARD_IMPORT_H

#include <jansson.h>

#include "keyward/problem.h"
#include "keyward/store.h"

enum kw_import_kind {
    KW_IMPORT_USERS,
    KW_IMPORT_ORGS,
    KW_IMPORT_MEMBERSHIPS,
    KW_IMPORT_PROJECTS,
    KW_IMPORT_PERSONAL_KEYS,
    KW_IMPORT_SECRET_KEYS,
    KW_IMPORT_KINDS
};

#define KW_IMPORT_SECRET_LABEL "Feature flags secure key (imported)"

typedef struct kw_import_counts {
    int imported[KW_IMPORT_KINDS];
    int skipped[KW_IMPORT_KINDS];  /* already there: re-running is safe */
} kw_import_counts;

/* "users", "organizations", … as in the export and the CLI's summary. */
const char *kw_import_kind_name(enum kw_import_kind kind);

/* Accept users, organizations and projects that already exist when every
 * identifying field the export gives matches them exactly (re-importing a
 * newer export of the same installation).  Without it, any row naming
 * something that existed before the import stops the import. */
#define KW_IMPORT_MERGE 1u

/* Imports `doc` in one transaction: all of it, or nothing (0 / 1 with
 * *problem naming the offending row, e.g. "personal_api_keys[2].scopes").
 * Keys and memberships attach only to users and organizations that this
 * export creates (or, with KW_IMPORT_MERGE, lists with an exact match). */
int kw_import_posthog(kw_store *store, const json_t *doc, unsigned flags, kw_import_counts *counts,
                      kw_problem *problem);

#endif
