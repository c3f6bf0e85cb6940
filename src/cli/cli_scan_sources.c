/* cli_scan_sources.c — where `keyward scan` gets its bytes.
 *
 *   paths    files as given; directories inside a git work tree through
 *            `git ls-files -co --exclude-standard -z` (so .gitignore is
 *            honoured exactly as git does), others by a walk that skips .git
 *            and never follows a symlink.  All files go to one worker pool.
 *   stdin    read whole, scanned once.
 *   staged   `git diff --cached --name-only -z --diff-filter=ACMR`, then
 *            each blob `:path` from one `git cat-file --batch` process.
 *   history  in cli_scan_history.c. */
#include <dirent.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_git.h"
#include "cli/cli_scan.h"
#include "keyward/keyward.h"
#include "keyward/strbuf.h"

/* ---- findings list -------------------------------------------------- */

/* A file name as reports show it: valid UTF-8 without control characters
 * is kept as it is; otherwise every byte that is not (and every control
 * byte, and the backslash) becomes \\xNN, so a name is never dropped from
 * JSON/SARIF (which need UTF-8) nor able to forge a line of text output. */
char *cli_display_name(const char *raw)
{
    const unsigned char *s = (const unsigned char *)raw;
    size_t n = strlen(raw);
    char *out = malloc(4 * n + 1), *o = out;
    if (!out) return NULL;
    int escaped = 0;
    for (size_t i = 0; i < n;) {
        size_t want = s[i] < 0x80 ? 1 : (s[i] & 0xe0) == 0xc0 ? 2 : (s[i] & 0xf0) == 0xe0 ? 3
                    : (s[i] & 0xf8) == 0xf0 ? 4 : 0;
        int ok = want > 0 && i + want <= n && s[i] >= 0x20 && s[i] != 0x7f;
        for (size_t k = 1; ok && k < want; k++) ok = (s[i + k] & 0xc0) == 0x80;
        if (ok && want == 2) ok = s[i] >= 0xc2;
        if (ok && want == 3) ok = !(s[i] == 0xe0 && s[i + 1] < 0xa0) && !(s[i] == 0xed && s[i + 1] >= 0xa0);
        if (ok && want == 4) ok = s[i] <= 0xf4 && !(s[i] == 0xf0 && s[i + 1] < 0x90) &&
                                  !(s[i] == 0xf4 && s[i + 1] >= 0x90);
        if (!ok) {
            escaped = 1;
            break;
        }
        i += want;
    }
    if (!escaped) {
        memcpy(out, raw, n + 1);
        return out;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] >= 0x7f || s[i] == '\\') {
            static const char HEX[] = "0123456789abcdef";
            *o++ = '\\';
            *o++ = 'x';
            *o++ = HEX[s[i] >> 4];
            *o++ = HEX[s[i] & 15];
        } else {
            *o++ = (char)s[i];
        }
    }
    *o = '\0';
    return out;
}

int cli_findings_add(cli_findings *list, const kw_scan_finding *f, const char *data,
                     const char *file, const char *commit, size_t line_override)
{
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 64;
        cli_finding *items = realloc(list->items, cap * sizeof *items);
        if (!items) return KW_ERR_NOMEM;
        list->items = items;
        list->cap = cap;
    }
    cli_finding *c = &list->items[list->count];
    memset(c, 0, sizeof *c);
    c->file = cli_display_name(file);
    if (!c->file) return KW_ERR_NOMEM;
    if (commit) snprintf(c->commit, sizeof c->commit, "%s", commit);
    c->line = line_override ? line_override : f->line;
    c->column = f->column;
    c->rule_id = f->rule_id;
    c->rule_description = f->rule_description;
    c->confidence = f->confidence;
    memcpy(c->mask, f->mask, sizeof c->mask);
    memcpy(c->fingerprint, f->fingerprint, sizeof c->fingerprint);
    c->live = -1;
    if (data && f->secret_len == KW_KEY_LEN &&
        kw_key_classify(data + f->secret_offset, f->secret_len, NULL) == KW_FORMAT_KEYWARD) {
        memcpy(c->key, data + f->secret_offset, KW_KEY_LEN);
        c->key[KW_KEY_LEN] = '\0';
    }
    list->count++;
    return KW_OK;
}

static int by_location(const void *pa, const void *pb)
{
    const cli_finding *a = pa, *b = pb;
    int c = strcmp(a->file, b->file);
    if (c) return c;
    if (a->line != b->line) return a->line < b->line ? -1 : 1;
    if (a->column != b->column) return a->column < b->column ? -1 : 1;
    return strcmp(a->rule_id, b->rule_id);
}

void cli_findings_sort(cli_findings *list)
{
    if (list->count > 1) qsort(list->items, list->count, sizeof *list->items, by_location);
}

void cli_findings_free(cli_findings *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].file);
        OPENSSL_cleanse(list->items[i].key, sizeof list->items[i].key);
    }
    free(list->items);
    list->items = NULL;
    list->count = list->cap = 0;
}

