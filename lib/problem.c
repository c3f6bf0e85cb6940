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
}
