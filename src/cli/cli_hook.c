/* cli_hook.c — `keyward hook install|uninstall`: the git pre-commit hook
 * that runs `keyward scan --staged` and blocks a commit with findings.
 *
 * The hooks directory comes from `git rev-parse --git-path hooks`, so
 * core.hooksPath and linked worktrees work.  The hook calls this very
 * binary by absolute path (from /proc/self/exe), falling back to `keyward`
 * on PATH when that file is gone.  A marker line tells uninstall (and a
 * re-install) that the hook is ours; someone else's hook is left alone
 * unless --force, and then kept as pre-commit.keyward-backup.  Every write
 * is relative to the hooks directory opened once without following a link,
 * through an exclusively created temporary file renamed into place, so a
 * link the repository planted is replaced or refused, never written through. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_git.h"
#include "keyward/strbuf.h"

#define HOOK_MARKER "# keyward-hook: pre-commit secret scan"

static void hook_usage(FILE *out)
{
    fprintf(out, "usage: keyward hook install [--force]\n"
                 "       keyward hook uninstall\n"
                 "Installs (or removes) a git pre-commit hook running 'keyward scan --staged'.\n");
}

/* Opens directory `path`, creating its last step if missing (a fresh
 * core.hooksPath).  A relative path (inside the repository: the common
 * case, and the one the repository itself shapes) is walked one step at a
 * time and no step may be a symlink; of an absolute path (the user's own
 * choice) only the last step may not be. */
static int open_no_links(const char *path)
{
    char *copy = strdup(path);
    if (!copy) return -1;
    const int dir_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
    char *slash = strrchr(copy, '/');
    const char *last = slash ? slash + 1 : copy;
    int cur = AT_FDCWD;
    if (copy[0] == '/') {
        if (slash == copy) cur = open("/", dir_flags);
        else {
            *slash = '\0';
            cur = open(copy, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
    } else if (slash) {
        *slash = '\0';
        for (char *step = copy, *next; cur != -1 && step; step = next) {
            next = strchr(step, '/');
            if (next) *next++ = '\0';
            if (!*step || !strcmp(step, ".")) continue;
            int fd = openat(cur, step, dir_flags);
            if (cur != AT_FDCWD) close(cur);
            cur = fd;
        }
    }
    int fd = -1;
    if (cur != -1) {
        if (mkdirat(cur, last, 0755) != 0 && errno != EEXIST) fd = -1;
        else fd = openat(cur, last, dir_flags);
        int saved = errno;
        if (cur != AT_FDCWD) close(cur);
        errno = saved;
    }
    free(copy);
    return fd;
}

/* The hooks directory, opened without following a symlink at its last
 * step (a repository can make .git/hooks, or core.hooksPath, a link to
 * somewhere it should not write); *shown is its path for messages.  -1
 * when outside a repository (*shown NULL) or when it cannot be opened. */
static int hooks_dir(char **shown)
{
    const char *argv[] = {"git", "rev-parse", "--git-path", "hooks", NULL};
    char *dir = NULL;
    *shown = NULL;
    if (cli_run_capture(argv, 0, &dir, NULL) != 0 || !dir || !dir[0]) {
        free(dir);
        return -1;
    }
    dir[strcspn(dir, "\n")] = '\0';
    *shown = dir;
    int fd = open_no_links(dir);
    if (fd < 0) {
        fprintf(stderr, "keyward hook: %s: %s\n", dir,
                errno == ELOOP || errno == ENOTDIR ? "a symbolic link (or not a directory) on the "
                                                     "way; refusing to write through it"
                                                   : strerror(errno));
        return -2;
    }
    return fd;
}

/* 1 when pre-commit in dirfd is our hook, 0 when something else is there
 * (a symlink, even a dangling one, is never ours), -1 when nothing is. */
static int hook_is_ours(int dirfd)
{
    struct stat st;
    if (fstatat(dirfd, "pre-commit", &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? -1 : 0;
    if (!S_ISREG(st.st_mode)) return 0;
    int fd = openat(dirfd, "pre-commit", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return 0;
    }
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

/* A temporary file created exclusively in dirfd (never an existing file or
 * a link planted under a guessable name); its name in tmp. */
static int make_temp(int dirfd, char tmp[64])
{
    for (int attempt = 0; attempt < 32; attempt++) {
        unsigned char r[8];
        if (RAND_bytes(r, sizeof r) != 1) return -1;
        snprintf(tmp, 64, ".pre-commit.keyward-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1],
                 r[2], r[3], r[4], r[5], r[6], r[7]);
        int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

static int write_hook(int dirfd, const char *shown)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) self[n] = '\0';
    else snprintf(self, sizeof self, "keyward");
    char tmp[64];
    int fd = make_temp(dirfd, tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "keyward hook: cannot write in %s: %s\n", shown, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlinkat(dirfd, tmp, 0);
        }
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
    int failed = fflush(f) != 0 || fchmod(fileno(f), 0755) != 0;
    failed |= fclose(f) != 0;
    /* rename replaces the directory entry itself, never what a link points at */
    if (!failed) failed = renameat(dirfd, tmp, dirfd, "pre-commit") != 0;
    if (failed) {
        fprintf(stderr, "keyward hook: cannot install %s/pre-commit: %s\n", shown, strerror(errno));
        unlinkat(dirfd, tmp, 0);
    }
    return failed ? -1 : 0;
}

static int open_hooks(char **shown)
{
    int dirfd = hooks_dir(shown);
    if (dirfd == -1) fprintf(stderr, "keyward hook: not inside a git repository\n");
    return dirfd;
}

static int hook_install(int force)
{
    char *shown = NULL;
    int dirfd = open_hooks(&shown);
    if (dirfd < 0) {
        free(shown);
        return 2;
    }
    int status = 1;
    if (hook_is_ours(dirfd) == 0) {
        if (!force) {
            fprintf(stderr, "keyward hook: %s/pre-commit exists and is not keyward's; kept it.\n"
                            "keyward hook: use --force to replace it (it is kept as "
                            "pre-commit.keyward-backup).\n", shown);
            goto cleanup;
        }
        /* the entry itself (a link stays a link) moves; an older backup is never overwritten */
        if (renameat2(dirfd, "pre-commit", dirfd, "pre-commit.keyward-backup", RENAME_NOREPLACE) != 0) {
            fprintf(stderr, "keyward hook: cannot back up %s/pre-commit: %s\n", shown,
                    strerror(errno));
            goto cleanup;
        }
        fprintf(stderr, "keyward hook: previous hook saved as %s/pre-commit.keyward-backup\n", shown);
    }
    if (write_hook(dirfd, shown) == 0) {
        printf("keyward: pre-commit hook installed at %s/pre-commit\n", shown);
        status = 0;
    }
cleanup:
    close(dirfd);
    free(shown);
    return status;
}

static int hook_uninstall(void)
{
    char *shown = NULL;
    int dirfd = open_hooks(&shown);
    if (dirfd < 0) {
        free(shown);
        return 2;
    }
    int status = 1;
    int ours = hook_is_ours(dirfd);
    if (ours < 0) {
        printf("keyward: no pre-commit hook installed\n");
        status = 0;
    } else if (!ours) {
        fprintf(stderr, "keyward hook: %s/pre-commit is not keyward's hook; left in place\n", shown);
    } else if (unlinkat(dirfd, "pre-commit", 0) != 0) {
        fprintf(stderr, "keyward hook: cannot remove %s/pre-commit: %s\n", shown, strerror(errno));
    } else {
        printf("keyward: pre-commit hook removed\n");
        status = 0;
    }
    close(dirfd);
    free(shown);
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
