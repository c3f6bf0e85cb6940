/* problem.c — status, type and default code of each problem kind, in one
 * table, so every refusal of the same kind looks the same on the wire. */
#include "keyward/problem.h"

#include "keyward/keyward.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int status;
    const char *type;
    const char *code;
} KINDS[] = {
    [KW_P_NONE] = {200, NULL, NULL},
    [KW_P_VALIDATION] = {400, "validation_error", "invalid_input"},
    [KW_P_AUTH_FAILED] = {401, "authentication_error", "authentication_failed"},
    [KW_P_NOT_AUTHENTICATED] = {401, "authentication_error", "not_authenticated"},
    [KW_P_KEY_EXPIRED] = {401, "authentication_error", "key_expired"},
    [KW_P_PERMISSION] = {403, "authentication_error", "permission_denied"},
    [KW_P_NOT_FOUND] = {404, "invalid_request", "not_found"},
    [KW_P_METHOD] = {405, "invalid_request", "method_not_allowed"},
    [KW_P_TOO_LARGE] = {413, "invalid_request", "payload_too_large"},
    [KW_P_UNSUPPORTED_MEDIA] = {415, "invalid_request", "unsupported_media_type"},
    [KW_P_THROTTLED] = {429, "throttled_error", "throttled"},
    [KW_P_SERVER] = {500, "server_error", "error"},
    [KW_P_UNAVAILABLE] = {503, "server_error", "service_unavailable"},
    [KW_P_TIMEOUT] = {504, "server_error", "timeout"},
};

int kw_problem_from_store(kw_problem *p, int rc)
{
    switch (rc) {
    case KW_OK: return 0;
    case KW_ERR_NOTFOUND: kw_problem_set(p, KW_P_NOT_FOUND, NULL, NULL, KW_MSG_NOT_FOUND); break;
    case KW_ERR_UNAVAILABLE:
        kw_problem_set(p, KW_P_UNAVAILABLE, NULL, NULL, "The database is unavailable; retry later.");
        break;
    default: kw_problem_set(p, KW_P_SERVER, NULL, NULL, KW_MSG_SERVER_ERROR); break;
    }
    return 1;
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlong forms,
 * no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_sequence(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return n;
}

/* The detail ends up in a JSON string, and jansson refuses invalid UTF-8
 * (the whole error body would be lost).  It can hold request bytes (an
 * unknown method, a scope name) or be cut inside a character by the
 * buffer size: replace every byte that does not start a valid sequence. */
static void utf8_repair(char *text)
{
    unsigned char *s = (unsigned char *)text;
    while (*s) {
        size_t n = utf8_sequence(s);
        if (n == 0) {
            *s++ = '?';
        } else {
            s += n;
        }
    }
}

void kw_problem_set(kw_problem *p, kw_problem_kind kind, const char *code, const char *attr,
                    const char *fmt, ...)
{
    p->kind = kind;
    p->status = KINDS[kind].status;
    p->type = KINDS[kind].type;
    p->code = code ? code : KINDS[kind].code;
    p->attr = attr;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->detail, sizeof p->detail, fmt, ap);
    va_end(ap);
    utf8_repair(p->detail);
}
