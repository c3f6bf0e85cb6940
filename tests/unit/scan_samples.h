/* scan_samples.h — scanner test samples built at run time from templates.
 *
 * A sample is written as a template ("ghp_{A:30}{C}") and filled with
 * pseudo-random chars when the test runs, so the source holds no string
 * that looks like a live credential to a secret scanner (GitHub push
 * protection included), and checksummed formats get a valid checksum.
 *
 *   {A:n} base62   {a:n} lowercase hex   {U:n} 0-9A-Z   {L:n} A-Za-z
 *   {l:n} 0-9a-z   {d:n} digits          {B:n} base64 (base62 + / +)
 *   {Z:n} bech32 (uppercase)             {D:n} base64 of an n-digit id
 *   {C}   base62 CRC32 of the 30 chars before it (GitHub, npm)
 * Any other '{' is literal.  Random chunks that the placeholder filter
 * would take for an example ("1234", "xxxx", a run of five) are redrawn. */
#ifndef KW_TEST_SCAN_SAMPLES_H
#define KW_TEST_SCAN_SAMPLES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "scan/scan_internal.h"

static const char SAMPLES_BASE62[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static inline unsigned samples_rand(uint64_t *seed)
{
    *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)(*seed >> 33);
}

/* The 6-char base62 CRC32 of 30 chars, as GitHub and npm tokens end. */
static inline void samples_crc_suffix(const char *random30, char out[7])
{
    uint64_t v = (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)random30, 30);
    for (int i = 5; i >= 0; i--) {
        out[i] = SAMPLES_BASE62[v % 62];
        v /= 62;
    }
    out[6] = '\0';
}

static inline const char *samples_alphabet(char code)
{
    switch (code) {
    case 'A': return SAMPLES_BASE62;
    case 'a': return "0123456789abcdef";
    case 'U': return "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    case 'L': return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    case 'l': return "0123456789abcdefghijklmnopqrstuvwxyz";
    case 'd': return "0123456789";
    case 'B': return "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/";
    case 'Z': return "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L";
    default: return NULL;
    }
}

/* Base64 (no padding) of n random digits, the first non-zero. */
static inline size_t samples_b64_id(uint64_t *seed, size_t digits, char *out)
{
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char id[32];
    size_t w = 0;
    if (digits > sizeof id) digits = sizeof id;
    for (size_t i = 0; i < digits; i++)
        id[i] = (unsigned char)('0' + (i == 0 ? 1 + samples_rand(seed) % 9 : samples_rand(seed) % 10));
    for (size_t i = 0; i < digits; i += 3) {
        unsigned v = (unsigned)id[i] << 16;
        if (i + 1 < digits) v |= (unsigned)id[i + 1] << 8;
        if (i + 2 < digits) v |= id[i + 2];
        size_t chars = digits - i >= 3 ? 4 : digits - i + 1;
        for (size_t k = 0; k < chars; k++) out[w++] = B64[(v >> (18 - 6 * k)) & 63];
    }
    return w;
}

/* Fills `tmpl` into out (cap bytes, NUL-terminated); returns its length. */
static inline size_t samples_expand(const char *tmpl, char *out, size_t cap, uint64_t *seed)
{
    size_t w = 0;
    for (const char *p = tmpl; *p && w + 1 < cap;) {
        const char *alphabet = p[0] == '{' ? samples_alphabet(p[1]) : NULL;
        if (p[0] == '{' && p[1] == 'C' && p[2] == '}' && w >= 30) {
            char crc[7];
            samples_crc_suffix(out + w - 30, crc);
            for (int i = 0; i < 6 && w + 1 < cap; i++) out[w++] = crc[i];
            p += 3;
        } else if ((alphabet || p[1] == 'D') && p[0] == '{' && p[2] == ':') {
            char *end;
            size_t n = strtoul(p + 3, &end, 10);
            if (*end != '}' || w + n + 8 >= cap) break;
            if (p[1] == 'D') {
                w += samples_b64_id(seed, n, out + w);
            } else {
                size_t k = strlen(alphabet);
                do {
                    for (size_t i = 0; i < n; i++) out[w + i] = alphabet[samples_rand(seed) % k];
                } while (kw_scan_is_placeholder(out + w, n));
                w += n;
            }
            p = end + 1;
        } else {
            out[w++] = *p++;
        }
    }
    out[w] = '\0';
    return w;
}

#endif
