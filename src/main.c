/* main.c — the keyward program: dispatches subcommands to src/cli/.
 * Kept thin on purpose (as curl's tool_main.c): all behaviour lives in the
 * library or in the command modules. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "keyward/keyward.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command COMMANDS[] = {
    {"init", kw_cli_init, "create the first user, organization and project; print a phx_ key"},
    {"serve", kw_cli_serve, "run the HTTP API server"},
    {"key", kw_cli_key, "create, list, roll or revoke personal API keys"},
    {"scan", kw_cli_scan, "find leaked keys and secrets in files, stdin or git history"},
    {"redact", kw_cli_redact, "stdin to stdout, replacing keys and secrets with their mask"},
    {"hook", kw_cli_hook, "install or remove the git pre-commit hook"},
    {"user", kw_cli_user, "deactivate or activate a user; set a console password"},
    {"keys", kw_cli_key, "same as key; `keys report`: rotation, use and least-scope report"},
    {"import", kw_cli_import, "import users, projects and keys from a PostHog export"},
    {"org", kw_cli_org, "create or list organizations"},
    {"project", kw_cli_project, "create, list or delete projects (environments)"},
    {"member", kw_cli_member, "list an organization's members, change a level, remove one"},
    {"webhook", kw_cli_webhook, "an organization's signed webhooks: list, create, delete, test"},
    {"schema", kw_cli_schema, "print the OpenAPI document of the HTTP API"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: keyward <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-8s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out, "\nRun 'keyward <command> --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("keyward %s\n", KW_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(cmd, COMMANDS[i].name) == 0) return COMMANDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "keyward: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
