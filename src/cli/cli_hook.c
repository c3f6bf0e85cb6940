/* cli_hook.c — `keyward hook install|uninstall`: the git pre-commit hook
 * that runs `keyward scan --staged` and blocks a commit with findings.
 *
 * The hooks directory comes from `git rev-parse --git-path hooks`, so
 * core.hooksPath and linked worktrees work.  The hook calls this very
 * binary by absolute path (from /proc/self/exe), falling back to `keyward`
 * on PATH when that file is gone.  A marker line tells uninstall (and a
 * re-install) that the hook is ours; someone else's hook is left alone
 * unless --force, and then kept as pre-commit.keyward-backup. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_git.h"
#include "strbuf.h"

#define HOOK_MARKER "# keyward-hook: pre-commit secret scan"

static void hook_usage(FILE *out)
{
    fprintf(out, "usage: keyward hook install [--force]\n"
                 "       keyward hook uninstall\n"
                 "Installs (or removes) a git pre-commit hook running 'keyward scan --staged'.\n");
}

/* Path of the pre-commit hook, malloc'd; NULL outside a repository. */
static char *hook_path(void)
{
    const char *argv[] = {"git", "rev-parse", "--git-path", "hooks", NULL};
    char *dir = NULL;
    if (cli_run_capture(argv, 0, &dir, NULL) != 0 || !dir || !dir[0]) {
        free(dir);
        return NULL;
    }
    dir[strcspn(dir, "\n")] = '\0';
    char *path = kw_strdupf("%s/pre-commit", dir);
    if (path) mkdir(dir, 0755); /* a fresh core.hooksPath may not exist yet */
    free(dir);
    return path;
}

/* 1 when the file at path is our hook, 0 when it is not, -1 when absent. */
static int hook_is_ours(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int ours = 0;
    while (!ours && fgets(line, sizeof line, f)) ours = strstr(line, HOOK_MARKER) != NULL;
    fclose(f);
    return ours;
}

/* Writes `s` as a single-quoted shell word. */
static void shell_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    }
    fputc('\'', f);
}

static int write_hook(const char *path)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) self[n] = '\0';
    else snprintf(self, sizeof self, "keyward");
    char *tmp = kw_strdupf("%s.keyward-tmp", path);
    if (!tmp) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "keyward hook: cannot write %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    fprintf(f, "#!/bin/sh\n" HOOK_MARKER "\n"
               "# Installed by 'keyward hook install'; remove with 'keyward hook uninstall'.\n"
               "KEYWARD=");
    shell_quote(f, self);
    fprintf(f, "\n[ -x \"$KEYWARD\" ] || KEYWARD=keyward\n"
               "\"$KEYWARD\" scan --staged\n"
               "status=$?\n"
               "if [ \"$status\" -eq 1 ]; then\n"
               "  echo 'keyward: commit blocked: the staged changes contain the secrets listed above.' >&2\n"
               "  echo 'keyward: remove them (and rotate any real key), or mark a false positive with' >&2\n"
               "  echo \"keyward: 'keyward:allow' on its line. To bypass once: git commit --no-verify\" >&2\n"
               "  exit 1\n"
               "elif [ \"$status\" -ne 0 ]; then\n"
               "  echo \"keyward: secret scan failed (exit $status); commit blocked.\" >&2\n"
               "  exit \"$status\"\n"
               "fi\n"
               "exit 0\n");
    int failed = fclose(f) != 0 || chmod(tmp, 0755) != 0 || rename(tmp, path) != 0;
    if (failed) {
        fprintf(stderr, "keyward hook: cannot install %s: %s\n", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return failed ? -1 : 0;
}

static int hook_install(int force)
{
    char *path = hook_path();
    int status = 1;
    if (!path) {
        fprintf(stderr, "keyward hook: not inside a git repository\n");
        return 2;
    }
    if (hook_is_ours(path) == 0) {
        if (!force) {
            fprintf(stderr, "keyward hook: %s exists and is not keyward's; kept it.\n"
                            "keyward hook: use --force to replace it (it is kept as "
                            "pre-commit.keyward-backup).\n", path);
            goto cleanup;
        }
        char backup[PATH_MAX];
        snprintf(backup, sizeof backup, "%s.keyward-backup", path);
        if (rename(path, backup) != 0) {
            fprintf(stderr, "keyward hook: cannot back up %s: %s\n", path, strerror(errno));
            goto cleanup;
        }
        fprintf(stderr, "keyward hook: previous hook saved as %s\n", backup);
    }
    if (write_hook(path) == 0) {
        printf("keyward: pre-commit hook installed at %s\n", path);
        status = 0;
    }
cleanup:
    free(path);
    return status;
}

static int hook_uninstall(void)
{
    char *path = hook_path();
    int status = 1;
    if (!path) {
        fprintf(stderr, "keyward hook: not inside a git repository\n");
        return 2;
    }
    int ours = hook_is_ours(path);
    if (ours < 0) {
        printf("keyward: no pre-commit hook installed\n");
        status = 0;
    } else if (!ours) {
        fprintf(stderr, "keyward hook: %s is not keyward's hook; left in place\n", path);
    } else if (unlink(path) != 0) {
        fprintf(stderr, "keyward hook: cannot remove %s: %s\n", path, strerror(errno));
    } else {
        printf("keyward: pre-commit hook removed\n");
        status = 0;
    }
    free(path);
    return status;
}

int kw_cli_hook(int argc, char **argv)
{
    if (argc < 2) {
        hook_usage(stderr);
        return 2;
    }
    const char *action = argv[1];
    if (!strcmp(action, "--help") || !strcmp(action, "-h")) {
        hook_usage(stdout);
        return 0;
    }
    if (!strcmp(action, "install")) {
        int force = 0;
        for (int i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--force")) force = 1;
            else {
                hook_usage(stderr);
                return 2;
            }
        }
        return hook_install(force);
    }
    if (!strcmp(action, "uninstall") && argc == 2) return hook_uninstall();
    hook_usage(stderr);
    return 2;
}
