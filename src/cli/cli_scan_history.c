/* cli_scan_history.c — `keyward scan --git-history [REPO]`: every line ever
 * added in the repository, each secret reported once, at the commit that
 * added it.
 *
 * `git rev-list --all` (or `--all ^REV`) lists the commits; they are dealt
 * round-robin to --threads workers, each of which runs its own
 * `git log -p -U0 --no-walk=unsorted --stdin` on its share (git's diffing
 * is most of the cost and is single-threaded, so this is what uses the
 * other cores).  A worker reads git's output in large blocks and splits it
 * into lines in place (no copy, no allocation per line); the added lines of
 * each file diff are gathered into one buffer, with a map to their line
 * numbers in the new file, and scanned at once.  The workers' findings are
 * merged back into `git log` order, so the report is the same whatever the
 * thread count.
 *
 * git's output is hostile input (the repository is someone else's): each
 * "commit" line must name the next commit the worker asked for, a file
 * name is taken from the "+++ " line and only used to name findings, hunk
 * counts only decide which lines are diff body, and a line of any length
 * is read whole. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>

#include "cli/cli_git.h"
#include "cli/cli_scan.h"
#include "keyward/keyward.h"
#include "keyward/strbuf.h"

typedef struct history {
    cli_scan_ctx *ctx;
    char *const *commits; /* the worker's share, in the order git prints them */
    size_t ncommits, next, stride, first;
    int bad_output;
    char commit[41];
    char *file;       /* the current file diff's new name, NULL for a deletion */
    char *text;       /* its added lines, '\n'-terminated */
    size_t len, cap;
    size_t *line_map; /* per added line: its number in the new file */
    size_t lines, lines_cap;
    long old_left, new_left; /* lines still to come in the current hunk */
    size_t new_line;
} history;

static int out_of_memory(void)
{
    fprintf(stderr, "keyward scan: out of memory reading history\n");
    return -1;
}

static int add_line(history *h, const char *s, size_t n)
{
    if (h->len + n + 1 > h->cap) {
        size_t cap = h->cap ? h->cap : 1 << 16;
        while (cap < h->len + n + 1) cap *= 2;
        char *t = realloc(h->text, cap);
        if (!t) return out_of_memory();
        h->text = t;
        h->cap = cap;
    }
    if (h->lines == h->lines_cap) {
        size_t cap = h->lines_cap ? h->lines_cap * 2 : 4096;
        size_t *m = realloc(h->line_map, cap * sizeof *m);
        if (!m) return out_of_memory();
        h->line_map = m;
        h->lines_cap = cap;
    }
    memcpy(h->text + h->len, s, n);
    h->len += n;
    h->text[h->len++] = '\n';
    h->line_map[h->lines++] = h->new_line;
    return 0;
}

static int flush(history *h)
{
    int rc = 0;
    if (h->file && h->len && !kw_scan_looks_binary(h->text, h->len)) {
        cli_findings *list = &h->ctx->findings;
        size_t before = list->count;
        rc = cli_scan_lines(h->ctx, h->text, h->len, h->file, h->commit, h->line_map, h->lines);
        /* commit i of the worker is commit first + i * stride of git log */
        for (size_t i = before; i < list->count; i++)
            list->items[i].order = h->first + (h->next - 1) * h->stride;
    }
    free(h->file);
    h->file = NULL;
    h->len = 0;
    h->lines = 0;
    return rc;
}

/* "+++ b/path" (git may quote unusual names: "+++ \"b/p\\tq\""; the quotes
 * are stripped and escapes kept as they are, which is enough to name it). */
static char *diff_path(const char *s, size_t n)
{
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    if (n >= 2 && s[0] == 'b' && s[1] == '/') {
        s += 2;
        n -= 2;
    }
    return strndup(s, n);
}

/* A decimal count of a hunk header, bounded (a hostile header cannot wrap it). */
static long hunk_number(const char **p, const char *end)
{
    long v = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        if (v < 100000000L) v = v * 10 + (**p - '0');
        (*p)++;
    }
    return v;
}

#define STARTS(line, n, lit) ((n) >= sizeof lit - 1 && memcmp(line, lit, sizeof lit - 1) == 0)

/* One line of `git log -p` output, without its '\n'; 0, or non-zero after
 * printing why (no memory, a scan error). */
