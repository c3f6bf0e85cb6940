/* cli_scan.c — `keyward scan`: options, the engine set-up, and the exit
 * status (0 clean, 1 findings, 2 usage or runtime error).
 *
 * The work is elsewhere: cli_scan_sources.c turns paths, stdin, staged
 * blobs or git history into findings, cli_scan_report.c prints them as
 * text, JSON or SARIF and applies a baseline.  This file only wires them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "cli/cli_git.h"
#include "cli/cli_scan.h"
#include "keyward/keyward.h"

static void scan_usage(FILE *out)
{
    fprintf(out,
            "usage: keyward scan [OPTIONS] [PATH...] [-]\n"
            "       keyward scan [OPTIONS] --staged [REPO]\n"
            "       keyward scan [OPTIONS] --git-history [--since REV] [REPO]\n"
            "OPTIONS: [--format text|json|sarif] [--baseline FILE] [--rules FILE]\n"
            "         [--max-size BYTES] [--threads N] [--no-ignore]\n"
            "         [--verify URL [--verify-key phx_…]]\n"
            "\n"
            "Finds PostHog/keyward keys (phx_, phs_, phc_) and other secrets.\n"
            "  PATH...          files or directories (default: .); '-' reads stdin\n"
            "  --staged         scan the blobs staged for the next commit\n"
            "  --git-history    scan every line ever added in the repository's history\n"
            "  REPO             with --staged/--git-history: the repository (default: the\n"
            "                   one holding the current directory); file names are\n"
            "                   reported relative to its top\n"
            "  --since REV      with --git-history: only commits not reachable from REV\n"
            "  --format F       text (default), json or sarif\n"
            "  --baseline FILE  ignore findings listed in FILE (output of --format json)\n"
            "  --rules FILE     add the rules of FILE (see docs/scanner.md)\n"
            "  --list-rules     print every rule (id, confidence, format) and exit\n"
            "  --max-size N     skip files larger than N bytes (default 10485760)\n"
            "  --threads N      worker threads (default: one per CPU)\n"
            "  --no-ignore      walk directories without applying .gitignore\n"
            "  --verify URL     ask the keyward server at URL whether the keyward keys found\n"
            "                   are live (nothing is revoked); needs a personal key from\n"
            "                   --verify-key or $KEYWARD_API_KEY\n"
            "A line containing 'keyward:allow' is never reported.\n"
            "Exit status: 0 clean, 1 findings, 2 usage or error.\n");
}

int cli_load_engine(const char *rules_path, kw_scan_rules **rules_out,
                    kw_scan_engine **engine_out)
{
    char err[512] = "";
    kw_scan_rules *rules = NULL;
    int rc = kw_scan_rules_new(&rules);
    if (rc) goto fail;
    if (rules_path && (rc = kw_scan_rules_load_file(rules, rules_path, err, sizeof err))) goto fail;
    char cache[4096];
    if ((rc = kw_scan_engine_new_cached(rules, kw_cli_cache_dir(cache, sizeof cache), engine_out,
                                        err, sizeof err)))
        goto fail;
    *rules_out = rules;
    return 0;
fail:
    fprintf(stderr, "keyward: %s\n", err[0] ? err : kw_strerror(rc));
    kw_scan_rules_free(rules);
    return -1;
}

int kw_cli_scan(int argc, char **argv)
{
    enum { OPT_STAGED = 256, OPT_HISTORY, OPT_SINCE, OPT_FORMAT, OPT_BASELINE, OPT_RULES,
           OPT_VERIFY, OPT_MAX_SIZE, OPT_THREADS, OPT_NO_IGNORE, OPT_VERIFY_KEY,
           OPT_LIST_RULES };
    static const struct option OPTIONS[] = {
        {"staged", no_argument, NULL, OPT_STAGED},
        {"git-history", no_argument, NULL, OPT_HISTORY},
        {"since", required_argument, NULL, OPT_SINCE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"baseline", required_argument, NULL, OPT_BASELINE},
        {"rules", required_argument, NULL, OPT_RULES},
        {"verify", required_argument, NULL, OPT_VERIFY},
        {"max-size", required_argument, NULL, OPT_MAX_SIZE},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"no-ignore", no_argument, NULL, OPT_NO_IGNORE},
        {"verify-key", required_argument, NULL, OPT_VERIFY_KEY},
        {"list-rules", no_argument, NULL, OPT_LIST_RULES},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int staged = 0, history = 0, list_rules = 0;
    const char *since = NULL, *format = "text", *baseline = NULL, *rules_path = NULL;
    const char *verify_url = NULL, *verify_key = getenv("KEYWARD_API_KEY");
    cli_scan_ctx ctx = {.max_size = 10u << 20, .progress = isatty(2)};
    char *end;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", OPTIONS, NULL)) != -1) {
        switch (opt) {
        case OPT_STAGED: staged = 1; break;
        case OPT_HISTORY: history = 1; break;
        case OPT_SINCE: since = optarg; break;
        case OPT_FORMAT: format = optarg; break;
        case OPT_BASELINE: baseline = optarg; break;
        case OPT_RULES: rules_path = optarg; break;
        case OPT_VERIFY: verify_url = optarg; break;
        case OPT_VERIFY_KEY: verify_key = optarg; break;
        case OPT_MAX_SIZE:
            ctx.max_size = strtoull(optarg, &end, 10);
            if (*end || !*optarg) goto usage_error;
            break;
        case OPT_THREADS:
            ctx.threads = (unsigned)strtoul(optarg, &end, 10);
            if (*end || !*optarg) goto usage_error;
            break;
        case OPT_NO_IGNORE: ctx.no_ignore = 1; break;
        case OPT_LIST_RULES: list_rules = 1; break;
        case 'h': scan_usage(stdout); return 0;
        default: goto usage_error;
        }
    }
    if (strcmp(format, "text") && strcmp(format, "json") && strcmp(format, "sarif")) {
        fprintf(stderr, "keyward scan: unknown format '%s'\n", format);
        goto usage_error;
    }
    if (since && !history) {
        fprintf(stderr, "keyward scan: --since needs --git-history\n");
        goto usage_error;
    }
    const char *repo = NULL; /* --staged/--git-history: the repository given, if any */
    if ((staged || history) && optind < argc) {
        if (argc - optind > 1 || strcmp(argv[optind], "-") == 0) {
            fprintf(stderr, "keyward scan: --staged/--git-history take at most one repository "
                            "path (not '-')\n");
            goto usage_error;
        }
        repo = argv[optind];
    }
    if (staged && history) {
        fprintf(stderr, "keyward scan: choose one of --staged and --git-history\n");
        goto usage_error;
    }
    if (verify_url && (!verify_key || !*verify_key)) {
        fprintf(stderr, "keyward scan: --verify needs a personal API key (--verify-key or "
                        "$KEYWARD_API_KEY)\n");
        goto usage_error;
    }

    kw_scan_rules *rules = NULL;
    kw_scan_engine *engine = NULL;
    if (cli_load_engine(rules_path, &rules, &engine)) return 2;
    if (list_rules) {
        for (size_t i = 0; i < kw_scan_rules_count(rules); i++)
            printf("%s\t%s\t%s\n", kw_scan_rule_id(rules, i),
                   kw_scan_confidence_name(kw_scan_rule_confidence(rules, i)),
                   kw_scan_rule_description(rules, i));
        kw_scan_engine_free(engine);
        kw_scan_rules_free(rules);
        return 0;
    }
    ctx.engine = engine;
    int status = 2, rc = kw_scan_scratch_new(engine, &ctx.scratch);
    if (rc) {
        fprintf(stderr, "keyward: %s\n", kw_strerror(rc));
        goto cleanup;
    }
    if ((staged || history) &&
        cli_git_use_repository(repo, staged, staged ? "--staged" : "--git-history")) {
        rc = -1;
    } else if (staged) {
        rc = cli_scan_staged(&ctx, repo);
    } else if (history) {
        rc = cli_scan_history(&ctx, repo, since);
    } else {
        char *dot[] = {"."};
        char **paths = optind < argc ? argv + optind : dot;
        size_t count = optind < argc ? (size_t)(argc - optind) : 1;
        rc = 0;
        for (size_t i = 0; i < count && !rc; i++)
            if (strcmp(paths[i], "-") == 0) rc = cli_scan_stdin(&ctx);
        /* the rest in one pool, so all cores share the whole list */
        size_t n = 0;
        for (size_t i = 0; i < count; i++)
            if (strcmp(paths[i], "-") != 0) paths[n++] = paths[i];
        if (!rc && n) rc = cli_scan_paths(&ctx, paths, n);
        cli_findings_sort(&ctx.findings);
    }
    if (rc) goto cleanup;
    if (baseline && cli_baseline_filter(&ctx.findings, baseline)) goto cleanup;
    if (verify_url && cli_verify_findings(&ctx.findings, verify_url, verify_key)) goto cleanup;

    if (strcmp(format, "json") == 0) rc = cli_report_json(stdout, &ctx.findings);
    else if (strcmp(format, "sarif") == 0) rc = cli_report_sarif(stdout, &ctx.findings, rules);
    else cli_report_text(stdout, &ctx.findings);
    if (fflush(stdout) != 0 || rc) {
        fprintf(stderr, "keyward scan: could not write the report\n");
        goto cleanup;
    }
    if (strcmp(format, "text") == 0 || isatty(2))
        fprintf(stderr, "keyward: %zu finding%s\n", ctx.findings.count,
                ctx.findings.count == 1 ? "" : "s");
    status = ctx.findings.count ? 1 : 0;
cleanup:
    cli_findings_free(&ctx.findings);
    kw_scan_scratch_free(ctx.scratch);
    kw_scan_engine_free(engine);
    kw_scan_rules_free(rules);
    return status;
usage_error:
    scan_usage(stderr);
    return 2;
}
