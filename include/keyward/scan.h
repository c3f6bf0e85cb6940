/* scan.h — the leak scanner: find keys and secrets in bytes, redact them.
 *
 * Three layers, each usable alone:
 *   rules    what a secret looks like: built-in rules (PostHog/keyward keys
 *            with checksum check, AWS, GitHub, Slack, Stripe, private keys,
 *            JWTs, generic high-entropy assignments) plus user rules loaded
 *            from a small text file (see docs/scanner.md).
 *   engine   all rules compiled once into one Hyperscan database (PCRE2 JIT
 *            where Hyperscan is missing).  Immutable and shared by threads;
 *            each thread owns a kw_scan_scratch.
 *   scanning kw_scan_buffer() reports findings in a buffer through a
 *            callback; kw_scan_files() runs a worker pool over a file list;
 *            kw_redact_*() is a streaming stdin->stdout style redactor.
 * A finding never carries the secret itself, only its span in the scanned
 * buffer, a mask ("phx_...a1B2") and a sha256 fingerprint.  Nothing here
 * prints; errors are kw_err codes, with a message buffer where useful. */
#ifndef KEYWARD_SCAN_H
#define KEYWARD_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/key.h"

typedef enum kw_scan_confidence {
    KW_SCAN_MEDIUM = 1, /* shape matches, cannot be proven (legacy keys, generic) */
    KW_SCAN_HIGH = 2    /* structured token, or a keyward key whose checksum holds */
} kw_scan_confidence;

const char *kw_scan_confidence_name(kw_scan_confidence c);

#define KW_SCAN_FINGERPRINT_LEN 64 /* hex sha256 */

typedef struct kw_scan_finding {
    const char *rule_id;          /* "posthog-personal-key", "aws-access-key-id", ... */
    const char *rule_description;
    kw_scan_confidence confidence;
    size_t offset;                /* where the finding is reported (byte offset) */
    size_t line, column;          /* 1-based; 0 when KW_SCAN_LOCATE was not asked */
    size_t secret_offset;         /* the secret itself: what redaction replaces */
    size_t secret_len;
    char mask[KW_MASK_MAX];
    char fingerprint[KW_SCAN_FINGERPRINT_LEN + 1]; /* "" unless KW_SCAN_LOCATE */
} kw_scan_finding;

/* ---- rules ---------------------------------------------------------- */

typedef struct kw_scan_rules kw_scan_rules;

/* A rule set holding the built-in rules. */
int kw_scan_rules_new(kw_scan_rules **out);
void kw_scan_rules_free(kw_scan_rules *rules);

/* Adds the rules of a user rules file (format in docs/scanner.md).  On a
 * syntax error returns KW_ERR_INVALID and writes "<path>:<line>: <why>"
 * into err. */
int kw_scan_rules_load_file(kw_scan_rules *rules, const char *path, char *err, size_t errsz);
/* Same, from a string (tests). */
int kw_scan_rules_load_string(kw_scan_rules *rules, const char *text, const char *name,
                              char *err, size_t errsz);

size_t kw_scan_rules_count(const kw_scan_rules *rules);
const char *kw_scan_rule_id(const kw_scan_rules *rules, size_t index);
const char *kw_scan_rule_description(const kw_scan_rules *rules, size_t index);
kw_scan_confidence kw_scan_rule_confidence(const kw_scan_rules *rules, size_t index);

/* ---- engine --------------------------------------------------------- */

typedef struct kw_scan_engine kw_scan_engine;
typedef struct kw_scan_scratch kw_scan_scratch;

/* Compiles every rule into one database.  `rules` must outlive the engine.
 * A bad user pattern gives KW_ERR_INVALID and the compiler's message. */
int kw_scan_engine_new(const kw_scan_rules *rules, kw_scan_engine **out, char *err, size_t errsz);
/* The same, keeping the compiled database in cache_dir between runs (a
 * directory of the user's own, made 0700 when missing; NULL or "" = no
 * cache): the next engine with the same rules loads it instead of
 * compiling.  A cache that is not trusted or not readable is ignored. */
int kw_scan_engine_new_cached(const kw_scan_rules *rules, const char *cache_dir,
                              kw_scan_engine **out, char *err, size_t errsz);
