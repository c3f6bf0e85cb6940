/* cli_redact.c — `keyward redact`: stdin to stdout, every key and secret
 * replaced by its mask.  The streaming logic lives in lib/scan/redact.c; this
 * file reads straight into the redactor's 1 MiB buffer (so a large file
 * goes at block-scan speed with no copy) and writes whatever the redactor
 * releases at once, which for a log pipe is each complete line as it
 * arrives. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_scan.h"
#include "keyward/keyward.h"

static int write_all(const char *data, size_t len, void *ctx)
{
    (void)ctx;
    while (len > 0) {
        ssize_t n = write(1, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return KW_ERR_IO;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static void redact_usage(FILE *out)
{
    fprintf(out, "usage: keyward redact [--rules FILE] < input > output\n"
                 "Copies stdin to stdout, replacing keys and secrets with their mask\n"
                 "(phx_...a1B2).  Complete lines are written as soon as they arrive.\n");
}

int kw_cli_redact(int argc, char **argv)
{
    static const struct option OPTIONS[] = {
        {"rules", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *rules_path = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", OPTIONS, NULL)) != -1) {
        if (opt == 'r') rules_path = optarg;
        else if (opt == 'h') {
            redact_usage(stdout);
            return 0;
        } else {
            redact_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        redact_usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed reader ends us through EPIPE */

    kw_scan_rules *rules = NULL;
    kw_scan_engine *engine = NULL;
    kw_redactor *redactor = NULL;
    int status = 2, rc;
    if (cli_load_engine(rules_path, &rules, &engine)) return 2;
    if ((rc = kw_redact_new(engine, write_all, NULL, &redactor))) goto fail;
    for (;;) {
        size_t room;
        char *space = kw_redact_space(redactor, &room);
        ssize_t n = read(0, space, room);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = KW_ERR_IO;
            goto fail;
        }
        if (n == 0) break;
        if ((rc = kw_redact_commit(redactor, (size_t)n))) goto fail;
    }
    if ((rc = kw_redact_finish(redactor))) goto fail;
    status = 0;
    goto cleanup;
fail:
    if (!(rc == KW_ERR_IO && errno == EPIPE)) fprintf(stderr, "keyward redact: %s\n", kw_strerror(rc));
cleanup:
    kw_redact_free(redactor);
    kw_scan_engine_free(engine);
    kw_scan_rules_free(rules);
    return status;
}