static int history_line(history *h, const char *line, size_t n)
{
    if (h->old_left > 0 || h->new_left > 0) {
        char c = n ? line[0] : ' ';
        if (c == '+') {
            h->new_left--;
            int rc = h->file ? add_line(h, line + 1, n - 1) : 0;
            h->new_line++;
            return rc;
        }
        if (c == '-') {
            h->old_left--;
        } else if (c == ' ') {
            h->old_left--;
            h->new_left--;
            h->new_line++;
        } /* '\\ No newline at end of file' changes nothing */
        return 0;
    }
    if (STARTS(line, n, "commit ")) {
        int rc = flush(h);
        /* exactly the next commit asked for, or git's output is not understood */
        if (rc == 0 && (h->next >= h->ncommits || n - 7 != strlen(h->commits[h->next]) ||
                        memcmp(line + 7, h->commits[h->next], n - 7) != 0)) {
            fprintf(stderr, "keyward scan: unexpected output from git log\n");
            h->bad_output = 1;
            return -1;
        }
        if (rc == 0) {
            h->next++;
            size_t l = n - 7 < sizeof h->commit - 1 ? n - 7 : sizeof h->commit - 1;
            memcpy(h->commit, line + 7, l);
            h->commit[l] = '\0';
        }
        return rc;
    }
    if (STARTS(line, n, "diff --git ")) return flush(h);
    if (STARTS(line, n, "+++ ")) {
        free(h->file);
        h->file = NULL;
        if (n - 4 == 9 && memcmp(line + 4, "/dev/null", 9) == 0) return 0;
        return (h->file = diff_path(line + 4, n - 4)) ? 0 : out_of_memory();
    }
    if (STARTS(line, n, "@@ -")) {
        /* @@ -a[,b] +c[,d] @@ */
        const char *p = line + 4, *end = line + n;
        long old_count = 1, new_count = 1, new_start = 0;
        hunk_number(&p, end);
        if (p < end && *p == ',') p++, old_count = hunk_number(&p, end);
        if (end - p >= 2 && p[0] == ' ' && p[1] == '+') {
            p += 2;
            new_start = hunk_number(&p, end);
            if (p < end && *p == ',') p++, new_count = hunk_number(&p, end);
        }
        h->old_left = old_count;
        h->new_left = new_count;
        h->new_line = (size_t)new_start;
    }
    return 0;
}

/* Reads fd to its end, handing each line to history_line.  Lines are cut
 * out of a block buffer in place; one longer than the buffer grows it. */
static int read_lines(history *h, int fd)
{
    size_t cap = 1 << 20, have = 0;
    char *buf = malloc(cap);
    if (!buf) return out_of_memory();
    int rc = 0;
    for (;;) {
        if (have == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                rc = out_of_memory();
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + have, cap - have);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            fprintf(stderr, "keyward scan: reading git log: %s\n", strerror(errno));
            rc = -1;
            break;
        }
        if (r == 0) {
            if (have) rc = history_line(h, buf, have); /* a last line without '\n' */
            break;
        }
        size_t from = 0, end = have + (size_t)r;
        for (;;) {
            const char *nl = memchr(buf + from, '\n', end - from);
            if (!nl) break;
            size_t n = (size_t)(nl - (buf + from));
            if ((rc = history_line(h, buf + from, n)) != 0) break;
            from += n + 1;
        }
        if (rc) break;
        have = end - from;
        memmove(buf, buf + from, have);
    }
    free(buf);
    return rc;
}

typedef struct worker {
    history h;
    cli_scan_ctx ctx; /* the caller's engine; its own scratch and findings */
    const char *repo;
    pthread_t thread;
    int rc;
} worker;

/* Runs `git log -p` on the worker's commits (given on stdin from a temp
 * file, so git never waits on us while we wait on it) and scans its output. */
static void *work(void *arg)
{
    worker *w = arg;
    w->rc = -1;
    FILE *ids = tmpfile();
    if (!ids) {
        fprintf(stderr, "keyward scan: cannot create a temporary file: %s\n", strerror(errno));
        return NULL;
    }
    for (size_t i = 0; i < w->h.ncommits; i++) fprintf(ids, "%s\n", w->h.commits[i]);
    if (fflush(ids) != 0 || fseek(ids, 0, SEEK_SET) != 0) {
        fprintf(stderr, "keyward scan: cannot write a temporary file\n");
        fclose(ids);
        return NULL;
    }
    /* -U0: only added lines matter, context is bytes to skip */
    const char *argv[] = {"git", "-C", w->repo ? w->repo : ".", "-c", "core.quotepath=off", "log",
                          "-p", "-U0", "--no-color", "--no-ext-diff", "--no-textconv",
                          "--no-show-signature", "--format=format:commit %H",
                          "--no-walk=unsorted", "--stdin", NULL};
    pid_t pid;
    FILE *log = cli_spawn_reader_from(argv, fileno(ids), &pid);
    fclose(ids);
    if (!log) {
        fprintf(stderr, "keyward scan: cannot run git log\n");
        return NULL;
    }
    int rc = read_lines(&w->h, fileno(log));
    if (rc == 0) rc = flush(&w->h);
    fclose(log);
    int status = cli_wait(pid);
    if (rc == 0 && status != 0) {
        fprintf(stderr, "keyward scan: git log failed\n");
        rc = -1;
    }
    if (rc == 0 && w->h.next != w->h.ncommits) {
        fprintf(stderr, "keyward scan: git log stopped before the last commit\n");
        rc = -1;
    }
    w->rc = rc;
    return NULL;
}

