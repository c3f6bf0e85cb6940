/* scan_checks.c — the judgements every scanner rule shares: Shannon
 * entropy, the placeholder words of examples and fixtures, and where a
 * token may start (kw_scan_token_boundary).  One copy of each, used by
 * every rule, so `keyward scan` and `keyward redact` (which share the
 * rules) can never disagree about them. */
#include "scan/scan_internal.h"

#include <ctype.h>
#include <string.h>

#include "keyward/keyward.h"

/* log2 without libm (the library links no -lm): split x into 2^e * m with
 * m in [1, 2), then log2(m) = 2/ln2 * atanh((m-1)/(m+1)) by its series.
 * Good to ~1e-9, far finer than an entropy threshold needs. */
static double log2_of(double x)
{
    int e = 0;
    while (x >= 2.0) { x /= 2.0; e++; }
    while (x < 1.0) { x *= 2.0; e--; }
    double t = (x - 1.0) / (x + 1.0), t2 = t * t, term = t, sum = 0.0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= t2;
    }
    return e + 2.0 * sum / 0.69314718055994530942;
}

double kw_scan_entropy(const char *s, size_t len)
{
    if (len == 0) return 0.0;
    unsigned counts[256] = {0};
    for (size_t i = 0; i < len; i++) counts[(unsigned char)s[i]]++;
    double bits = 0.0;
    for (int c = 0; c < 256; c++) {
        if (!counts[c]) continue;
        double p = (double)counts[c] / (double)len;
        bits -= p * log2_of(p);
    }
    return bits;
}

/* Case-insensitive substring search over a bounded buffer. */
int kw_scan_contains_nocase(const char *s, size_t len, const char *word)
{
    size_t wl = strlen(word);
    if (wl > len) return 0;
    for (size_t i = 0; i + wl <= len; i++) {
        size_t j = 0;
        while (j < wl && tolower((unsigned char)s[i + j]) == word[j]) j++;
        if (j == wl) return 1;
    }
    return 0;
}

/* Words that only appear in examples, templates and test data.  A random
 * 48-char base62 string contains one of the 4-char sequences with a
 * probability around 1e-5, which we accept. */
static const char *const PLACEHOLDER_WORDS[] = {
    "example", "xxxx", "your_", "your-", "yourkey", "changeme", "placeholder", "dummy",
    "redacted", "sample", "insert", "1234", "abcd", "${", "{{", "<", ">", "%s", "...",
};

int kw_scan_is_placeholder(const char *s, size_t len)
{
    /* Runs on every anchor hit that gets this far, so lowercase once and
     * let memmem search (the "C" locale's tolower is ASCII-only too). */
    char lower[512];
    if (len <= sizeof lower) {
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            lower[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        }
        for (size_t i = 0; i < sizeof PLACEHOLDER_WORDS / sizeof PLACEHOLDER_WORDS[0]; i++)
            if (memmem(lower, len, PLACEHOLDER_WORDS[i], strlen(PLACEHOLDER_WORDS[i]))) return 1;
    } else {
        for (size_t i = 0; i < sizeof PLACEHOLDER_WORDS / sizeof PLACEHOLDER_WORDS[0]; i++)
            if (kw_scan_contains_nocase(s, len, PLACEHOLDER_WORDS[i])) return 1;
    }
    /* A run of 5 identical chars ("aaaaa", "00000") is a filler; in a hex
     * body (32+ hex chars after at most a 12-char prefix: dop_v1_<64 hex>)
     * a run of 7, since 16 symbols repeat far more often: a random 64-char
     * hex body holds a run of 5 with a probability near 1e-3 (one
     * DigitalOcean token in a thousand), a run of 7 near 4e-6. */
    size_t body = 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')))
            body = i + 1;
    size_t run = 1, filler = body <= 12 && len - body >= 32 ? 7 : 5;
    for (size_t i = 1; i < len; i++) {
        run = s[i] == s[i - 1] ? run + 1 : 1;
        if (run >= filler) return 1;
    }
    return 0;
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* The `n` of `\n` or the `D` of `%3D` is a letter, but what it ends is an
 * escape: a secret written right after one (JSON "\nphx_...", a URL
 * "?q%3Dphx_...") starts a token.  Only a backslash or percent sign at a
 * fixed distance with the right shape counts, so an identifier like
 * "xphx_..." or "nphx_..." still does not.  The backslash's own escaping
 * is not looked at ("\\nphx_" counts too): a redactor errs on masking. */
static int ends_escape(const char *d, size_t at)
{
    unsigned char c = (unsigned char)d[at - 1];
    if (at >= 2 && d[at - 2] == '\\' && c && strchr("abefnrtv0", c)) return 1; /* \n */
    if (!is_hex(c) || at < 3 || !is_hex((unsigned char)d[at - 2])) return 0;
    if (d[at - 3] == '%') return 1;                                       /* %3D */
    if (at >= 4 && (d[at - 3] | 0x20) == 'x' && d[at - 4] == '\\') return 1; /* \x3d */
    if (at >= 5 && memcmp(d + at - 5, "%25", 3) == 0) return 1;          /* %253D */
    return at >= 6 && d[at - 6] == '\\' && (d[at - 5] | 0x20) == 'u' &&   /* \u003d */
           is_hex((unsigned char)d[at - 4]) && is_hex((unsigned char)d[at - 3]);
}

int kw_scan_token_boundary(const char *data, size_t start, const char *glue)
{
    if (start == 0) return 1;
    unsigned char c = (unsigned char)data[start - 1];
    if (!(kw_is_base62(c) || c == '_') && !(c && strchr(glue, c))) return 1;
    return ends_escape(data, start);
}

int kw_scan_in_charset(int charset, unsigned char c)
{
    int alnum = kw_is_base62(c);
    switch (charset) {
    case KW_CHARSET_BASE62: return alnum;
    case KW_CHARSET_UPPER_DIGIT: return alnum && !(c >= 'a' && c <= 'z');
    case KW_CHARSET_WORD: return alnum || c == '_';
    case KW_CHARSET_DASHED: return alnum || c == '-';
    case KW_CHARSET_URLSAFE: return alnum || c == '_' || c == '-';
    case KW_CHARSET_HEX: return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    case KW_CHARSET_ALPHA: return alnum && !(c >= '0' && c <= '9');
    case KW_CHARSET_BASE64: return alnum || c == '+' || c == '/' || c == '=';
    case KW_CHARSET_B64URL_PAD: return alnum || c == '_' || c == '-' || c == '=' || c == '.';
    case KW_CHARSET_AZURE: return alnum || c == '_' || c == '~' || c == '.' || c == '-';
    case KW_CHARSET_PATH: return alnum || c == '_' || c == '-' || c == '/';
    default: return c > 0x20 && c < 0x7f;
    }
}

size_t kw_scan_extend(const char *data, size_t len, size_t pos, int charset, size_t limit)
{
    while (pos < len && pos < limit && kw_scan_in_charset(charset, (unsigned char)data[pos])) pos++;
    return pos;
}
