/* problem.h — the one shape every refusal takes.
 *
 * PostHog's error body is {type, code, detail, attr}; a kw_problem carries
 * those plus the HTTP status.  The library fills problems (policy refusals,
 * validation errors); only the HTTP layer turns them into JSON, in one
 * place, so no handler builds an error body by hand. */
#ifndef KEYWARD_PROBLEM_H
#define KEYWARD_PROBLEM_H

typedef enum kw_problem_kind {
    KW_P_NONE = 0,
    KW_P_VALIDATION,         /* 400 validation_error / invalid_input */
    KW_P_AUTH_FAILED,        /* 401 authentication_error / authentication_failed */
    KW_P_NOT_AUTHENTICATED,  /* 401 authentication_error / not_authenticated */
    KW_P_KEY_EXPIRED,        /* 401 authentication_error / key_expired */
    KW_P_PERMISSION,         /* 403 authentication_error / permission_denied */
    KW_P_NOT_FOUND,          /* 404 invalid_request / not_found */
    KW_P_METHOD,             /* 405 invalid_request / method_not_allowed */
    KW_P_TOO_LARGE,          /* 413 invalid_request / payload_too_large */
    KW_P_UNSUPPORTED_MEDIA,  /* 415 invalid_request / unsupported_media_type */
    KW_P_THROTTLED,          /* 429 throttled_error / throttled */
    KW_P_SERVER,             /* 500 server_error / error */
    KW_P_UNAVAILABLE,        /* 503 server_error / service_unavailable */
    KW_P_TIMEOUT             /* 504 server_error / timeout: work stopped at its time limit */
} kw_problem_kind;

typedef struct kw_problem {
    kw_problem_kind kind;
    int status;
    const char *type;
    const char *code;
    const char *attr;  /* static string or NULL */
    char detail[512];
} kw_problem;

/* Fills *p for `kind`; `code` NULL means the kind's default code. */
void kw_problem_set(kw_problem *p, kw_problem_kind kind, const char *code, const char *attr,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Maps a storage result to its problem: KW_OK → 0 (nothing set);
 * KW_ERR_NOTFOUND → 404 "Not found."; KW_ERR_UNAVAILABLE → 503; anything
 * else → 500.  Returns 1 when it set a problem. */
int kw_problem_from_store(kw_problem *p, int rc);

/* The canonical texts, shared by every caller that needs them. */
#define KW_MSG_NOT_AUTHENTICATED "Authentication credentials were not provided."
#define KW_MSG_NOT_FOUND "Not found."
/* A legacy (pbkdf2) key check refused because its budget is spent. */
#define KW_MSG_LEGACY_BUSY "Request was throttled: too many checks of legacy API keys; retry later."
#define KW_MSG_SERVER_ERROR "A server error occurred."
#define KW_MSG_SECRET_INVALID "Secret API token is invalid."
#define KW_MSG_SECRET_UNSUPPORTED "This action does not support project secret API key access"
#define KW_MSG_PERSONAL_UNSUPPORTED "This action does not support Personal API Key access"
#define KW_MSG_INSUFFICIENT_LEVEL "You don't have sufficient permissions in the project."
/* 401 code "invalid_api_key": a missing or unknown phc_ on /flags, /decide. */
#define KW_MSG_PROJECT_TOKEN_INVALID \
    "Project API key invalid. You can find your project API key in PostHog project settings."

#endif