/* The commits to scan, newest first, as `git rev-list` prints them. */
static int list_commits(const char *repo, const char *since, char **out, size_t *len,
                        char ***ids, size_t *count)
{
    char *not_since = NULL;
    if (since && !(not_since = kw_strdupf("^%s", since))) return -1;
    const char *argv[] = {"git", "-C", repo ? repo : ".", "rev-list", "--all",
                          not_since ? not_since : "--", not_since ? "--" : NULL, NULL};
    int status = cli_run_capture(argv, 1, out, len);
    free(not_since);
    if (status != 0) {
        fprintf(stderr, "keyward scan: git rev-list failed (a bad --since?)\n");
        return -1;
    }
    size_t n = 0, cap = 0;
    for (char *p = *out, *end = *out + *len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        *nl = '\0';
        if (!cli_is_object_id(p)) {
            fprintf(stderr, "keyward scan: unexpected output from git rev-list\n");
            return -1;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            char **more = realloc(*ids, cap * sizeof *more);
            if (!more) return out_of_memory();
            *ids = more;
        }
        (*ids)[n++] = p;
        p = nl + 1;
    }
    *count = n;
    return 0;
}

/* The workers' findings, each list already in commit order, merged into one
 * list in commit order (a commit's findings all come from one worker). */
static int merge_findings(cli_findings *into, worker *w, size_t nw)
{
    size_t total = 0;
    for (size_t i = 0; i < nw; i++) total += w[i].ctx.findings.count;
    cli_finding *items = total ? malloc(total * sizeof *items) : NULL;
    if (total && !items) return out_of_memory();
    size_t *at = calloc(nw, sizeof *at);
    if (!at) {
        free(items);
        return out_of_memory();
    }
    for (size_t k = 0; k < total; k++) {
        size_t best = nw;
        for (size_t i = 0; i < nw; i++)
            if (at[i] < w[i].ctx.findings.count &&
                (best == nw || w[i].ctx.findings.items[at[i]].order <
                                   w[best].ctx.findings.items[at[best]].order))
                best = i;
        items[k] = w[best].ctx.findings.items[at[best]++];
    }
    for (size_t i = 0; i < nw; i++) { /* the items moved: free only the arrays */
        free(w[i].ctx.findings.items);
        w[i].ctx.findings = (cli_findings){0};
    }
    free(at);
    cli_findings_free(into); /* empty: history is the only source of a run */
    *into = (cli_findings){.items = items, .count = total, .cap = total};
    return 0;
}

int cli_scan_history(cli_scan_ctx *ctx, const char *repo, const char *since)
{
    char *out = NULL, **ids = NULL;
    size_t len = 0, count = 0;
    int rc = list_commits(repo, since, &out, &len, &ids, &count);
    size_t nw = ctx->threads ? ctx->threads : (size_t)sysconf(_SC_NPROCESSORS_ONLN);
    if (nw < 1) nw = 1;
    if (nw > 64) nw = 64;
    if (nw > count) nw = count ? count : 1;
    worker *w = rc == 0 ? calloc(nw, sizeof *w) : NULL;
    char ***shares = rc == 0 ? calloc(nw, sizeof *shares) : NULL;
    if (rc == 0 && (!w || !shares)) rc = out_of_memory();
    if (rc || count == 0) goto cleanup;
    /* round-robin: worker i gets commits i, i + nw, i + 2 nw, ... */
    for (size_t i = 0; i < nw && rc == 0; i++) {
        size_t n = (count - i + nw - 1) / nw;
        if (!(shares[i] = malloc(n * sizeof **shares))) {
            rc = out_of_memory();
            break;
        }
        for (size_t k = 0; k < n; k++) shares[i][k] = ids[i + k * nw];
        w[i].repo = repo;
        w[i].ctx = *ctx;
        w[i].ctx.findings = (cli_findings){0};
        w[i].h = (history){.ctx = &w[i].ctx, .commits = shares[i], .ncommits = n, .stride = nw,
                           .first = i};
        if (i > 0 && (rc = kw_scan_scratch_new(ctx->engine, &w[i].ctx.scratch)) != 0) {
            fprintf(stderr, "keyward: %s\n", kw_strerror(rc));
            w[i].ctx.scratch = NULL;
        }
    }
    if (rc) goto cleanup;
    /* git has run already (rev-list), so the environment git gets is set up
     * (cli_git.c sets it once, with setenv) before any thread spawns git */
    size_t started = 1;
    for (; started < nw; started++)
        if (pthread_create(&w[started].thread, NULL, work, &w[started]) != 0) break;
    work(&w[0]);
    for (size_t i = started; i < nw; i++) work(&w[i]); /* threads that could not start */
    for (size_t i = 1; i < started; i++) pthread_join(w[i].thread, NULL);
    for (size_t i = 0; i < nw && rc == 0; i++) rc = w[i].rc;
    if (rc == 0) rc = merge_findings(&ctx->findings, w, nw);
cleanup:
    for (size_t i = 0; w && i < nw; i++) {
        free(w[i].h.file);
        free(w[i].h.text);
        free(w[i].h.line_map);
        cli_findings_free(&w[i].ctx.findings);
        if (i > 0) kw_scan_scratch_free(w[i].ctx.scratch);
    }
    for (size_t i = 0; shares && i < nw; i++) free(shares[i]);
    free(shares);
    free(w);
    free(ids);
    free(out);
    return rc;
}
