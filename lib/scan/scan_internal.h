/* scan_internal.h — what scan_rules.c, scan.c and redact.c share.
 *
 * The regex engine only finds *anchors*: a short, cheap pattern that marks
 * where a candidate secret ends or begins (for built-in rules usually a
 * fixed-length prefix, so its start is `to - anchor_len` without asking
 * Hyperscan for start-of-match tracking, which is slower and inflates the
 * database).  Each rule then has an `extract` function that walks the bytes
 * around the anchor to find the whole secret and decides whether it is one
 * (checksum, length, entropy, placeholder words).  User rules are plain
 * regexes whose whole match is the secret; they use HS_FLAG_SOM_LEFTMOST. */
#ifndef KW_SCAN_INTERNAL_H
#define KW_SCAN_INTERNAL_H

#include <stddef.h>

#include "keyward/scan.h"

/* Longest secret a rule may report, in bytes; the redactor keeps at least
 * this much context when it must cut inside a line.  Private key blocks
 * are the exception and are handled by the redactor's line logic. */
#define KW_SCAN_MAX_SECRET 4096
/* How far past a BEGIN line we look for the END line of a private key. */
#define KW_SCAN_MAX_PEM 65536

typedef struct kw_scan_span {
    size_t report;        /* offset reported as the finding's location */
    size_t start, len;    /* the secret */
    kw_scan_confidence confidence;
} kw_scan_span;

struct kw_scan_rule;

/* Receives an anchor's end offset from a native finder; non-zero stops. */
typedef int (*kw_scan_anchor_fn)(size_t to, void *ctx);
/* A built-in rule whose anchors are found in C rather than by the regex
 * engine (its `pattern` is then only the reference the finder matches). */
typedef int (*kw_scan_find_fn)(const char *data, size_t len, kw_scan_anchor_fn fn, void *ctx);

/* The generic-secret-assignment anchor (the regex the finder in
 * scan_generic.c implements) and how many value chars it ends into. */
#define KW_SCAN_GENERIC_NAMES                                                                    \
    "(?:secret|passwd|password|pwd|token|api[_-]?key|access[_-]?key|auth[_-]?key|"              \
    "client[_-]?secret|private[_-]?key)"
/* name suffix, optional closing quote, separator, optional opening quote;
 * a quote may be escaped (JSON inside a JSON string: {\"token\": \"...\"}) */
#define KW_SCAN_ASSIGN                                                                           \
    "[a-z0-9_.-]{0,20}\\\\?[\"']?[ \t]{0,3}(?::=|=>|=|:)[ \t]{0,3}\\\\?[\"'`]?"
#define KW_SCAN_GENERIC_ANCHOR_VALUE 12
#define KW_SCAN_GENERIC_ANCHOR                                                                   \
    "(?i)" KW_SCAN_GENERIC_NAMES KW_SCAN_ASSIGN "[0-9A-Za-z/+_.~!@#%^&*-]{12}"
int kw_scan_generic_find(const char *data, size_t len, kw_scan_anchor_fn fn, void *ctx);
/* Tests: 0 scalar, 1 SSE2, 2 AVX2 (x86-64 only; else scalar).  The caller
 * must know the CPU has what it asks for. */
int kw_scan_generic_find_with(int level, const char *data, size_t len, kw_scan_anchor_fn fn,
                              void *ctx);
/* Given the anchor match [from, to) (from is meaningful only for user rules
 * and the PCRE2 backend) and the KW_SCAN_* flags, fills *span and returns 1 when it is a finding. */
typedef int (*kw_scan_extract_fn)(const struct kw_scan_rule *rule, const char *data, size_t len,
                                  size_t from, size_t to, unsigned flags, kw_scan_span *span);

typedef struct kw_scan_rule {
    char *id;
    char *description;
    char *pattern;            /* anchor pattern (built-in) or full regex (user) */
    int caseless;             /* user rules: match ignoring case */
    int charset;              /* KW_CHARSET_*: what a token body may contain */
    int needs_start;          /* user rule: report [from, to) as is */
    size_t anchor_len;        /* fixed-length anchors: start = to - anchor_len */
    size_t skip;              /* anchor bytes before the secret (a key name, a URL host) */
    kw_scan_extract_fn extract;
    kw_scan_find_fn find;     /* non-NULL: anchors come from this, not the regex engine */
    kw_scan_confidence confidence;
    int priority;             /* on overlap the higher priority wins */
    double min_entropy;       /* bits per char; 0 = no check */
    size_t min_len;           /* secret length bounds (0 = none) */
    size_t max_len;
} kw_scan_rule;

/* Every extractor's yes: the secret [start, start + len), reported at
 * `report`, with the rule's confidence.  Returns 1 for `return`. */
static inline int kw_scan_accept(const kw_scan_rule *rule, kw_scan_span *span, size_t report,
                                 size_t start, size_t len)
{
    span->report = report;
    span->start = start;
    span->len = len;
    span->confidence = rule->confidence;
    return 1;
}

struct kw_scan_rules {
    kw_scan_rule *items;
    size_t count, cap;
};

