/* cli_import.c — `keyward import posthog --file F`: a PostHog export (the
 * JSON format of docs/import.md) into the store, in one transaction.
 * An export never grafts onto existing accounts unless --merge is given
 * and each existing row matches exactly; then rows already there are
 * skipped and counted.  The work is lib/org/import.c's; this file reads the
 * file and prints the counts. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "keyward/import.h"
#include "keyward/keyward.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keyward import posthog --file EXPORT.json [--merge] [--db FILE|postgresql://…]\n\n"
            "Imports users, organizations, memberships, projects (phc_ tokens kept), personal\n"
            "API keys (their stored hashes: they keep working) and each project's legacy\n"
            "feature-flags secure key (as a phs_ key with feature_flag:read).\n\n"
            "A user, organization or project that already exists stops the import, and keys\n"
            "and memberships attach only to rows the export creates.  --merge accepts an\n"
            "existing row when every identifying field matches it exactly (re-importing a\n"
            "newer export of the same installation).  See docs/import.md.\n");
}

int kw_cli_import(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "posthog") != 0) {
        fprintf(stderr, "keyward import: unknown source '%s' (only 'posthog')\n", argv[1]);
        return 2;
    }
    const char *file = NULL, *db = NULL;
    unsigned flags = 0;
    static const struct option opts[] = {{"file", required_argument, 0, 'f'},
                                         {"merge", no_argument, 0, 'm'},
                                         {"db", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': file = optarg; break;
        case 'd': db = optarg; break;
        case 'm': flags |= KW_IMPORT_MERGE; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!file || optind != argc) {
        usage(stderr);
        return 2;
    }
    json_error_t err;
    json_t *doc = strcmp(file, "-") == 0 ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &err)
                                         : json_load_file(file, JSON_REJECT_DUPLICATES, &err);
    if (!doc) {
        fprintf(stderr, "keyward import: %s: line %d: %s\n", file, err.line, err.text);
        return 1;
    }
    kw_store *store = kw_cli_open_store(db);
    if (!store) {
        json_decref(doc);
        return 1;
    }
    kw_import_counts counts;
    kw_problem p;
    int failed = kw_import_posthog(store, doc, flags, &counts, &p);
    json_decref(doc);
    kw_store_close(store);
    if (failed) {
        fprintf(stderr, "keyward import: %s (nothing was imported)\n", p.detail);
        return 1;
    }
    printf("Imported from %s:\n", file);
    for (int k = 0; k < KW_IMPORT_KINDS; k++)
        printf("  %-20s %d imported, %d already present\n", kw_import_kind_name(k),
               counts.imported[k], counts.skipped[k]);
    return 0;
}
