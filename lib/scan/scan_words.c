/* scan_words.c — telling a random secret from language, for the generic
 * assignment rule.
 *
 * Names like token, secret and api_key sit in front of identifiers at least
 * as often as in front of secrets: `token = sessionTokenFor`, a YAML value
 * `cacheRetryPolicy` under `refresh_token_mode:`, `api_key: user-session-v2`.
 * Such values are compounds of word-like parts: split at separators, case
 * changes and letter/digit changes, nearly every letter belongs to a part of
 * three or more letters that has a vowel and no long consonant run, with
 * only a few one- or two-char parts and digit runs (v2, id), and few case
 * changes (one per word).  A random
 * string over base62 breaks into many parts of one or two letters mixed
 * with digits, so the test costs recall only on secrets that are themselves
 * made of words (passphrases), which the rule never meant to report.
 *
 * The entropy floor is scaled to the value's own alphabet and length: the
 * Shannon entropy of a random string cannot exceed log2(min(length,
 * alphabet)), so one fixed threshold is either too strict for 32-char hex or
 * too lax for 40-char base64. */
#include "scan/scan_internal.h"

#include <string.h>
#include <zlib.h>

static int is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static int is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_vowel(unsigned char c) { return c && strchr("aeiouyAEIOUY", c) != NULL; }

/* A letters-only part that could be a word or a common abbreviation. */
static int wordish(const char *s, size_t n)
{
    if (n < 3) return 0;
    size_t vowels = 0, run = 0, max_run = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_vowel((unsigned char)s[i])) {
            vowels++;
            run = 0;
        } else if (++run > max_run) {
            max_run = run;
        }
    }
    return vowels > 0 && max_run <= 4 && vowels * 5 >= n;
}

/* log2 for the small integers the entropy floor needs (2..64). */
static double log2_small(size_t x)
{
    static const double T[] = {0, 0, 1, 1.585, 2, 2.322, 2.585, 2.807, 3, 3.17, 3.322, 3.459,
                               3.585, 3.7, 3.807, 3.907, 4};
    if (x <= 16) return T[x];
    double r = 4;
    while (x > 16) { /* piecewise: log2(x) = 4 + log2(x/16), good to ~0.05 */
        x = (x + 1) / 2;
        r += 1;
    }
    return r - 4 + T[x];
}

static int below_entropy_floor(const char *v, size_t n)
{
    int hex = 1, lower = 0, upper = 0, other = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        lower |= is_lower(c);
        upper |= is_upper(c);
        other |= !is_lower(c) && !is_upper(c) && !is_digit(c);
        if (!is_digit(c) && !((c | 0x20) >= 'a' && (c | 0x20) <= 'f')) hex = 0;
    }
    size_t alphabet = hex ? 16 : other ? 64 : lower && upper ? 62 : 36;
    size_t k = n < alphabet ? n : alphabet;
    /* about the 1-in-10^4 low tail of random strings of that alphabet and
     * length (hex draws from fewer symbols, so repeats weigh more) */
    return kw_scan_entropy(v, n) < (hex ? 0.55 : 0.75) * log2_small(k);
}

/* Words no generated secret contains but example and test values do.  Five
 * letters or more: a random 40-char base64 value holds a given 4-letter
 * word, in any case, with a probability near 1e-4, too often for a
 * redactor to let it through; a 5-letter one, near 1e-6. */
static const char *const STOP_WORDS[] = {
    "password", "passwd", "secret", "token", "sensitive", "fixme", "replace", "default", "lorem",
    "qwerty", "letmein",
    /* the rule's own names: a value holding one names a secret (a parameter,
     * ACCESS_KEY = 'AWSAccessKeyId'), it is not one */
    "apikey", "api_key", "api-key", "accesskey", "access_key", "privatekey", "private_key",
};

/* A value typed by counting, as examples are: "1a2b3c4d-5e6f-7a8b-9c0d-...",
 * "12cs345-67cd-890b-...".  Its digits, read on their own, and its letters,
 * read on their own (case folded), step up by one (9 to 0 included) at half
 * or more of their neighbouring pairs, and at eight or more.  A random
 * value steps up at about 1 pair in 10 (hex) to 1 in 26 (letters): for 30
 * pairs of hex, 15 steps has a probability near 1e-7. */
static int counting_sequence(const char *v, size_t n)
{
    int last_digit = -1, last_letter = -1;
    size_t pairs = 0, steps = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (is_digit(c)) {
            int d = c - '0';
            if (last_digit >= 0) pairs++, steps += d == (last_digit + 1) % 10;
            last_digit = d;
        } else if (is_upper(c) || is_lower(c)) {
            int l = (c | 0x20) - 'a';
            if (last_letter >= 0) pairs++, steps += l == last_letter + 1;
            last_letter = l;
        }
    }
    return steps >= 8 && steps * 2 >= pairs;
}

/* Not random in ways a compound test cannot see: stop words, an ISO date
 * or time (2016-09-08T21:47:36Z), an expression (a[-1].b, f(x), {x}), a
 * counting sequence. */
