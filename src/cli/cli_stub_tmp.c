#include "cli/cli.h"
int kw_cli_init(int argc, char **argv) { (void)argc; (void)argv; return 2; }
int kw_cli_serve(int argc, char **argv) { (void)argc; (void)argv; return 2; }
int kw_cli_key(int argc, char **argv) { (void)argc; (void)argv; return 2; }