/* Shared checks, in scan_checks.c. */
double kw_scan_entropy(const char *s, size_t len);
/* Case-insensitive search of a lowercase word in a bounded buffer. */
int kw_scan_contains_nocase(const char *s, size_t len, const char *word);
int kw_scan_is_placeholder(const char *s, size_t len);
/* Whether a token may start at `start`: the byte before it is not one that
 * would make it the tail of a longer word (a word char, or one of `glue`),
 * or that byte ends an escape or encoding (\n \t \uXXXX \xXX %3D %253D),
 * which text filters put right before values.  Every token rule of the
 * scanner (and so of the redactor) decides its left edge here. */
int kw_scan_token_boundary(const char *data, size_t start, const char *glue);

enum {
    KW_CHARSET_BASE62 = 0,   /* 0-9A-Za-z */
    KW_CHARSET_UPPER_DIGIT,  /* 0-9A-Z (AWS key ids) */
    KW_CHARSET_WORD,         /* 0-9A-Za-z_ */
    KW_CHARSET_DASHED,       /* 0-9A-Za-z- (Slack) */
    KW_CHARSET_URLSAFE,      /* 0-9A-Za-z_- (base64url) */
    KW_CHARSET_HEX,          /* 0-9a-f */
    KW_CHARSET_ALPHA,        /* A-Za-z */
    KW_CHARSET_BASE64,       /* 0-9A-Za-z+/= */
    KW_CHARSET_B64URL_PAD,   /* 0-9A-Za-z_-= and . (dotted base64url tokens) */
    KW_CHARSET_AZURE,        /* 0-9A-Za-z_~.- (Azure client secrets) */
    KW_CHARSET_PATH,         /* 0-9A-Za-z_-/ (webhook URL paths) */
    KW_CHARSET_ANY           /* assignment values: no alphabet check */
};

int kw_scan_in_charset(int charset, unsigned char c);
size_t kw_scan_extend(const char *data, size_t len, size_t pos, int charset, size_t limit);

/* The built-in rule table entry (scan_rules.c holds the core rules,
 * scan_providers.c the provider rules). */
typedef struct kw_scan_builtin {
    const char *id, *description, *pattern;
    size_t anchor_len;
    kw_scan_extract_fn extract;
    kw_scan_find_fn find;
    int charset;
    kw_scan_confidence confidence;
    int priority;
    double min_entropy;
    size_t min_len, max_len;
    size_t skip;
} kw_scan_builtin;

extern const kw_scan_builtin KW_SCAN_PROVIDERS[];
extern const size_t KW_SCAN_PROVIDERS_COUNT;

/* Extract functions shared by the core and provider tables. */
int kw_scan_token_bounds(const struct kw_scan_rule *rule, const char *data, size_t len,
                         size_t to, size_t *start, size_t *n);
int kw_scan_extract_token(const struct kw_scan_rule *rule, const char *data, size_t len,
                          size_t from, size_t to, unsigned flags, kw_scan_span *span);
int kw_scan_extract_assignment(const struct kw_scan_rule *rule, const char *data, size_t len,
                               size_t from, size_t to, unsigned flags, kw_scan_span *span);

int kw_scan_extract_pem(const struct kw_scan_rule *rule, const char *data, size_t len,
                        size_t from, size_t to, unsigned flags, kw_scan_span *span);
int kw_scan_extract_user(const struct kw_scan_rule *rule, const char *data, size_t len,
                         size_t from, size_t to, unsigned flags, kw_scan_span *span);
/* Appends a zeroed rule to the set. */
int kw_scan_rules_push(struct kw_scan_rules *rules, struct kw_scan_rule **out);

/* Whether an assignment value reads as language, not as a random secret:
 * a compound of word-like parts (cacheRetryPolicy, retry_backoff_limit,
 * user-session-v2), or an entropy below what a random string over its own
 * alphabet and length shows; a bare value may also be a type name
 * (FilterOrBool).  In scan_words.c. */
int kw_scan_value_is_language(const char *v, size_t n, int bare);
/* A value that starts with a provider rule's literal prefix (AKIA, ghp_,
 * xoxb-, ...): the provider rule alone judges it, so a near miss of that
 * format is not reported again as a generic secret. */
int kw_scan_has_provider_prefix(const char *v, size_t n);
/* The checksum of GitHub and npm tokens: the last 6 chars are the base62
 * CRC32 of the 30 random chars before them. */
int kw_scan_crc32_token_ok(const char *body, size_t n);

/* The compiled-database cache (scan_cache.c), Hyperscan builds only:
 * the file name for a pattern set, a database loaded from the cache (NULL
 * when absent, untrusted or unreadable) and one stored into it (best
 * effort). */
#define KW_SCAN_CACHE_NAME_MAX 80
#ifdef KW_HAVE_HYPERSCAN
#include <hs/hs.h>
void kw_scan_cache_key(const char *const *patterns, const unsigned *flags, const unsigned *ids,
                       unsigned n, char out[KW_SCAN_CACHE_NAME_MAX]);
hs_database_t *kw_scan_cache_load(const char *dir, const char *name);
void kw_scan_cache_store(const char *dir, const char *name, const hs_database_t *db);
#endif

#endif
