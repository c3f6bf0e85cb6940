/* cli.h — the keyward subcommands.  Each takes the arguments after its own
 * name (argv[0] is the subcommand) and returns the process exit status. */
#ifndef KW_CLI_H
#define KW_CLI_H

int kw_cli_init(int argc, char **argv);
int kw_cli_serve(int argc, char **argv);
int kw_cli_key(int argc, char **argv);
int kw_cli_scan(int argc, char **argv);
int kw_cli_redact(int argc, char **argv);
int kw_cli_hook(int argc, char **argv);
int kw_cli_user(int argc, char **argv);
/* the key report: rotation, use, least privilege */
int kw_cli_key_report(int argc, char **argv);  /* `keys report`; argv[1] is "report" */
int kw_cli_import(int argc, char **argv);
/* `user set-password` (cli_password.c); argv[0] is "set-password". */
int kw_cli_user_set_password(int argc, char **argv);
/* organizations and projects (cli_org.c) */
int kw_cli_org(int argc, char **argv);
int kw_cli_project(int argc, char **argv);
/* an organization's members (cli_member.c) */
int kw_cli_member(int argc, char **argv);
/* an organization's webhooks (cli_webhook.c) */
int kw_cli_webhook(int argc, char **argv);
int kw_cli_schema(int argc, char **argv);

#endif
