/* cli_git.c — running git: capture its output, stream it, or keep one
 * `git cat-file --batch` process to fetch many blobs without a fork each.
 *
 * posix_spawnp with an argv array (no shell), stdin from /dev/null so git
 * never waits on the terminal, and stderr discarded where git's complaint
 * ("not a git repository") is an expected answer rather than an error.
 *
 * The repository git looks at is untrusted: every git run gets the
 * settings that make git execute something forced off (fsmonitor, hooks,
 * external diff, pager, askpass, signature verification, network
 * protocols), the system config is ignored, and its output is parsed as
 * hostile input (NUL-separated records, headers checked byte by byte, sizes
 * bounded before use).  git's own ownership check (safe.directory) is left
 * as git applies it: a repository owned by someone else is refused, never
 * waved through with a `-c safe.directory`. */
#include "cli/cli_git.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Repository config that would run a program, forced off on every git run. */
static const char *const GIT_SAFE[] = {
    "-c", "core.fsmonitor=false",  "-c", "core.pager=cat",
    "-c", "core.editor=false",     "-c", "core.askPass=",            "-c", "core.sshCommand=false",
    "-c", "protocol.allow=never",  "-c", "diff.external=",           "-c", "credential.helper=",
    "-c", "core.alternateRefsCommand=", "-c", "uploadpack.packObjectsHook=",
    "-c", "core.untrackedCache=false",
    /* `git log` verifies signed commits with gpg.program when the repository
     * sets log.showSignature: a program the repository names */
    "-c", "log.showSignature=false", "-c", "gpg.program=false",
    "-c", "gpg.openpgp.program=false", "-c", "gpg.x509.program=false",
    "-c", "gpg.ssh.program=false",
};
#define GIT_SAFE_N (sizeof GIT_SAFE / sizeof GIT_SAFE[0])

/* Environment git must not take a program or a config from. */
static void harden_git_env(void)
{
    static int done;
    if (done) return;
    done = 1;
    setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    setenv("GIT_PAGER", "cat", 1);
    setenv("PAGER", "cat", 1);
    setenv("GIT_EDITOR", "false", 1);
    setenv("GIT_ASKPASS", "", 1);
    setenv("SSH_ASKPASS", "", 1);
    setenv("GIT_TERMINAL_PROMPT", "0", 1);
    setenv("GIT_OPTIONAL_LOCKS", "0", 1); /* a scan never rewrites the index */
    unsetenv("GIT_EXTERNAL_DIFF");
    unsetenv("GIT_SSH");
    unsetenv("GIT_SSH_COMMAND");
    unsetenv("GIT_CONFIG_PARAMETERS");
    unsetenv("GIT_CONFIG_COUNT");
}