/* ---- path lists ----------------------------------------------------- */

typedef struct path_list {
    char **items;
    size_t count, cap;
} path_list;

static int path_push(path_list *l, char *owned)
{
    if (!owned) return -1;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items) {
            free(owned);
            return -1;
        }
        l->items = items;
        l->cap = cap;
    }
    l->items[l->count++] = owned;
    return 0;
}

static char *join_path(const char *dir, const char *name)
{
    if (strcmp(dir, ".") == 0) return strdup(name);
    size_t dl = strlen(dir);
    while (dl > 1 && dir[dl - 1] == '/') dl--;
    return kw_strdupf("%.*s/%s", (int)dl, dir, name);
}

static int walk_git(path_list *l, const char *dir)
{
    const char *argv[] = {"git", "-C", dir, "ls-files", "-co", "--exclude-standard", "-z", NULL};
    char *out = NULL;
    size_t len = 0;
    if (cli_run_capture(argv, 1, &out, &len) != 0) {
        free(out);
        fprintf(stderr, "keyward scan: git ls-files failed in %s\n", dir);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        const char *name = out + i;
        size_t n = strlen(name);
        if (n) rc = path_push(l, join_path(dir, name));
        i += n + 1;
    }
    free(out);
    return rc;
}

static int walk_plain(path_list *l, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "keyward scan: %s: %s\n", dir, strerror(errno));
        return -1; /* an unreadable directory is an error: its files would go unscanned */
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, ".git"))
            continue;
        char *path = join_path(dir, e->d_name);
        struct stat st;
        if (!path) {
            rc = -1;
        } else if (lstat(path, &st) != 0 || S_ISLNK(st.st_mode)) {
            free(path); /* symlinks are never followed */
        } else if (S_ISDIR(st.st_mode)) {
            rc = walk_plain(l, path);
            free(path);
        } else if (S_ISREG(st.st_mode)) {
            rc = path_push(l, path);
        } else {
            free(path);
        }
    }
    closedir(d);
    return rc;
}

typedef struct pool_ctx {
    cli_scan_ctx *ctx;
    path_list *paths;
    size_t done, unreadable;
    int failed;
} pool_ctx;

static int on_pool_finding(size_t index, const kw_scan_finding *f, const char *data, void *arg)
{
    pool_ctx *p = arg;
    if (cli_findings_add(&p->ctx->findings, f, data, p->paths->items[index], NULL, 0)) {
        p->failed = 1;
        return KW_ERR_NOMEM;
    }
    return 0;
}

static void on_pool_file(size_t index, kw_scan_file_status status, void *arg)
{
    pool_ctx *p = arg;
    if (status == KW_SCAN_FILE_ERROR || status == KW_SCAN_FILE_TOO_LARGE) {
        /* a tracked file deleted from the work tree has nothing to scan */
        struct stat st;
        int gone = status == KW_SCAN_FILE_ERROR && lstat(p->paths->items[index], &st) != 0 &&
                   errno == ENOENT;
        char *name = cli_display_name(p->paths->items[index]);
        fprintf(stderr, "%skeyward scan: %s %s\n", p->ctx->progress ? "\r\033[K" : "",
                gone ? "skipped, no longer exists:"
                : status == KW_SCAN_FILE_ERROR ? "cannot read" : "skipped, over --max-size:",
                name ? name : "(a file)");
        free(name);
        /* an unreadable file is an error, never "0 findings" */
        if (status == KW_SCAN_FILE_ERROR && !gone) p->unreadable++;
    }
    p->done++;
    if (p->ctx->progress && (p->done % 256 == 0 || p->done == p->paths->count))
        fprintf(stderr, "\r\033[Kscanned %zu/%zu files", p->done, p->paths->count);
}

int cli_scan_paths(cli_scan_ctx *ctx, char **paths, size_t count)
{
    path_list list = {0};
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        struct stat st;
        if (lstat(paths[i], &st) != 0) {
            fprintf(stderr, "keyward scan: %s: %s\n", paths[i], strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            rc = !ctx->no_ignore && cli_git_in_work_tree(paths[i]) ? walk_git(&list, paths[i])
                                                 : walk_plain(&list, paths[i]);
        } else {
            rc = path_push(&list, strdup(paths[i]));
        }
    }
    pool_ctx p = {.ctx = ctx, .paths = &list};
    if (rc == 0 && list.count) {
        kw_scan_files_opts opts = {
            .threads = ctx->threads,
            .max_size = ctx->max_size,
            .flags = KW_SCAN_LOCATE | KW_SCAN_HONOR_ALLOW,
            .on_finding = on_pool_finding,
            .on_file = on_pool_file,
            .ctx = &p,
        };
        int err = kw_scan_files(ctx->engine, (const char *const *)list.items, list.count, &opts);
        if (ctx->progress) fprintf(stderr, "\r\033[K");
        if (err) {
            fprintf(stderr, "keyward scan: %s\n", kw_strerror(err));
            rc = -1;
        } else if (p.unreadable) {
            fprintf(stderr, "keyward scan: %zu file%s could not be read\n", p.unreadable,
                    p.unreadable == 1 ? "" : "s");
            rc = -1;
        }
    }
    for (size_t i = 0; i < list.count; i++) free(list.items[i]);
    free(list.items);
    return rc;
}

