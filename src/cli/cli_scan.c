/* cli_scan.c — placeholder until the scanner lands (issue 5). */
#include <stdio.h>

#include "cli/cli.h"

static int not_yet(const char *what)
{
    fprintf(stderr, "keyward %s: not available in this build yet\n", what);
    return 2;
}

int kw_cli_scan(int argc, char **argv) { (void)argc; (void)argv; return not_yet("scan"); }
int kw_cli_redact(int argc, char **argv) { (void)argc; (void)argv; return not_yet("redact"); }
int kw_cli_hook(int argc, char **argv) { (void)argc; (void)argv; return not_yet("hook"); }
