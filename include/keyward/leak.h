/* leak.h — leaked-key reports: answer, revoke, and check who sent them.
 *
 * GitHub's secret-scanning partner program (and anyone else who finds a
 * key) posts a list of {token, type, url, source}.  kw_leak_process looks
 * each token up by hash and, in report mode, revokes a live phx_/phs_ key
 * — or ends the grace window of a rolled key's previous value — at once
 * (with an activity entry naming the URL); a current phc_ project token is
 * public by design, so nothing is written for it.  In check mode nothing changes: the caller learns whether each
 * token is live.  Either way the caller has presented the token itself, so
 * the answer tells nothing about keys the caller does not hold; results
 * carry the token's sha256, never the token.
 *
 * kw_leak_keys holds the reporter's public keys (ECDSA P-256) so a server
 * can insist that reports are signed (Github-Public-Key-Signature over the
 * raw body).  Nothing here prints or knows about HTTP. */
#ifndef KEYWARD_LEAK_H
#define KEYWARD_LEAK_H

#include <stddef.h>

#include "keyward/key.h"
#include "keyward/problem.h"
#include "keyward/service.h"

/* Most tokens one report or check may carry. */
#define KW_LEAK_MAX_ITEMS 1000
/* Legacy-length phx_ tokens (no checksum) whose PostHog pbkdf2 forms are
 * computed per request: each costs two PBKDF2 runs, so a report cannot buy
 * minutes of CPU.  Beyond this only the sha256 form is looked up, and the
 * forms the guard remembers from earlier reports. */
#define KW_LEAK_MAX_LEGACY 10
#define KW_LEAK_URL_MAX 2048
#define KW_LEAK_FIELD_MAX 200

typedef struct kw_leak_item {
    const char *token;
    size_t token_len;
    const char *type;    /* reporter's token type; may be NULL */
    const char *url;     /* where it was found; may be NULL */
    const char *source;  /* e.g. "content", "commit"; may be NULL */
} kw_leak_item;

typedef enum kw_leak_outcome {
    KW_LEAK_UNKNOWN = 0,   /* not a live keyward key (or malformed, or bad checksum) */
    KW_LEAK_LIVE,          /* check mode: a live key or current project token */
    KW_LEAK_REVOKED,       /* report mode: a live phx_/phs_ key, now revoked */
    KW_LEAK_PUBLIC         /* report mode: a current phc_ token — public, nothing done */
} kw_leak_outcome;

typedef struct kw_leak_result {
    char token_hash[65];   /* hex sha256 of the token */
    kw_key_kind kind;
    kw_leak_outcome outcome;
    /* Who held it (named only to a signed report): the user of a personal key, or
     * the project of a secret key / project token.  Ids only — the reporter
     * may be anyone, so no e-mail or name; 0 when unknown. */
    int64_t owner_user_id;
    int64_t owner_project_id;
    /* Set on the item whose legacy check found the budget spent (the call
     * then fails with a 429 problem): seconds for Retry-After. */
    int retry_after;
} kw_leak_result;

/* Processes items[0..n) (n ≤ KW_LEAK_MAX_ITEMS) into results[0..n).
 * revoke: report mode (revoke and log) or check mode (read only).  A
 * token repeated in one call gets the answer of its first occurrence.
 * Returns 0, or 1 with *problem set when storage failed or the verifier's
 * budget for legacy (pbkdf2) hashes is spent (429; items processed
 * before the failure stay revoked: each revocation is its own
 * transaction, committed before the next item). */
int kw_leak_process(const kw_call *c, const kw_leak_item *items, size_t n, int revoke,
                    kw_leak_result *results, kw_problem *problem);

/* ---- the unauthenticated endpoint's guard ---------------------------
 *
 * A report needs no credential, so one client (an address; IPv6: a /64)
 * may send at most KW_LEAK_REPORTS_PER_MINUTE of them (a burst of as
 * many), and all clients together KW_LEAK_REPORTS_PER_MINUTE_ALL (a burst
 * of a quarter of that): a report of 1000 tokens is 1000 lookups, and
 * unauthenticated work is bounded in total, not only per client.  A token
 * reported again within the hour is still looked up — keys appear (an
 * import brings PostHog's back), so no earlier "not found" may stand in for
 * a lookup — but what was costly to learn is remembered: the pbkdf2 forms of
 * a legacy-length phx_, so a retried report makes progress instead of
 * spending its PBKDF2 budget on the same tokens again.  When the lookup
 * finds nothing live, the first answer is repeated (a key revoked by the
 * first report stays "revoked", not "unknown"). */

#define KW_LEAK_REPORTS_PER_MINUTE 30
#define KW_LEAK_REPORTS_PER_MINUTE_ALL 600

typedef struct kw_leak_guard kw_leak_guard;

/* What the guard keeps of one token. */
typedef struct kw_leak_memo {
    kw_leak_result first;   /* the answer its first report got */
    int has_forms;          /* forms holds its legacy pbkdf2 forms */
    kw_legacy_forms forms;
} kw_leak_memo;

int kw_leak_guard_new(kw_leak_guard **out);
void kw_leak_guard_free(kw_leak_guard *g);
/* One report from `client` (an address) at `now`: 0 when admitted, else
 * whole seconds (≥ 1) for Retry-After.  NULL guard: always admitted. */
int kw_leak_guard_admit(kw_leak_guard *g, const char *client, int64_t now);
/* 1 and *out filled when this token (its hex sha256) was remembered
 * within the hour. */
int kw_leak_guard_recall(kw_leak_guard *g, const char *token_hash, int64_t now,
                         kw_leak_memo *out);
void kw_leak_guard_remember(kw_leak_guard *g, const kw_leak_memo *m, int64_t now);

/* kw_leak_process, with report mode using and feeding `guard`'s memory
 * of tokens; NULL guard: kw_leak_process. */
int kw_leak_process_guarded(const kw_call *c, kw_leak_guard *guard, const kw_leak_item *items,
                            size_t n, int revoke, kw_leak_result *results, kw_problem *problem);

/* ---- reporter signatures ------------------------------------------- */

typedef struct kw_leak_keys kw_leak_keys;

/* Loads ECDSA P-256 public keys with their identifiers from `path`:
 * either GitHub's JSON document ({"public_keys": [{"key_identifier",
 * "key": "<PEM>"}]}, as served by api.github.com/meta/public_keys/
 * secret_scanning) or a text file where each PEM "PUBLIC KEY" block is
 * preceded by a line "key_identifier: <id>" (a leading '#' is allowed).
 * On failure returns a kw_err and writes why into err. */
int kw_leak_keys_load(const char *path, kw_leak_keys **out, char *err, size_t errsz);
/* Same from a string (tests). */
int kw_leak_keys_parse(const char *text, size_t len, kw_leak_keys **out, char *err, size_t errsz);
void kw_leak_keys_free(kw_leak_keys *keys);
size_t kw_leak_keys_count(const kw_leak_keys *keys);

/* Verifies a base64 DER ECDSA signature over body with SHA-256 using the
 * key named key_id.  KW_OK, KW_ERR_NOTFOUND (no such key identifier) or
 * KW_ERR_INVALID (bad base64 or signature). */
int kw_leak_signature_verify(const kw_leak_keys *keys, const char *key_id, const char *sig_b64,
                             const char *body, size_t len);

#endif
