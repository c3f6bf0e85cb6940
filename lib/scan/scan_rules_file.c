/* scan_rules_file.c — the user rules file parser: a TOML-like list of
 * [rule] sections with key = value lines (id, pattern, description,
 * confidence, min_entropy, caseless); the whole regex match of a user rule
 * is the secret.  Kept apart from the built-in tables so each stays small.
 * Format documented in docs/scanner.md. */
#include "scan/scan_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/strbuf.h"

/* ---- user rules file ------------------------------------------------ */

typedef struct parser {
    const char *name;
    int line;
    char *err;
    size_t errsz;
} parser;

static int parse_error(parser *ps, const char *fmt, ...)
{
    if (ps->err && ps->errsz) {
        kw_strbuf sb;
        kw_sb_init(&sb, ps->err, ps->errsz);
        kw_sb_appendf(&sb, "%s:%d: ", ps->name, ps->line);
        va_list ap;
        va_start(ap, fmt);
        kw_sb_vappendf(&sb, fmt, ap);
        va_end(ap);
        /* A message too long for the caller's buffer keeps its "file:line: "
         * start, which still says where. */
    }
    return KW_ERR_INVALID;
}

/* Parses a value: "basic string" (escapes \" \\ \n \t), 'literal string'
 * (no escapes: best for regexes), or a bare word/number.  Writes a
 * malloc'd copy into *out. */
static int parse_value(parser *ps, const char *s, const char *end, char **out)
{
    while (end > s && isspace((unsigned char)end[-1])) end--;
    size_t n = (size_t)(end - s);
    char *v = malloc(n + 1);
    if (!v) return KW_ERR_NOMEM;
    size_t w = 0;
    if (n >= 1 && (s[0] == '"' || s[0] == '\'')) {
        char q = s[0];
        size_t i = 1;
        for (; i < n && s[i] != q; i++) {
            if (q == '"' && s[i] == '\\' && i + 1 < n) {
                char e = s[++i];
                v[w++] = e == 'n' ? '\n' : e == 't' ? '\t' : e;
            } else {
                v[w++] = s[i];
            }
        }
        if (i >= n) {
            free(v);
            return parse_error(ps, "unterminated string");
        }
        /* only a comment may follow the closing quote */
        const char *rest = s + i + 1;
        while (rest < end && isspace((unsigned char)*rest)) rest++;
        if (rest < end && *rest != '#') {
            free(v);
            return parse_error(ps, "unexpected text after string");
        }
    } else {
        const char *hash = memchr(s, '#', n);
        if (hash) n = (size_t)(hash - s);
        while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
        memcpy(v, s, n);
        w = n;
    }
    v[w] = '\0';
    *out = v;
    return KW_OK;
}

static int valid_id(const char *id)
{
    if (!*id) return 0;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("-_.", *p)) return 0;
    return 1;
}

static int finish_rule(parser *ps, kw_scan_rules *rules, kw_scan_rule *r, int section_line)
{
    int saved = ps->line;
    ps->line = section_line;
    int rc = KW_OK;
    if (!r->id) rc = parse_error(ps, "rule without id");
    else if (!r->pattern) rc = parse_error(ps, "rule '%s' without pattern", r->id);
    else {
        for (size_t i = 0; i + 1 < rules->count; i++)
            if (strcmp(rules->items[i].id, r->id) == 0) {
                rc = parse_error(ps, "duplicate rule id '%s'", r->id);
                break;
            }
    }
    if (rc == KW_OK && !r->description) {
        r->description = strdup(r->id);
        if (!r->description) rc = KW_ERR_NOMEM;
    }
    ps->line = saved;
    return rc;
}