/* ---- single buffers: stdin and staged blobs ------------------------- */

typedef struct buffer_ctx {
    cli_scan_ctx *ctx;
    const char *file;
    const char *commit;
    const size_t *line_map; /* history: buffer line -> line in the new file */
    size_t line_map_len;
} buffer_ctx;

static int on_buffer_finding(const kw_scan_finding *f, const char *data, void *arg)
{
    buffer_ctx *b = arg;
    size_t line = 0;
    if (b->line_map && f->line >= 1 && f->line <= b->line_map_len) line = b->line_map[f->line - 1];
    return cli_findings_add(&b->ctx->findings, f, data, b->file, b->commit, line);
}

static int scan_one(cli_scan_ctx *ctx, buffer_ctx *b, const char *data, size_t len)
{
    int rc = kw_scan_buffer(ctx->engine, ctx->scratch, data, len,
                            KW_SCAN_LOCATE | KW_SCAN_HONOR_ALLOW, on_buffer_finding, b);
    if (rc) {
        char *shown = cli_display_name(b->file);
        fprintf(stderr, "keyward scan: %s: %s\n", shown ? shown : "(a file)", kw_strerror(rc));
        free(shown);
    }
    return rc;
}

int cli_scan_lines(cli_scan_ctx *ctx, const char *data, size_t len, const char *file,
                   const char *commit, const size_t *line_map, size_t lines)
{
    buffer_ctx b = {.ctx = ctx, .file = file, .commit = commit, .line_map = line_map,
                    .line_map_len = lines};
    return scan_one(ctx, &b, data, len);
}

int cli_scan_stdin(cli_scan_ctx *ctx)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    int rc = -1;
    if (!buf) goto cleanup;
    for (;;) {
        if (len == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) goto cleanup;
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(0, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            fprintf(stderr, "keyward scan: stdin: %s\n", strerror(errno));
            goto cleanup;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    buffer_ctx b = {.ctx = ctx, .file = "-"};
    rc = scan_one(ctx, &b, buf, len);
cleanup:
    free(buf);
    return rc;
}

int cli_scan_staged(cli_scan_ctx *ctx, const char *repo)
{
    /* --raw names each staged blob by object id, never by "rev:path" */
    const char *argv[] = {"git", "-C", repo ? repo : ".", "diff", "--cached", "--raw", "-z",
                          "--no-abbrev", "--no-renames", "--no-ext-diff", "--no-textconv",
                          "--diff-filter=ACMR", NULL};
    char *recs = NULL, *blob = NULL;
    size_t recs_len = 0, cap = 0, len = 0;
    cli_git_batch *batch = NULL;
    int rc = -1;
    if (cli_run_capture(argv, 1, &recs, &recs_len) != 0) {
        fprintf(stderr, "keyward scan: git diff --cached failed\n");
        goto cleanup;
    }
    if (recs_len == 0) {
        rc = 0;
        goto cleanup;
    }
    if (cli_git_batch_open(&batch, repo) != 0) {
        fprintf(stderr, "keyward scan: cannot run git cat-file\n");
        goto cleanup;
    }
    for (size_t i = 0; i < recs_len;) {
        const char *mode, *oid, *name;
        size_t next = cli_parse_raw_record(recs, recs_len, i, &mode, &oid, &name);
        if (!next) {
            fprintf(stderr, "keyward scan: unexpected output from git diff --raw\n");
            goto cleanup;
        }
        i = next;
        if (strncmp(mode, "160000", 6) == 0) continue; /* a submodule: its own repository */
        char id[65];
        size_t idl = strcspn(oid, " ");
        memcpy(id, oid, idl);
        id[idl] = '\0';
        int got = cli_git_batch_get(batch, id, ctx->max_size, &blob, &cap, &len);
        if (got != 0) {
            char *shown = cli_display_name(name);
            if (got < 0) fprintf(stderr, "keyward scan: cannot read staged file %s\n", shown ? shown : name);
            else fprintf(stderr, "keyward scan: %s: skipped, %zu bytes is over --max-size\n",
                         shown ? shown : name, len);
            free(shown);
            if (got < 0) goto cleanup;
            continue;
        }
        if (kw_scan_looks_binary(blob, len)) continue;
        buffer_ctx b = {.ctx = ctx, .file = name};
        if (scan_one(ctx, &b, blob, len)) goto cleanup;
    }
    rc = 0;
cleanup:
    cli_git_batch_close(batch);
    free(recs);
    free(blob);
    return rc;
}