void kw_scan_engine_free(kw_scan_engine *engine);
const kw_scan_rules *kw_scan_engine_rules(const kw_scan_engine *engine);
/* "hyperscan" or "pcre2-jit". */
const char *kw_scan_engine_backend(void);

/* One per thread. */
int kw_scan_scratch_new(const kw_scan_engine *engine, kw_scan_scratch **out);
void kw_scan_scratch_free(kw_scan_scratch *scratch);

enum {
    KW_SCAN_LOCATE = 1 << 0,     /* fill line/column and fingerprint */
    KW_SCAN_HONOR_ALLOW = 1 << 1, /* drop findings on lines containing keyward:allow */
    KW_SCAN_PARTIAL = 1 << 2      /* more data follows: also report a private key block
                                     cut by the end of the buffer (for streaming callers) */
};

/* Called once per finding, in order of offset.  `data` is the scanned
 * buffer (so a caller may read the secret at data + secret_offset).
 * Return non-zero to stop the scan; that value is returned by the scan. */
typedef int (*kw_scan_finding_fn)(const kw_scan_finding *finding, const char *data, void *ctx);

/* Scans one complete buffer.  Returns KW_OK, a kw_err, or the callback's
 * non-zero value. */
int kw_scan_buffer(const kw_scan_engine *engine, kw_scan_scratch *scratch, const char *data,
                   size_t len, unsigned flags, kw_scan_finding_fn fn, void *ctx);

/* ---- files (worker pool) ------------------------------------------- */

typedef enum kw_scan_file_status {
    KW_SCAN_FILE_SCANNED = 0,
    KW_SCAN_FILE_BINARY,    /* NUL byte in the first 8 KiB */
    KW_SCAN_FILE_TOO_LARGE, /* over max_size */
    KW_SCAN_FILE_SKIPPED,   /* not a regular file (symlink, device, ...) */
    KW_SCAN_FILE_ERROR      /* could not be opened or read */
} kw_scan_file_status;

typedef struct kw_scan_files_opts {
    unsigned threads;    /* 0: one per online CPU */
    uint64_t max_size;   /* 0: no limit */
    unsigned flags;      /* KW_SCAN_* */
    /* Called from worker threads, serialised by the pool's lock. */
    int (*on_finding)(size_t file_index, const kw_scan_finding *f, const char *data, void *ctx);
    /* Optional: once per file after it is done (also serialised). */
    void (*on_file)(size_t file_index, kw_scan_file_status status, void *ctx);
    void *ctx;
} kw_scan_files_opts;

/* Scans paths[0..count) (regular files only; symlinks are never followed).
 * Returns KW_OK or the first error that stopped the pool. */
int kw_scan_files(const kw_scan_engine *engine, const char *const *paths, size_t count,
                  const kw_scan_files_opts *opts);

/* True when the first min(len, 8 KiB) bytes contain a NUL. */
int kw_scan_looks_binary(const char *data, size_t len);

/* ---- redaction ------------------------------------------------------ */

typedef struct kw_redactor kw_redactor;

/* Receives redacted output; return non-zero to abort (e.g. EPIPE). */
typedef int (*kw_redact_write_fn)(const char *data, size_t len, void *ctx);

/* A streaming redactor.  Input may be fed in chunks of any size; a secret
 * split across chunks is still found.  Complete lines are written out as
 * soon as they are fed (so it works as a log pipe); only an unfinished
 * line, or a private key block waiting for its END line, is held back. */
int kw_redact_new(const kw_scan_engine *engine, kw_redact_write_fn write_fn, void *ctx,
                  kw_redactor **out);
int kw_redact_feed(kw_redactor *r, const char *data, size_t len);
/* Zero-copy feeding, the same as kw_redact_feed of those bytes: read up to
 * *room (> 0) bytes into the returned pointer, then commit how many. */
char *kw_redact_space(kw_redactor *r, size_t *room);
int kw_redact_commit(kw_redactor *r, size_t n);
/* Flushes what is held back; call once at end of input. */
int kw_redact_finish(kw_redactor *r);
void kw_redact_free(kw_redactor *r);
/* Secrets replaced so far. */
uint64_t kw_redact_count(const kw_redactor *r);

#endif
