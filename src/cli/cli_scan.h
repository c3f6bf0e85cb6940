/* cli_scan.h — what the `keyward scan` files share: the collected findings
 * (with the file and commit they came from), the sources that produce them
 * (paths, stdin, staged blobs, history) and the reports that print them. */
#ifndef KW_CLI_SCAN_H
#define KW_CLI_SCAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "keyward/scan.h"

typedef struct cli_finding {
    char *file;       /* owned */
    char commit[41];  /* "" unless from --git-history */
    size_t line, column;
    const char *rule_id;
    const char *rule_description;
    kw_scan_confidence confidence;
    char mask[KW_MASK_MAX];
    char fingerprint[KW_SCAN_FINGERPRINT_LEN + 1];
    /* --verify: a keyward-format key (checksum holds) kept so the server
     * can be asked about it; never printed, wiped on free.  "" otherwise. */
    char key[KW_KEY_LEN + 1];
    int live;         /* -1 not asked, 0 not live, 1 live */
    size_t order;     /* --git-history: the commit's place in `git log` order */
} cli_finding;

typedef struct cli_findings {
    cli_finding *items;
    size_t count, cap;
} cli_findings;

/* Copies a library finding with its origin; 0 or KW_ERR_NOMEM.  `data`
 * is the scanned buffer (the secret is at f->secret_offset); a keyward key
 * found there is kept for --verify. */
int cli_findings_add(cli_findings *list, const kw_scan_finding *f, const char *data,
                     const char *file, const char *commit, size_t line_override);
void cli_findings_sort(cli_findings *list);
void cli_findings_free(cli_findings *list);

typedef struct cli_scan_ctx {
    const kw_scan_engine *engine;
    kw_scan_scratch *scratch; /* for single-threaded sources */
    uint64_t max_size;
    unsigned threads;
    int progress;             /* stderr is a TTY */
    int no_ignore;            /* walk directories without asking git (.gitignore not applied) */
    cli_findings findings;
} cli_scan_ctx;

/* Built-in rules plus an optional rules file, compiled; prints the error
 * and returns -1 on failure.  Shared by scan and redact (cli_scan.c). */
int cli_load_engine(const char *rules_path, kw_scan_rules **rules_out,
                    kw_scan_engine **engine_out);

/* Sources (cli_scan_sources.c); each returns 0 or an error already
 * printed to stderr (non-zero). */
int cli_scan_paths(cli_scan_ctx *ctx, char **paths, size_t count);
int cli_scan_stdin(cli_scan_ctx *ctx);
/* repo: the repository's directory (git -C), or NULL for the current one. */
int cli_scan_staged(cli_scan_ctx *ctx, const char *repo);
/* A file name made safe to print (malloc'd; see cli_scan_sources.c). */
char *cli_display_name(const char *raw);
/* cli_scan_history.c */
int cli_scan_history(cli_scan_ctx *ctx, const char *repo, const char *since);
/* Scans one buffer of lines from `file` (at `commit`, may be NULL); with a
 * line_map, buffer line i+1 is reported as line_map[i] (lines entries). */
int cli_scan_lines(cli_scan_ctx *ctx, const char *data, size_t len, const char *file,
                   const char *commit, const size_t *line_map, size_t lines);

/* Reports (cli_scan_report.c). */
int cli_baseline_filter(cli_findings *list, const char *path);
void cli_report_text(FILE *out, const cli_findings *list);
int cli_report_json(FILE *out, const cli_findings *list);
int cli_report_sarif(FILE *out, const cli_findings *list, const kw_scan_rules *rules);

/* --verify (cli_scan_verify.c): asks the keyward server at base_url which
 * of the keyward keys found are live (POST /api/secret_scanning/verify/,
 * with a personal key), without revoking anything; sets each finding's
 * `live`.  0, or -1 after printing why. */
int cli_verify_findings(cli_findings *list, const char *base_url, const char *api_key);

#endif
