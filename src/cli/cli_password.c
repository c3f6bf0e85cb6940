/* cli_password.c — `keyward user set-password EMAIL`: the way the first person
 * (made by `keyward init`) gets into the web console, and a recovery path
 * for anyone locked out.
 *
 * The password is read from standard input, never from the command line
 * (where `ps` and shell history would see it): on a terminal it is asked
 * twice without echo, otherwise one line is read (for scripts:
 * `printf '%s\n' "$PW" | keyward user set-password a@x.io`).  Setting a
 * password signs out every session of that user. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "keyward/keyward.h"
#include "keyward/session.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keyward user set-password EMAIL [--db FILE|postgresql://…]\n\n"
            "Reads the new password from standard input (asked twice, without echo, on a\n"
            "terminal; otherwise one line).  At least %d characters.  Signs out every\n"
            "console session of that user.\n",
            KW_PASSWORD_MIN_CHARS);
}

/* One line from stdin without its newline; echo off on a terminal. */
static int read_line(const char *prompt, char *buf, size_t size)
{
    int tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        fflush(stderr);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            tty = 0;
        }
    }
    int ok = fgets(buf, (int)size, stdin) != NULL;
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!ok) return -1;
    size_t n = strcspn(buf, "\r\n");
    if (buf[n] == '\0' && n == size - 1) return -2;  /* longer than the buffer */
    buf[n] = '\0';
    return 0;
}

static int set_password(const char *email, const char *db)
{
    char pw[KW_PASSWORD_MAX_BYTES + 2], again[KW_PASSWORD_MAX_BYTES + 2];
    int rc = read_line("New password: ", pw, sizeof pw);
    if (!rc && isatty(STDIN_FILENO)) {
        rc = read_line("Again: ", again, sizeof again);
        if (!rc && strcmp(pw, again) != 0) {
            fprintf(stderr, "keyward user: the passwords differ\n");
            rc = -3;
        }
        memset(again, 0, sizeof again);
    }
    if (rc == -1) fprintf(stderr, "keyward user: no password on standard input\n");
    if (rc == -2) fprintf(stderr, "keyward user: password longer than %d bytes\n", KW_PASSWORD_MAX_BYTES);
    kw_store *store = rc ? NULL : kw_cli_open_store(db);
    kw_principal me;
    int status = rc ? 1 : !store ? 1 : kw_cli_act_as(store, email, &me);
    if (!status) {
        kw_call call = {.store = store, .actor = &me, .ip = "cli"};
        kw_problem p;
        if (kw_user_set_password(&call, me.user_id, pw, &p)) {
            kw_cli_print_problem("user", &p);
            status = 1;
        } else {
            printf("Password set for %s; their console sessions were signed out.\n", email);
        }
    }
    memset(pw, 0, sizeof pw);
    kw_store_close(store);
    return status;
}

/* argv[0] is "set-password" (kw_cli_user dispatches here). */
int kw_cli_user_set_password(int argc, char **argv)
{
    const char *db = NULL;
    static const struct option opts[] = {{"db", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind != 1) {
        usage(stderr);
        return 2;
    }
    return set_password(argv[optind], db);
}
