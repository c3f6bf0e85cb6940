/* key.c — keyward key format, checksum, mask and hashing.
 *
 * Generation draws from OpenSSL's CSPRNG (RAND_bytes) with rejection
 * sampling so every base62 char is uniform.  The checksum is CRC32 (zlib's
 * polynomial, as GitHub tokens use) of prefix + random part, written as 6
 * zero-padded base62 digits.  Legacy PostHog personal keys may be stored as
 * Django pbkdf2_sha256 hashes; we verify those and tell the caller to
 * rewrite them as sha256, which is what PostHog itself did. */
#include "keyward/keyward.h"
#include "util/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static const char BASE62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int kw_is_base62(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z');
}

static int base62_value(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    if (c >= 'a' && c <= 'z') return c - 'a' + 36;
    return -1;
}

const char *kw_key_prefix(kw_key_kind kind)
{
    switch (kind) {
    case KW_KEY_PERSONAL: return "phx_";
    case KW_KEY_SECRET: return "phs_";
    case KW_KEY_PROJECT: return "phc_";
    default: return NULL;
    }
}

kw_key_kind kw_key_kind_of(const char *key, size_t len)
{
    if (len < KW_KEY_PREFIX_LEN || key[0] != 'p' || key[1] != 'h' || key[3] != '_')
        return KW_KEY_NONE;
    switch (key[2]) {
    case 'x': return KW_KEY_PERSONAL;
    case 's': return KW_KEY_SECRET;
    case 'c': return KW_KEY_PROJECT;
    default: return KW_KEY_NONE;
    }
}

int kw_random_base62(char *out, size_t n)
{
    /* 248 = 4 * 62: bytes >= 248 are rejected so byte % 62 is uniform. */
    unsigned char buf[64];
    size_t filled = 0;
    while (filled < n) {
        if (RAND_bytes(buf, sizeof buf) != 1) return KW_ERR_CRYPTO;
        for (size_t i = 0; i < sizeof buf && filled < n; i++)
            if (buf[i] < 248) out[filled++] = BASE62[buf[i] % 62];
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return KW_OK;
}

static uint32_t checksum_of(const char *prefix, const char *random, size_t rlen)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)prefix, KW_KEY_PREFIX_LEN);
    crc = crc32(crc, (const Bytef *)random, (uInt)rlen);
    return (uint32_t)crc;
}

static void checksum_encode(uint32_t crc, char out[KW_KEY_CHECKSUM_LEN])
{
    uint64_t v = crc;
    for (int i = KW_KEY_CHECKSUM_LEN - 1; i >= 0; i--) {
        out[i] = BASE62[v % 62];
        v /= 62;
    }
}

int kw_key_checksum_ok(const char *prefix, const char *body, size_t body_len)
{
    if (body_len != KW_KEY_BODY_LEN) return 0;
    uint64_t v = 0;
    for (size_t i = KW_KEY_RANDOM_LEN; i < KW_KEY_BODY_LEN; i++) {
        int d = base62_value((unsigned char)body[i]);
        if (d < 0) return 0;
        v = v * 62 + (uint64_t)d;
    }
    return v == checksum_of(prefix, body, KW_KEY_RANDOM_LEN);
}

int kw_key_generate(kw_key_kind kind, char out[KW_KEY_LEN + 1])
{
    const char *prefix = kw_key_prefix(kind);
    if (!prefix) return KW_ERR_INVALID;
    memcpy(out, prefix, KW_KEY_PREFIX_LEN);
    char *body = out + KW_KEY_PREFIX_LEN;
    int rc = kw_random_base62(body, KW_KEY_RANDOM_LEN);
    if (rc) return rc;
    checksum_encode(checksum_of(prefix, body, KW_KEY_RANDOM_LEN),
                    body + KW_KEY_RANDOM_LEN);
    out[KW_KEY_LEN] = '\0';
    return KW_OK;
}

kw_key_format kw_key_classify(const char *key, size_t len, kw_key_info *info)
{
    kw_key_info local = {KW_KEY_NONE, KW_FORMAT_INVALID};
    if (!info) info = &local;
    *info = local;
    kw_key_kind kind = kw_key_kind_of(key, len);
    if (kind == KW_KEY_NONE) return KW_FORMAT_INVALID;
    info->kind = kind;
    size_t body_len = len - KW_KEY_PREFIX_LEN;
    if (body_len < KW_KEY_LEGACY_MIN_BODY || body_len > KW_KEY_BODY_LEN)
        return KW_FORMAT_INVALID;
    const char *body = key + KW_KEY_PREFIX_LEN;
    for (size_t i = 0; i < body_len; i++)
        if (!kw_is_base62((unsigned char)body[i])) return KW_FORMAT_INVALID;
    if (body_len == KW_KEY_BODY_LEN) {
        if (!kw_key_checksum_ok(key, body, body_len)) return KW_FORMAT_INVALID;
        info->format = KW_FORMAT_KEYWARD;
    } else {
        info->format = KW_FORMAT_LEGACY;
    }
    return info->format;
}