static int set_field(parser *ps, kw_scan_rule *r, const char *key, size_t klen, char *value)
{
#define KEY_IS(k) (klen == strlen(k) && memcmp(key, k, klen) == 0)
    char *end;
    if (KEY_IS("id")) {
        if (!valid_id(value)) goto bad_value;
        free(r->id);
        r->id = value;
    } else if (KEY_IS("pattern")) {
        if (!*value) goto bad_value;
        free(r->pattern);
        r->pattern = value;
    } else if (KEY_IS("description")) {
        free(r->description);
        r->description = value;
    } else if (KEY_IS("confidence")) {
        if (strcmp(value, "high") == 0) r->confidence = KW_SCAN_HIGH;
        else if (strcmp(value, "medium") == 0) r->confidence = KW_SCAN_MEDIUM;
        else goto bad_value;
        free(value);
    } else if (KEY_IS("min_entropy")) {
        errno = 0;
        r->min_entropy = strtod(value, &end);
        if (errno || *end || r->min_entropy < 0 || r->min_entropy > 8) goto bad_value;
        free(value);
    } else if (KEY_IS("caseless")) {
        if (strcmp(value, "true") == 0) r->caseless = 1;
        else if (strcmp(value, "false") == 0) r->caseless = 0;
        else goto bad_value;
        free(value);
    } else {
        free(value);
        return parse_error(ps, "unknown key '%.*s'", (int)klen, key);
    }
    return KW_OK;
bad_value:
    free(value);
    return parse_error(ps, "bad value for '%.*s'", (int)klen, key);
#undef KEY_IS
}

int kw_scan_rules_load_string(kw_scan_rules *rules, const char *text, const char *name,
                              char *err, size_t errsz)
{
    parser ps = {name ? name : "<rules>", 0, err, errsz};
    size_t first_new = rules->count;
    kw_scan_rule *current = NULL;
    int section_line = 0, rc = KW_OK;
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        if (!eol) eol = p + strlen(p);
        ps.line++;
        const char *s = p, *e = eol;
        p = *eol ? eol + 1 : eol;
        while (s < e && isspace((unsigned char)*s)) s++;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        if (s == e || *s == '#') continue;
        if (*s == '[') {
            if (!((e - s == 6 && memcmp(s, "[rule]", 6) == 0) ||
                  (e - s == 8 && memcmp(s, "[[rule]]", 8) == 0))) {
                rc = parse_error(&ps, "expected [rule]");
                goto fail;
            }
            if (current && (rc = finish_rule(&ps, rules, current, section_line))) goto fail;
            if ((rc = kw_scan_rules_push(rules, &current))) goto fail;
            current->extract = kw_scan_extract_user;
            current->needs_start = 1;
            current->confidence = KW_SCAN_HIGH;
            current->priority = 8;
            section_line = ps.line;
            continue;
        }
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (!eq) {
            rc = parse_error(&ps, "expected key = value");
            goto fail;
        }
        if (!current) {
            rc = parse_error(&ps, "key outside a [rule] section");
            goto fail;
        }
        const char *key_end = eq;
        while (key_end > s && isspace((unsigned char)key_end[-1])) key_end--;
        const char *v = eq + 1;
        while (v < e && isspace((unsigned char)*v)) v++;
        char *value = NULL;
        if ((rc = parse_value(&ps, v, e, &value))) goto fail;
        if ((rc = set_field(&ps, current, s, (size_t)(key_end - s), value))) goto fail;
    }
    if (current && (rc = finish_rule(&ps, rules, current, section_line))) goto fail;
    return KW_OK;
fail:
    /* leave the set as it was before this file */
    for (size_t i = first_new; i < rules->count; i++) {
        free(rules->items[i].id);
        free(rules->items[i].description);
        free(rules->items[i].pattern);
    }
    rules->count = first_new;
    return rc;
}

int kw_scan_rules_load_file(kw_scan_rules *rules, const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    int rc = KW_ERR_IO;
    if (!f) {
        if (err && errsz) snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return KW_ERR_IO;
    }
    size_t cap = 4096, len = 0, n;
    text = malloc(cap);
    if (!text) {
        rc = KW_ERR_NOMEM;
        goto cleanup;
    }
    while ((n = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            if (cap >= (1u << 24)) {
                if (err && errsz) snprintf(err, errsz, "%s: rules file too large", path);
                rc = KW_ERR_LIMIT;
                goto cleanup;
            }
            char *bigger = realloc(text, cap * 2);
            if (!bigger) {
                rc = KW_ERR_NOMEM;
                goto cleanup;
            }
            text = bigger;
            cap *= 2;
        }
    }
    if (ferror(f)) {
        if (err && errsz) snprintf(err, errsz, "%s: read error", path);
        goto cleanup;
    }
    text[len] = '\0';
    rc = kw_scan_rules_load_string(rules, text, path, err, errsz);
cleanup:
    free(text);
    fclose(f);
    return rc;
}
