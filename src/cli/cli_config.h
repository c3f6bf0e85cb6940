/* cli_config.h — a command's settings from its flags, the environment and
 * a configuration file of `key = value` lines, in that order of
 * precedence, then the command's own default.  Every value, whatever it
 * came from, passes the setting's check; an unknown key, a repeated key or
 * a bad value is refused with a message naming where it came from. */
#ifndef KW_CLI_CONFIG_H
#define KW_CLI_CONFIG_H

#include <stddef.h>

/* Exit status of a configuration error (the same as a usage error). */
#define KW_CONFIG_EXIT 2

typedef struct {
    const char *key;  /* the file's key and the long flag's name: "listen" is --listen */
    const char *env;  /* its environment variable, or NULL */
    /* NULL when value is acceptable, else what it must be ("an integer 1-256") */
    const char *(*check)(const char *value);
    int empty_ok;     /* "" is a value (e.g. "serve none"), not "unset" */
    const char *value; /* resolved: NULL while unset */
    char *owned;       /* the copy made of a file's value */
} kw_setting;

/* The setting named key (NULL if none). */
kw_setting *kw_config_find(kw_setting *s, size_t n, const char *key);

/* A flag's value: checked, then set.  0, or KW_CONFIG_EXIT after printing
 * why to stderr (prefixed with cmd). */
int kw_config_flag(const char *cmd, kw_setting *s, const char *value);

/* Fills the settings no flag set from their environment variables, then
 * from the file: path when given (it must exist), else default_path when
 * that file exists.  Every key of the file is checked, even one a flag or
 * a variable overrides.  0, or KW_CONFIG_EXIT after printing why. */
int kw_config_resolve(const char *cmd, kw_setting *s, size_t n, const char *path,
                      const char *default_path);

void kw_config_free(kw_setting *s, size_t n);

/* Checks shared by commands. */
const char *kw_config_check_bool(const char *v);      /* true/false, yes/no, on/off, 1/0 */
int kw_config_bool(const char *v);                    /* 1 for a true spelling */
const char *kw_config_check_hostport(const char *v);  /* HOST:PORT */
const char *kw_config_check_nonempty(const char *v);

#endif
