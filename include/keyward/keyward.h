/* keyward.h — libkeyward's base header: the version, the error codes
 * (kw_err, named by kw_strerror, negative ints as in libuv), the clock, and
 * the two headers nearly every caller needs, key.h and scope.h.
 *
 * keyward issues, stores (hashed), verifies and enforces scoped API keys and
 * finds leaked ones.  This is not an umbrella header: the library is split
 * by concern, one header each, and a caller includes the ones it uses:
 *   key.h       key format, checksum, mask, hashing (no I/O)
 *   scope.h     scope parsing and satisfaction
 *   store.h     persistence behind one interface (SQLite, PostgreSQL); it
 *               includes its families (store_keys.h, store_orgs.h …)
 *   auth.h      verifying a presented key into a principal; rate limit
 *   vcache.h    the verification cache;  ratelimit.h  per-key token buckets
 *   policy.h    which route may be called by which credential
 *   narrow.h    "never broader than the caller"
 *   problem.h   the one shape of every refusal
 *   service.h   the operations the HTTP API and the CLI share
 *   session.h   console sign-in, sessions, invitations
 *   flags.h     feature-flag evaluation (no I/O);  flagcache.h  definitions in memory
 *   leak.h      leak reports;  scan.h  the scanner and redaction
 *   report.h    the key report;  usage.h  scopes each key exercised
 *   import.h    importing a PostHog installation
 *   strbuf.h    the bounded text builder;  validate.h  request field readers */
#ifndef KEYWARD_H
#define KEYWARD_H

#define KW_VERSION "0.1.0"

typedef enum kw_err {
    KW_OK = 0,
    KW_ERR_INVALID = -1,   /* malformed input */
    KW_ERR_NOMEM = -2,
    KW_ERR_NOTFOUND = -3,
    KW_ERR_EXISTS = -4,    /* unique constraint */
    KW_ERR_DB = -5,        /* storage failure */
    KW_ERR_CRYPTO = -6,    /* CSPRNG / digest failure */
    KW_ERR_LIMIT = -7,     /* a count or size limit was reached */
    KW_ERR_UNAVAILABLE = -8, /* backend unreachable; retry later */
    KW_ERR_IO = -9,
    KW_ERR_UNSUPPORTED = -10, /* the backend does not offer this operation */
    KW_ERR_TIMEOUT = -11   /* a statement ran past the time limit set for it */
} kw_err;

const char *kw_strerror(int err);

#include <stdint.h>

/* Wall clock in microseconds since the Unix epoch.  Tests may pin it with
 * kw_clock_set() (0 restores the real clock) so nothing has to sleep. */
int64_t kw_now(void);
void kw_clock_set(int64_t fixed_us);
/* ISO-8601 UTC with microseconds: "2026-11-25T22:56:12.123456Z". */
#define KW_TIME_TEXT 32
void kw_time_format(int64_t us, char out[KW_TIME_TEXT]);
/* Parses ISO-8601 "YYYY-MM-DD[Thh:mm[:ss[.uuuuuu]][Z|±hh:mm|±hhmm]]" (a
 * space may replace the T; no offset means UTC; a bare date is midnight
 * UTC) into microseconds.  KW_ERR_INVALID when malformed or out of range. */
int kw_time_parse(const char *text, int64_t *out);

#include "keyward/key.h"
#include "keyward/scope.h"

#endif
