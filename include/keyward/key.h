/* key.h — keyward key format: generate, classify, checksum, mask, hash.
 *
 * A key is "<prefix><body>" with prefix phx_ (personal), phs_ (project
 * secret) or phc_ (public project token).  A keyward body is 54 base62
 * chars: 48 from the OS CSPRNG and 6 of CRC32(prefix + random), so a typo
 * or a scanner false positive is rejected without touching the database.
 * Bodies of 20..53 chars are legacy PostHog keys (no checksum).
 * Nothing here does I/O except reading the CSPRNG. */
#ifndef KEYWARD_KEY_H
#define KEYWARD_KEY_H

#include <stddef.h>
#include <stdint.h>

#define KW_KEY_PREFIX_LEN 4
#define KW_KEY_RANDOM_LEN 48
#define KW_KEY_CHECKSUM_LEN 6
#define KW_KEY_BODY_LEN (KW_KEY_RANDOM_LEN + KW_KEY_CHECKSUM_LEN)      /* 54 */
#define KW_KEY_LEN (KW_KEY_PREFIX_LEN + KW_KEY_BODY_LEN)               /* 58 */
#define KW_KEY_LEGACY_MIN_BODY 20
#define KW_KEY_MAX_LEN 128
/* "sha256$" + 64 hex */
#define KW_HASH_LEN (7 + 64)
/* "phx_...abcd" or "********" */
#define KW_MASK_MAX 16

typedef enum kw_key_kind {
    KW_KEY_NONE = 0,
    KW_KEY_PERSONAL,  /* phx_ */
    KW_KEY_SECRET,    /* phs_ */
    KW_KEY_PROJECT    /* phc_ */
} kw_key_kind;

typedef enum kw_key_format {
    KW_FORMAT_INVALID = 0,  /* wrong prefix, length, alphabet or checksum */
    KW_FORMAT_KEYWARD,      /* 54-char body with a valid checksum */
    KW_FORMAT_LEGACY        /* 20..53-char body: PostHog key, no checksum */
} kw_key_format;

typedef struct kw_key_info {
    kw_key_kind kind;
    kw_key_format format;
} kw_key_info;

/* Writes a new key of `kind` and its NUL into out[KW_KEY_LEN + 1]. */
int kw_key_generate(kw_key_kind kind, char out[KW_KEY_LEN + 1]);

/* Classifies without I/O.  Returns the format; fills *info when non-NULL. */
kw_key_format kw_key_classify(const char *key, size_t len, kw_key_info *info);

/* The prefix of a kind ("phx_"...), or NULL. */
const char *kw_key_prefix(kw_key_kind kind);
kw_key_kind kw_key_kind_of(const char *key, size_t len);

/* True when `body` (no prefix) of KW_KEY_BODY_LEN chars carries a valid
 * CRC32 for `prefix`.  Exposed for the scanner. */
int kw_key_checksum_ok(const char *prefix, const char *body, size_t body_len);

/* The base62 alphabet test used by generation and classification. */
int kw_is_base62(int c);

/* key[:4] + "..." + key[-4:], or "********" under 16 chars. */
void kw_key_mask(const char *key, size_t len, char out[KW_MASK_MAX]);

/* "sha256$" + hex(sha256(key)) into out[KW_HASH_LEN + 1]. */
int kw_key_hash(const char *key, size_t len, char out[KW_HASH_LEN + 1]);
/* The raw SHA-256 of a key, and its stored text form. */
int kw_key_digest(const char *key, size_t len, unsigned char out[32]);
void kw_key_hash_from_digest(const unsigned char digest[32], char out[KW_HASH_LEN + 1]);

/* Result of checking a presented key against a stored secure_value. */
typedef enum kw_hash_match {
    KW_HASH_NOMATCH = 0,
    KW_HASH_MATCH = 1,          /* matched, stored form is current */
    KW_HASH_MATCH_UPGRADE = 2   /* matched a legacy pbkdf2 form: rewrite as sha256 */
} kw_hash_match;

/* Checks `key` against `stored` ("sha256$…" or
 * "pbkdf2_sha256$<iter>$<salt>$<b64>" with iter 260000 or 390000).
 * Comparison is constant-time. */
kw_hash_match kw_key_hash_verify(const char *key, size_t len, const char *stored);

/* pbkdf2_sha256 in Django's form, for imports and tests. */
int kw_key_hash_pbkdf2(const char *key, size_t len, unsigned iterations,
                       const char *salt, char *out, size_t outsz);

/* The stored forms a PostHog personal key may have been imported in: pbkdf2
 * with PostHog's fixed salt, at each of its two iteration counts.  A legacy
 * key is found by looking each form up; computing them is the costly part
 * (two PBKDF2 runs), and the result never changes for a given key. */
#define KW_LEGACY_FORMS 2
#define KW_LEGACY_FORM_MAX 127
typedef struct kw_legacy_forms {
    char form[KW_LEGACY_FORMS][KW_LEGACY_FORM_MAX + 1];
} kw_legacy_forms;
/* Form `which` (0 .. KW_LEGACY_FORMS - 1) into out; the forms one at a time,
 * so a lookup that finds the first need not pay for the second. */
int kw_key_legacy_form(const char *key, size_t len, int which, char *out, size_t outsz);
int kw_key_legacy_forms(const char *key, size_t len, kw_legacy_forms *out);

/* Constant-time equality of two equal-length buffers. */
int kw_ct_equal(const void *a, const void *b, size_t len);

/* n random base62 chars from the CSPRNG (ids, tokens). */
int kw_random_base62(char *out, size_t n);

#endif
