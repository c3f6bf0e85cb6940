/* error.c — kw_strerror: one place that names every kw_err code. */
#include "keyward/keyward.h"

const char *kw_strerror(int err)
{
    switch (err) {
    case KW_OK: return "ok";
    case KW_ERR_INVALID: return "invalid input";
    case KW_ERR_NOMEM: return "out of memory";
    case KW_ERR_NOTFOUND: return "not found";
    case KW_ERR_EXISTS: return "already exists";
    case KW_ERR_DB: return "storage error";
    case KW_ERR_CRYPTO: return "cryptographic failure";
    case KW_ERR_LIMIT: return "limit reached";
    case KW_ERR_UNAVAILABLE: return "backend unavailable";
    case KW_ERR_IO: return "i/o error";
    case KW_ERR_UNSUPPORTED: return "not supported by this backend";
    case KW_ERR_TIMEOUT: return "stopped at its time limit";
    default: return "unknown error";
    }
}
