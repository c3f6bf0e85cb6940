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
/* The same with stdin read from stdin_fd (which the caller still closes). */
FILE *cli_spawn_reader_from(const char *const argv[], int stdin_fd, pid_t *pid);
int cli_wait(pid_t pid);

/* Checks that git will read `path` (NULL: the current directory) as a
 * repository, with a work tree when need_work_tree; prints why not (naming
 * `what`, the option) and returns -1.  A path given (`scan --git-history
 * PATH`) also drops GIT_DIR and the other variables that would make git
 * look elsewhere; without one they stay (a hook's GIT_INDEX_FILE). */
int cli_git_use_repository(const char *path, int need_work_tree, const char *what);
/* True when `dir` is inside a git work tree. */
int cli_git_in_work_tree(const char *dir);

/* `git cat-file --batch`: one long-lived process answering object queries. */
typedef struct cli_git_batch cli_git_batch;
/* repo: run in that directory (git -C), or NULL for the current one. */
int cli_git_batch_open(cli_git_batch **out, const char *repo);
/* Reads blob `oid` (hex object id; never a "rev:path" name, whose syntax a
 * hostile file name could take over) into *buf (grown as needed).  Returns
 * 0, 2 when it is over max_size (not read; *len is its size), -1 when it
 * cannot be read or git's answer is malformed. */
int cli_git_batch_get(cli_git_batch *b, const char *oid, size_t max_size, char **buf, size_t *cap,
                      size_t *len);
/* Strict parse of one `cat-file --batch` header (n bytes, with its '\n')
 * for `oid`: 0 and *size for a blob, 1 for "<oid> missing", -1 otherwise. */
int cli_git_parse_header(const char *header, size_t n, const char *oid, size_t *size);
/* Parsers (cli_git_parse.c). */
/* One `git diff --raw -z` record at buf[i]: the new mode, object id and
 * path point into buf; returns the offset after it, 0 when malformed. */
size_t cli_parse_raw_record(const char *buf, size_t len, size_t i, const char **dst_mode,
                            const char **dst_oid, const char **path);
/* True for a full hex object id (sha1 or sha256). */
int cli_is_object_id(const char *s);
void cli_git_batch_close(cli_git_batch *b);

#endif
