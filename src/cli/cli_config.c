/* cli_config.c — settings from flags, environment and a configuration file
 * (see cli_config.h).  The file is read with inih (Debian's libinih), set
 * strict: no [sections], no values continued on indented lines, no inline
 * comments (a value is taken as written, so a ";" in a URL stays), lines up
 * to 8192 characters.  Comments are whole lines starting with '#' or ';'. */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "keyward/strbuf.h"
#include "cli/cli_config.h"

kw_setting *kw_config_find(kw_setting *s, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s[i].key, key) == 0) return &s[i];
    return NULL;
}

/* in, at most 80 bytes of it, with bytes that are not printable ASCII
 * written \xNN: a message never carries a control or invalid byte. */
static const char *printable(char out[330], const char *in)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && i < 80; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, 5, "\\x%02x", ch);
    }
    out[o] = '\0';
    return out;
}

/* What value must be when it is not acceptable for s, else NULL. */
static const char *bad(const kw_setting *s, const char *value)
{
    if (!*value && !s->empty_ok) return "given a value";
    return s->check ? s->check(value) : NULL;
}

/* Checks value; on failure prints "keyward CMD: SUBJECT must be WHAT (got …)". */
static int checked(const char *cmd, const kw_setting *s, const char *value, const char *subject)
{
    const char *what = bad(s, value);
    if (!what) return 0;
    char shown[330];
    fprintf(stderr, "keyward %s: %s must be %s (got \"%s\")\n", cmd, subject, what,
            printable(shown, value));
    return KW_CONFIG_EXIT;
}

int kw_config_flag(const char *cmd, kw_setting *s, const char *value)
{
    char subject[160];
    snprintf(subject, sizeof subject, "--%s", s->key);
    if (checked(cmd, s, value, subject)) return KW_CONFIG_EXIT;
    s->value = value;
    return 0;
}

/* The file's reader stops at the first refused line (inih then returns its
 * number); msg says why. */
struct file_ctx {
    kw_setting *s;
    size_t n;
    unsigned char seen[64];  /* a key given twice in the file is refused */
    char msg[512];
};

static int on_line(void *user, const char *section, const char *name, const char *value)
{
    struct file_ctx *ctx = user;
    if (section && *section) {
        char shown[330];
        snprintf(ctx->msg, sizeof ctx->msg, "[%s]: sections are not used; write key = value lines",
                 printable(shown, section));
        return 0;
    }
    kw_setting *s = kw_config_find(ctx->s, ctx->n, name);
    if (!s) {
        char shown[330];
        kw_strbuf sb;
        kw_sb_init(&sb, ctx->msg, sizeof ctx->msg);
        kw_sb_appendf(&sb, "unknown key \"%s\" (known:", printable(shown, name));
        for (size_t i = 0; i < ctx->n; i++) kw_sb_appendf(&sb, " %s", ctx->s[i].key);
        kw_sb_append(&sb, ")");
        return 0;
    }
    size_t i = (size_t)(s - ctx->s);
    if (i < sizeof ctx->seen && ctx->seen[i]++) {
        snprintf(ctx->msg, sizeof ctx->msg, "%s is set twice", name);
        return 0;
    }
    const char *what = bad(s, value);
    if (what) {
        char shown[330];
        snprintf(ctx->msg, sizeof ctx->msg, "%s must be %s (got \"%s\")", name, what,
                 printable(shown, value));
        return 0;
    }
    if (s->value) return 1; /* a flag or a variable wins over the file */
    s->owned = strdup(value);
    if (!s->owned) {
        snprintf(ctx->msg, sizeof ctx->msg, "out of memory");
        return 0;
    }
    s->value = s->owned;
    return 1;
}

/* inih's reader, stricter than fgets: a NUL byte or a line longer than
 * LINE_MAX stops the reading (inih would cut such a line in two and read
 * its tail as a line of its own). */