static int spawn(const char *const argv_in[], int stdin_fd, int stdout_fd, int keep_stderr,
                 pid_t *pid)
{
    size_t argc = 0;
    while (argv_in[argc]) argc++;
    int is_git = strcmp(argv_in[0], "git") == 0;
    const char **argv = calloc(argc + GIT_SAFE_N + 3, sizeof *argv);
    if (!argv) return -1;
    size_t a = 0;
    argv[a++] = argv_in[0];
    if (is_git) {
        harden_git_env();
        for (size_t i = 0; i < GIT_SAFE_N; i++) argv[a++] = GIT_SAFE[i];
        /* no hook runs; rev-parse is left the real value, the hook installer asks it */
        if (argc < 2 || strcmp(argv_in[1], "rev-parse") != 0) {
            argv[a++] = "-c";
            argv[a++] = "core.hooksPath=/dev/null";
        }
    }
    for (size_t i = 1; i < argc; i++) argv[a++] = argv_in[i];
    argv[a] = NULL;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdin_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    else posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
    if (!keep_stderr) posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(pid, argv[0], &actions, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    free(argv);
    return rc == 0 ? 0 : -1;
}

int cli_wait(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int cli_run_capture(const char *const argv[], int keep_stderr, char **out, size_t *len)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
    pid_t pid;
    if (spawn(argv, -1, fds[1], keep_stderr, &pid) != 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    close(fds[1]);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int failed = buf == NULL;
    while (!failed) {
        if (n + 1 >= cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                failed = 1;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t r = read(fds[0], buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
    }
    close(fds[0]);
    int status = cli_wait(pid);
    if (failed) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    if (len) *len = n;
    return status;
}

FILE *cli_spawn_reader(const char *const argv[], pid_t *pid)
{
    return cli_spawn_reader_from(argv, -1, pid);
}

FILE *cli_spawn_reader_from(const char *const argv[], int stdin_fd, pid_t *pid)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return NULL;
    if (spawn(argv, stdin_fd, fds[1], 1, pid) != 0) {
        close(fds[0]);
        close(fds[1]);
        return NULL;
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    if (!f) {
        close(fds[0]);
        cli_wait(*pid);
    }
    return f;
}

/* The variables by which the caller's environment names a repository (set,
 * for one, while git runs a hook); a repository given as a path must win. */
static void forget_env_repository(void)
{
    static const char *const VARS[] = {
        "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_PREFIX",
    };
    for (size_t i = 0; i < sizeof VARS / sizeof VARS[0]; i++) unsetenv(VARS[i]);
}

int cli_git_use_repository(const char *path, int need_work_tree, const char *what)
{
    const char *shown = path ? path : "the current directory";
    struct stat st;
    if (path && stat(path, &st) != 0) {
        fprintf(stderr, "keyward scan: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (path && !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "keyward scan: %s is not a directory; %s takes a git repository\n", path,
                what);
        return -1;
    }
    if (path) forget_env_repository();
    /* git's stderr is kept: "detected dubious ownership" is worth reading */
    const char *argv[] = {"git", "-C", path ? path : ".", "rev-parse", "--is-inside-work-tree",
                          NULL};
    char *out = NULL;
    int status = cli_run_capture(argv, 1, &out, NULL);
    int work_tree = status == 0 && out && strncmp(out, "true\n", 5) == 0;
    free(out);
    if (status != 0) {
        fprintf(stderr, "keyward scan: %s: %s is not in a git repository git will read\n", what,
                shown);
        return -1;
    }
    if (need_work_tree && !work_tree) {
        fprintf(stderr, "keyward scan: %s: %s has no work tree (a bare repository?)\n", what,
                shown);
        return -1;
    }
    return 0;
}

int cli_git_in_work_tree(const char *dir)
{
    const char *argv[] = {"git", "-C", dir, "rev-parse", "--is-inside-work-tree", NULL};
    char *out = NULL;
    int status = cli_run_capture(argv, 0, &out, NULL);
    int inside = status == 0 && out && strncmp(out, "true", 4) == 0;
    free(out);
    return inside;
}

struct cli_git_batch {
    pid_t pid;
    FILE *to_git;
    FILE *from_git;
};

int cli_git_batch_open(cli_git_batch **out, const char *repo)
{
    int in[2], outp[2];
    if (pipe2(in, O_CLOEXEC) != 0) return -1;
    if (pipe2(outp, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return -1;
    }
    cli_git_batch *b = calloc(1, sizeof *b);
    const char *in_repo[] = {"git", "-C", repo, "cat-file", "--batch", NULL};
    const char *here[] = {"git", "cat-file", "--batch", NULL};
    const char *const *argv = repo ? in_repo : here;
    if (!b || spawn(argv, in[0], outp[1], 1, &b->pid) != 0) {
        free(b);
        close(in[0]);
        close(in[1]);
        close(outp[0]);
        close(outp[1]);
        return -1;
    }
    close(in[0]);
    close(outp[1]);
    b->to_git = fdopen(in[1], "w");
    b->from_git = fdopen(outp[0], "r");
    if (!b->to_git || !b->from_git) {
        cli_git_batch_close(b);
        return -1;
    }
    *out = b;
    return 0;
}

int cli_git_batch_get(cli_git_batch *b, const char *oid, size_t max_size, char **buf, size_t *cap,
                      size_t *len)
{
    if (!cli_is_object_id(oid)) return -1;
    if (fprintf(b->to_git, "%s\n", oid) < 0 || fflush(b->to_git) != 0) return -1;
    char header[160];
    if (!fgets(header, sizeof header, b->from_git)) return -1;
    size_t size = 0;
    int h = cli_git_parse_header(header, strlen(header), oid, &size);
    if (h != 0) return -1; /* a blob id we were given that git cannot read */
    if (max_size && size > max_size) {
        /* drain it without keeping it: the stream stays in step */
        char sink[8192];
        for (size_t left = size; left;) {
            size_t want = left < sizeof sink ? left : sizeof sink;
            if (fread(sink, 1, want, b->from_git) != want) return -1;
            left -= want;
        }
        if (fgetc(b->from_git) != '\n') return -1;
        *len = size;
        return 2;
    }
    if (size + 1 > *cap) {
        char *bigger = realloc(*buf, size + 1);
        if (!bigger) return -1;
        *buf = bigger;
        *cap = size + 1;
    }
    if (fread(*buf, 1, size, b->from_git) != size) return -1;
    (*buf)[size] = '\0';
    if (fgetc(b->from_git) != '\n') return -1;
    *len = size;
    return 0;
}

void cli_git_batch_close(cli_git_batch *b)
{
    if (!b) return;
    if (b->to_git) fclose(b->to_git);
    if (b->from_git) fclose(b->from_git);
    if (b->pid > 0) cli_wait(b->pid);
    free(b);
}
