/* fuzz_import.c — `keyward import posthog` on hostile exports.
 *
 * Input: byte 0 bit 0 asks for --merge; the rest is parsed as JSON and
 * imported into a store that already holds an installation (`keyward init`:
 * one user, organization, project and personal key).
 * Invariants:
 *   - a refused import writes nothing: every table keeps its row count;
 *   - without --merge, an accepted import never grafts onto what existed:
 *     the existing user has the same keys and memberships, the existing
 *     organization the same members and projects, the existing project the
 *     same secret keys;
 *   - the counts the import reports add up to the rows it wrote.
 * Between inputs every row the import added is deleted, so each input
 * starts from the same installation. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "keyward/import.h"
#include "keyward/keyward.h"
#include "keyward/service.h"

static kw_store *store;
static kw_user user;
static kw_project project;
static char org_sql[160];

static const char *const TABLES[] = {"users", "organizations", "memberships", "projects",
                                     "personal_api_keys", "project_secret_api_keys"};
#define NTABLES (sizeof TABLES / sizeof TABLES[0])

/* What must not change for the installation's own rows. */
enum { OWN_KEYS, OWN_MEMBERSHIPS, ORG_MEMBERS, ORG_PROJECTS, PROJECT_SECRETS, OWN_FACTS };

static void snapshot(int64_t counts[NTABLES], int64_t own[OWN_FACTS])
{
    char sql[256];
    for (size_t i = 0; i < NTABLES; i++) {
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", TABLES[i]);
        counts[i] = kw_fz_sql_int(sql);
    }
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM personal_api_keys WHERE user_id=%lld",
             (long long)user.id);
    own[OWN_KEYS] = kw_fz_sql_int(sql);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM memberships WHERE user_id=%lld",
             (long long)user.id);
    own[OWN_MEMBERSHIPS] = kw_fz_sql_int(sql);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM memberships WHERE org_id='%s'", org_sql);
    own[ORG_MEMBERS] = kw_fz_sql_int(sql);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM projects WHERE org_id='%s'", org_sql);
    own[ORG_PROJECTS] = kw_fz_sql_int(sql);
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM project_secret_api_keys WHERE project_id=%lld",
             (long long)project.id);
    own[PROJECT_SECRETS] = kw_fz_sql_int(sql);
}

static void restore(void)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "DELETE FROM personal_api_keys WHERE user_id<>%lld;"
             "DELETE FROM project_secret_api_keys WHERE project_id<>%lld;"
             "DELETE FROM memberships WHERE user_id<>%lld OR org_id<>'%s';"
             "DELETE FROM projects WHERE id<>%lld;"
             "DELETE FROM organizations WHERE id<>'%s';"
             "DELETE FROM users WHERE id<>%lld;",
             (long long)user.id, (long long)project.id, (long long)user.id, org_sql,
             (long long)project.id, org_sql, (long long)user.id);
    kw_fz_sql(sql);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char value[KW_KEY_LEN + 1];
    kw_problem p;
    store = kw_fz_temp_store();
    FZ_CHECK(kw_bootstrap(store, "owner@example.com", "Owner org", "Owner project", &user,
                          &project, value, &p) == 0,
             "bootstrap: %s", p.detail);
    /* org ids are uuids: safe to paste into the harness's own SQL */
    snprintf(org_sql, sizeof org_sql, "%s", project.org_id);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned flags = (data[0] & 1) ? KW_IMPORT_MERGE : 0;
    json_t *doc = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
    if (!doc) return 0;
    int64_t before[NTABLES], after[NTABLES], own_before[OWN_FACTS], own_after[OWN_FACTS];
    snapshot(before, own_before);
    kw_import_counts counts;
    kw_problem p;
    int failed = kw_import_posthog(store, doc, flags, &counts, &p);
    json_decref(doc);
    snapshot(after, own_after);
    if (failed) {
        FZ_CHECK(p.detail[0] != '\0', "a refusal names the row");
        for (size_t i = 0; i < NTABLES; i++)
            FZ_CHECK(after[i] == before[i], "refused import wrote %s: %lld -> %lld", TABLES[i],
                     (long long)before[i], (long long)after[i]);
    } else {
        for (size_t i = 0; i < NTABLES; i++)
            FZ_CHECK(after[i] - before[i] == counts.imported[i], "%s: %lld rows written, %d reported",
                     TABLES[i], (long long)(after[i] - before[i]), counts.imported[i]);
        if (!flags)
            for (int f = 0; f < OWN_FACTS; f++)
                FZ_CHECK(own_after[f] == own_before[f], "grafted onto existing rows (fact %d)", f);
    }
    restore();
    return 0;
}