#define LINE_MAX_CHARS 8192
struct reader {
    FILE *f;
    int line, len;  /* line number (from 1), characters read of it so far */
    const char *bad;
};

static char *read_line(char *str, int num, void *stream)
{
    struct reader *r = stream;
    int i = 0, ch;
    if (r->bad) return NULL;
    while (i < num - 1 && (ch = getc(r->f)) != EOF) {
        if (ch == '\0') {
            r->bad = "a NUL byte";
            return NULL;
        }
        str[i++] = (char)ch;
        if (ch == '\n') {
            r->line++;
            r->len = 0;
            break;
        }
        if (++r->len > LINE_MAX_CHARS) {
            r->bad = "a line longer than 8192 characters";
            return NULL;
        }
    }
    if (i == 0) return NULL;
    str[i] = '\0';
    return str;
}

static int read_file(const char *cmd, kw_setting *s, size_t n, const char *path)
{
    ini_allow_multiline = 0;
    ini_allow_inline_comments = 0;
    ini_use_stack = 0;
    ini_allow_realloc = 1;
    ini_max_line = 2 * LINE_MAX_CHARS;
    ini_stop_on_first_error = 1;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "keyward %s: cannot read configuration file %s: %s\n", cmd, path,
                strerror(errno));
        return KW_CONFIG_EXIT;
    }
    struct reader r = {.f = f, .line = 1};
    struct file_ctx ctx = {.s = s, .n = n};
    int line = ini_parse_stream(read_line, &r, on_line, &ctx);
    int read_err = ferror(f);
    fclose(f);
    /* a refused byte or length first: inih may have seen a cut line */
    if (r.bad)
        fprintf(stderr, "keyward %s: %s:%d: %s\n", cmd, path, r.line, r.bad);
    else if (line > 0)
        fprintf(stderr, "keyward %s: %s:%d: %s\n", cmd, path, line,
                ctx.msg[0] ? ctx.msg : "not a key = value line");
    else if (line < 0 || read_err)
        fprintf(stderr, "keyward %s: cannot read configuration file %s\n", cmd, path);
    return line || r.bad || read_err ? KW_CONFIG_EXIT : 0;
}

int kw_config_resolve(const char *cmd, kw_setting *s, size_t n, const char *path,
                      const char *default_path)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i].value || !s[i].env) continue;
        const char *v = getenv(s[i].env);
        if (!v || (!*v && !s[i].empty_ok)) continue;
        char subject[160];
        snprintf(subject, sizeof subject, "$%s (%s)", s[i].env, s[i].key);
        if (checked(cmd, &s[i], v, subject)) return KW_CONFIG_EXIT;
        s[i].value = v;
    }
    if (path) return read_file(cmd, s, n, path);
    if (default_path && access(default_path, F_OK) == 0) return read_file(cmd, s, n, default_path);
    return 0;
}

void kw_config_free(kw_setting *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].owned);
        s[i].owned = NULL;
    }
}

static const char *const TRUE_WORDS[] = {"1", "true", "yes", "on"};
static const char *const FALSE_WORDS[] = {"0", "false", "no", "off"};

int kw_config_bool(const char *v)
{
    for (size_t i = 0; i < 4; i++)
        if (strcasecmp(v, TRUE_WORDS[i]) == 0) return 1;
    return 0;
}

const char *kw_config_check_bool(const char *v)
{
    for (size_t i = 0; i < 4; i++)
        if (strcasecmp(v, TRUE_WORDS[i]) == 0 || strcasecmp(v, FALSE_WORDS[i]) == 0) return NULL;
    return "true or false (yes/no, on/off, 1/0)";
}

const char *kw_config_check_hostport(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || !colon[1]) return "HOST:PORT";
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9') return "HOST:PORT";
    return atol(colon + 1) > 65535 ? "HOST:PORT (port 0-65535)" : NULL;
}

const char *kw_config_check_nonempty(const char *v)
{
    return *v ? NULL : "given a value";
}
