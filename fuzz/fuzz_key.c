/* fuzz_key.c — key format on arbitrary bytes: kw_key_classify,
 * kw_key_kind_of, kw_key_checksum_ok, kw_key_mask, kw_key_hash and
 * kw_key_hash_verify.
 *
 * Input: the key bytes, optionally followed by '\n' and a stored
 * secure_value to verify the key against.
 * Invariants:
 *   - classify agrees with kind_of, and with or without an info struct;
 *   - KEYWARD ⇔ 54-char base62 body with a valid checksum; LEGACY ⇔ a
 *     20..53-char base62 body; a valid key stays valid when re-classified
 *     from a NUL-terminated copy;
 *   - the mask is "********" under 16 bytes, else key[:4]+"..."+key[-4:];
 *   - a key verifies against its own sha256 hash and not against the hash
 *     of a different key; verify never matches a garbage stored value
 *     except with the upgrade answer for pbkdf2 forms. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "keyward/keyward.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *key = (const char *)data;
    size_t klen = size;
    const char *nl = memchr(data, '\n', size);
    char *stored = NULL;
    if (nl) {
        klen = (size_t)(nl - key);
        size_t slen = size - klen - 1;
        stored = malloc(slen + 1);
        FZ_CHECK(stored != NULL, "oom");
        memcpy(stored, nl + 1, slen);
        stored[slen] = '\0';
    }

    kw_key_info info;
    kw_key_format f = kw_key_classify(key, klen, &info);
    FZ_CHECK(f == info.format, "return %d vs info %d", f, info.format);
    FZ_CHECK(kw_key_classify(key, klen, NULL) == f, "classify depends on info");
    kw_key_kind kind = kw_key_kind_of(key, klen);
    FZ_CHECK(info.kind == kind || f == KW_FORMAT_INVALID, "kind %d vs %d", info.kind, kind);
    if (f != KW_FORMAT_INVALID) {
        FZ_CHECK(kind != KW_KEY_NONE, "valid key without a kind");
        FZ_CHECK(memcmp(key, kw_key_prefix(kind), KW_KEY_PREFIX_LEN) == 0, "prefix");
        size_t body = klen - KW_KEY_PREFIX_LEN;
        for (size_t i = 0; i < body; i++)
            FZ_CHECK(kw_is_base62((unsigned char)key[KW_KEY_PREFIX_LEN + i]), "non-base62 at %zu", i);
        if (f == KW_FORMAT_KEYWARD) {
            FZ_CHECK(body == KW_KEY_BODY_LEN, "keyward body %zu", body);
            FZ_CHECK(kw_key_checksum_ok(key, key + KW_KEY_PREFIX_LEN, body), "checksum");
        } else {
            FZ_CHECK(body >= KW_KEY_LEGACY_MIN_BODY && body < KW_KEY_BODY_LEN, "legacy body %zu", body);
        }
    } else if (kind != KW_KEY_NONE && klen == KW_KEY_LEN) {
        /* A 54-char base62 body that is invalid must have a bad checksum. */
        int all62 = 1;
        for (size_t i = KW_KEY_PREFIX_LEN; i < klen; i++) all62 &= kw_is_base62((unsigned char)key[i]);
        if (all62) FZ_CHECK(!kw_key_checksum_ok(key, key + KW_KEY_PREFIX_LEN, KW_KEY_BODY_LEN), "rejected a valid checksum");
    }
    /* The checksum test itself, on any body length. */
    if (klen >= KW_KEY_PREFIX_LEN)
        (void)kw_key_checksum_ok(key, key + KW_KEY_PREFIX_LEN, klen - KW_KEY_PREFIX_LEN);

    char mask[KW_MASK_MAX];
    memset(mask, 'Z', sizeof mask);
    kw_key_mask(key, klen, mask);
    FZ_CHECK(memchr(mask, '\0', sizeof mask) != NULL, "mask not terminated");
    if (klen < 16) {
        FZ_CHECK(strcmp(mask, "********") == 0, "short mask %s", mask);
    } else {
        FZ_CHECK(strlen(mask) == 11 || memchr(key, '\0', klen), "mask length");
        FZ_CHECK(memcmp(mask, key, 4) == 0 && memcmp(mask + 4, "...", 3) == 0 &&
                     memcmp(mask + 7, key + klen - 4, 4) == 0, "mask shape");
    }

    char hash[KW_HASH_LEN + 1];
    FZ_CHECK(kw_key_hash(key, klen, hash) == KW_OK, "hash failed");
    FZ_CHECK(strlen(hash) == KW_HASH_LEN && strncmp(hash, "sha256$", 7) == 0, "hash shape");
    FZ_CHECK(kw_key_hash_verify(key, klen, hash) == KW_HASH_MATCH, "own hash does not verify");
    if (klen > 0)
        FZ_CHECK(kw_key_hash_verify(key, klen - 1, hash) == KW_HASH_NOMATCH, "prefix verifies");

    if (stored) {
        kw_hash_match m = kw_key_hash_verify(key, klen, stored);
        FZ_CHECK(m == KW_HASH_NOMATCH || m == KW_HASH_MATCH || m == KW_HASH_MATCH_UPGRADE, "verdict %d", m);
        if (m == KW_HASH_MATCH) FZ_CHECK(strcmp(stored, hash) == 0, "sha256 match on another value");
        if (m == KW_HASH_MATCH_UPGRADE) FZ_CHECK(strncmp(stored, "pbkdf2_sha256$", 14) == 0, "upgrade");
        free(stored);
    }
    return 0;
}
