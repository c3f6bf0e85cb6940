/* cli_git.h — the little git plumbing the scanner and the hook need.
 * git is run as a child process (never through a shell), so paths with
 * spaces or quotes need no escaping. */
#ifndef KW_CLI_GIT_H
#define KW_CLI_GIT_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Runs argv (argv[0] looked up on PATH) with stdin from /dev/null and
 * stderr discarded unless keep_stderr; captures stdout into a malloc'd,
 * NUL-terminated *out.  Returns the exit status, or -1 when it could not run. */
int cli_run_capture(const char *const argv[], int keep_stderr, char **out, size_t *len);

/* Starts argv with a pipe to read its stdout; *pid for cli_wait. */
FILE *cli_spawn_reader(const char *const argv[], pid_t *pid);
int cli_wait(pid_t pid);

/* True when `dir` is inside a git work tree. */
int cli_git_in_work_tree(const char *dir);

/* `git cat-file --batch`: one long-lived process answering object queries. */
typedef struct cli_git_batch cli_git_batch;
int cli_git_batch_open(cli_git_batch **out);
/* Reads object `name` (e.g. ":path" or a blob id) into *buf (grown as
 * needed).  Returns 0, 1 when missing, -1 on error. */
int cli_git_batch_get(cli_git_batch *b, const char *name, char **buf, size_t *cap, size_t *len);
void cli_git_batch_close(cli_git_batch *b);

#endif