void kw_key_mask(const char *key, size_t len, char out[KW_MASK_MAX])
{
    if (len < 16) {
        memcpy(out, "********", 9);
        return;
    }
    memcpy(out, key, 4);
    memcpy(out + 4, "...", 3);
    memcpy(out + 7, key + len - 4, 4);
    out[11] = '\0';
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
    static const char HEX[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = HEX[in[i] >> 4];
        out[2 * i + 1] = HEX[in[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Runs on every verification: a per-thread context (util/digest.h). */
int kw_key_digest(const char *key, size_t len, unsigned char out[32])
{
    return kw_digest(KW_DIGEST_SHA256, key, len, out);
}

void kw_key_hash_from_digest(const unsigned char digest[32], char out[KW_HASH_LEN + 1])
{
    memcpy(out, "sha256$", 7);
    hex_encode(digest, 32, out + 7);
}

int kw_key_hash(const char *key, size_t len, char out[KW_HASH_LEN + 1])
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    int rc = kw_key_digest(key, len, digest);
    if (!rc) kw_key_hash_from_digest(digest, out);
    return rc;
}

int kw_ct_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}

int kw_key_hash_pbkdf2(const char *key, size_t len, unsigned iterations,
                       const char *salt, char *out, size_t outsz)
{
    unsigned char dk[32];
    if (PKCS5_PBKDF2_HMAC(key, (int)len, (const unsigned char *)salt,
                          (int)strlen(salt), (int)iterations, EVP_sha256(),
                          sizeof dk, dk) != 1)
        return KW_ERR_CRYPTO;
    unsigned char b64[64];
    int n = EVP_EncodeBlock(b64, dk, sizeof dk);
    int w = snprintf(out, outsz, "pbkdf2_sha256$%u$%s$%.*s", iterations, salt,
                     n, (const char *)b64);
    if (w < 0 || (size_t)w >= outsz) return KW_ERR_INVALID;
    return KW_OK;
}

int kw_key_legacy_form(const char *key, size_t len, int which, char *out, size_t outsz)
{
    static const unsigned ITERATIONS[KW_LEGACY_FORMS] = {260000, 390000};
    if (which < 0 || which >= KW_LEGACY_FORMS) return KW_ERR_INVALID;
    return kw_key_hash_pbkdf2(key, len, ITERATIONS[which], "posthog_personal_api_key", out, outsz);
}

int kw_key_legacy_forms(const char *key, size_t len, kw_legacy_forms *out)
{
    for (int i = 0; i < KW_LEGACY_FORMS; i++) {
        int rc = kw_key_legacy_form(key, len, i, out->form[i], sizeof out->form[i]);
        if (rc) return rc;
    }
    return KW_OK;
}

kw_hash_match kw_key_hash_verify(const char *key, size_t len, const char *stored)
{
    size_t slen = strlen(stored);
    if (slen == KW_HASH_LEN && strncmp(stored, "sha256$", 7) == 0) {
        char h[KW_HASH_LEN + 1];
        if (kw_key_hash(key, len, h)) return KW_HASH_NOMATCH;
        return kw_ct_equal(h, stored, KW_HASH_LEN) ? KW_HASH_MATCH : KW_HASH_NOMATCH;
    }
    /* pbkdf2_sha256$<iterations>$<salt>$<b64>; only the two iteration
     * counts PostHog ever used are accepted, so a crafted row cannot make
     * verification arbitrarily slow. */
    if (strncmp(stored, "pbkdf2_sha256$", 14) != 0) return KW_HASH_NOMATCH;
    const char *p = stored + 14;
    char *end;
    unsigned long iter = strtoul(p, &end, 10);
    if (*end != '$' || (iter != 260000 && iter != 390000)) return KW_HASH_NOMATCH;
    const char *salt = end + 1;
    const char *dollar = strchr(salt, '$');
    if (!dollar || (size_t)(dollar - salt) >= 64) return KW_HASH_NOMATCH;
    char saltbuf[64];
    memcpy(saltbuf, salt, (size_t)(dollar - salt));
    saltbuf[dollar - salt] = '\0';
    char computed[160];
    if (kw_key_hash_pbkdf2(key, len, (unsigned)iter, saltbuf, computed, sizeof computed))
        return KW_HASH_NOMATCH;
    size_t clen = strlen(computed);
    if (clen != slen || !kw_ct_equal(computed, stored, clen)) return KW_HASH_NOMATCH;
    return KW_HASH_MATCH_UPGRADE;
}