static int not_random(const char *v, size_t n)
{
    for (size_t i = 0; i < sizeof STOP_WORDS / sizeof STOP_WORDS[0]; i++)
        if (kw_scan_contains_nocase(v, n, STOP_WORDS[i])) return 1;
    if (counting_sequence(v, n)) return 1;
    if (n >= 10 && is_digit((unsigned char)v[0]) && is_digit((unsigned char)v[3]) && v[4] == '-' &&
        is_digit((unsigned char)v[5]) && v[7] == '-')
        return 1;
    for (size_t i = 0; i < n; i++)
        if (strchr("[](){} ", v[i]) && v[i]) return 1;
    return 0;
}

int kw_scan_value_is_language(const char *v, size_t n, int type_name)
{
    if (not_random(v, n)) return 1;
    size_t letters = 0, word_letters = 0, digits = 0, noise = 0, acronyms = 0, i = 0;
    size_t extra_parts = 0; /* parts after the first in a separator-free chunk */
    size_t short_parts = 0; /* one-letter parts */
    int in_chunk = 0;
    while (i < n) {
        unsigned char c = (unsigned char)v[i];
        size_t j = i + 1;
        if (is_digit(c) || is_upper(c) || is_lower(c)) extra_parts += in_chunk;
        in_chunk = is_digit(c) || is_upper(c) || is_lower(c);
        if (is_digit(c)) {
            while (j < n && is_digit((unsigned char)v[j])) j++;
            digits += j - i;
            noise++;
        } else if (is_upper(c) || is_lower(c)) {
            if (is_upper(c)) {
                /* "HTTPServer": the upper run ends before the capital that
                 * starts the next word */
                while (j < n && is_upper((unsigned char)v[j])) j++;
                if (j < n && is_lower((unsigned char)v[j]) && j - i > 1) j--;
            }
            while (j < n && is_lower((unsigned char)v[j])) j++;
            letters += j - i;
            short_parts += j - i == 1;
            int upper_run = j - i >= 2 && is_upper(c) && is_upper((unsigned char)v[j - 1]);
            if (upper_run && j - i <= 5 && !acronyms++) word_letters += j - i; /* HTTP, API */
            else if (wordish(v + i, j - i)) word_letters += j - i;
            else if (j - i < 3) noise++;
        }
        i = j;
    }
    /* a compound: mostly word letters, few digits, few of the one- and
     * two-char parts and digit runs that a random string is full of, and
     * camel parts five chars long on average (a random string changes
     * case or letter/digit every two chars) */
    if (letters >= 6 && word_letters * 10 >= letters * 9 && digits <= 4 && noise <= 2 + n / 12 &&
        extra_parts * 5 <= n)
        return 1;
    /* a type or class name (FilterOrBool, AWSAccessKeyId, PySecBufferDesc):
     * no digits, no one-letter part, one case change per four chars, and
     * mostly word-like parts (random letters have consonant runs no word
     * has: without that test one random letters-only value in a few hundred
     * passed as a type name); only asked of bare values (annotations) */
    if (type_name && letters >= 8 && digits == 0 && short_parts == 0 && extra_parts * 4 <= n &&
        word_letters * 10 >= letters * 7)
        return 1;
    return below_entropy_floor(v, n);
}

/* The literal prefixes of the provider rules; a value that starts with one
 * belongs to that rule whether or not it is a valid token. */
static const char *const PROVIDER_PREFIXES[] = {
    "AKIA", "ASIA", "ABIA", "ACCA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox",
    "xapp-", "sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_", "phx_", "phs_", "phc_",
    "glpat-", "gldt-", "glrt-", "glcbt-", "glptt-", "glft-", "gloas-", "glimt-", "glagent-",
    "glsoat-", "GR1348941", "npm_", "pypi-", "rubygems_", "dckr_pat_", "dckr_oat_", "CCIPAT_",
    "CCIPRJ_", "hvs.", "hvb.", "hvr.", "AIza", "GOCSPX-", "ya29.", "LTAI", "dop_v1_", "doo_v1_",
    "dor_v1_", "HRKU-", "SG.", "sk-", "hf_", "api_org_", "r8_", "gsk_", "pplx-", "xai-", "lsv2_",
    "sntrys_", "sntryu_", "NRAK-", "NRII-", "glc_", "glsa_", "dt0c01.", "AGE-SECRET-KEY-", "ops_",
    "shpat_", "shpca_", "shppa_", "shpss_", "EAAA", "sq0csp-", "sq0atp-", "lin_api_", "dp.pt.",
    "pul-", "PMAK-", "ATATT", "ATBB", "eyJ", "sgp_", "AKCp", "oy2", "key-", "v1.0-",
};

int kw_scan_has_provider_prefix(const char *v, size_t n)
{
    for (size_t i = 0; i < sizeof PROVIDER_PREFIXES / sizeof PROVIDER_PREFIXES[0]; i++) {
        size_t pl = strlen(PROVIDER_PREFIXES[i]);
        if (n >= pl && memcmp(v, PROVIDER_PREFIXES[i], pl) == 0) return 1;
    }
    return 0;
}

int kw_scan_crc32_token_ok(const char *body, size_t n)
{
    if (n != 36) return 0;
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)body, 30);
    uint64_t v = 0;
    for (size_t i = 30; i < 36; i++) {
        unsigned char c = (unsigned char)body[i];
        int d = is_digit(c) ? c - '0' : is_upper(c) ? c - 'A' + 10 : is_lower(c) ? c - 'a' + 36 : -1;
        if (d < 0) return 0;
        v = v * 62 + (uint64_t)d;
    }
    return v == crc;
}
