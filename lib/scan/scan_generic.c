/* scan_generic.c — the anchor finder of the generic-secret-assignment rule,
 * in C instead of in the regex database.
 *
 * The rule's anchor is KW_SCAN_GENERIC_ANCHOR (scan_internal.h): a secret-
 * like name (token, secret, password, api_key, ...), up to 20 more name
 * chars, `=`/`:`/`:=`/`=>` with optional quotes and spaces, and the first 12
 * chars of a value.  Those names are everywhere in ordinary code
 * (`token_count = 3`, `password_hint: ...`), and in a regex database each
 * name hit costs a confirmation run of the automaton: on the benchmark
 * corpus (one name every ~250 bytes) this one rule cost Hyperscan 0.3 s per
 * 500 MB, four times all the other rules together.
 *
 * Here a SIMD pass looks for the byte pairs every name contains, ignoring
 * case ("ke" in token/..._key, "cr" in secret, "sw" in passw(or)d, "pw" in
 * pwd), a few byte compares confirm the name, and the rest of the anchor is
 * walked byte by byte from the name's end.  The anchor is deterministic
 * once the name's end is known (no char can be read two ways: name chars,
 * quotes, blanks, separators and value chars are disjoint where they meet),
 * so this reports exactly the end offsets the regex reports; the unit test
 * test_scan.c checks that against the regex on random input. */
#include "scan/scan_internal.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define KW_GENERIC_X86 1
#endif

/* [a-z0-9_.-] under (?i) */
static const unsigned char NAME_CHAR[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* [0-9A-Za-z/+_.~!@#%^&*-] */
static const unsigned char VALUE_CHAR[256] = {
    ['/'] = 1, ['+'] = 1, ['_'] = 1, ['.'] = 1, ['~'] = 1, ['!'] = 1, ['@'] = 1, ['#'] = 1,
    ['%'] = 1, ['^'] = 1, ['&'] = 1, ['*'] = 1, ['-'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* ASCII case-insensitive compare against a lowercase letters-only word:
 * c | 0x20 equals a lowercase letter only for that letter in either case. */
static int word_at(const char *d, size_t at, const char *word, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)d[at + i] | 0x20) != (unsigned char)word[i]) return 0;
    return 1;
}

/* `<prefix>[_-]?` ends at `at` (for api/access/auth/private + key). */
static int key_prefix_before(const char *d, size_t at)
{
    static const struct { const char *w; size_t n; } PREFIXES[] = {
        {"api", 3}, {"access", 6}, {"auth", 4}, {"private", 7},
    };
    for (size_t i = 0; i < sizeof PREFIXES / sizeof PREFIXES[0]; i++) {
        size_t n = PREFIXES[i].n;
        if (at >= n && word_at(d, at - n, PREFIXES[i].w, n)) return 1;
        if (at >= n + 1 && (d[at - 1] == '_' || d[at - 1] == '-') &&
            word_at(d, at - 1 - n, PREFIXES[i].w, n))
            return 1;
    }
    return 0;
}

/* Where the name around the pair at i ends, or 0 when there is none.
 * Names: secret, passwd, password, pwd, token, (api|access|auth|private)[_-]?key;
 * client[_-]?secret ends where its "secret" does, so needs no case. */
static size_t name_end(const char *d, size_t len, size_t i)
{
    switch ((unsigned char)d[i] | 0x20) {
    case 'k': /* "ke": token, ...key */
        if (i + 3 <= len && ((unsigned char)d[i + 2] | 0x20) == 'y' && key_prefix_before(d, i))
            return i + 3;
        if (i >= 2 && i + 3 <= len && word_at(d, i - 2, "token", 5)) return i + 3;
        return 0;
    case 'c': /* "cr": secret */
        return i >= 2 && i + 4 <= len && word_at(d, i - 2, "secret", 6) ? i + 4 : 0;
    case 's': /* "sw": passwd, password */
        if (i < 3 || !word_at(d, i - 3, "pass", 4)) return 0;
        if (i + 3 <= len && ((unsigned char)d[i + 2] | 0x20) == 'd') return i + 3;
        return i + 5 <= len && word_at(d, i + 2, "ord", 3) ? i + 5 : 0;
    case 'p': /* "pw": pwd */
        return i + 3 <= len && ((unsigned char)d[i + 2] | 0x20) == 'd' ? i + 3 : 0;
    }
    return 0;
}

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* From a name ending at k: [a-z0-9_.-]{0,20}\\?["']?[ \t]{0,3}(?::=|=>|=|:)
 * [ \t]{0,3}\\?["'`]?[value]{12}.  Returns the anchor's end, or 0. */
static size_t anchor_end(const char *d, size_t len, size_t k)
{
    size_t p = k;
    while (p < len && p - k <= 20 && NAME_CHAR[(unsigned char)d[p]]) p++;
    if (p - k > 20) return 0; /* a longer name: the separator is too far */
    if (p < len && d[p] == '\\') p++;
    if (p < len && (d[p] == '"' || d[p] == '\'')) p++;
    for (size_t n = 0; n < 3 && p < len && is_blank(d[p]); n++) p++;
    if (p >= len) return 0;
    if (d[p] == ':') p += p + 1 < len && d[p + 1] == '=' ? 2 : 1;
    else if (d[p] == '=') p += p + 1 < len && d[p + 1] == '>' ? 2 : 1;
    else return 0;
    for (size_t n = 0; n < 3 && p < len && is_blank(d[p]); n++) p++;
    if (p < len && d[p] == '\\') p++;
    if (p < len && (d[p] == '"' || d[p] == '\'' || d[p] == '`')) p++;
    if (len - p < KW_SCAN_GENERIC_ANCHOR_VALUE) return 0;
    for (size_t n = 0; n < KW_SCAN_GENERIC_ANCHOR_VALUE; n++)
        if (!VALUE_CHAR[(unsigned char)d[p + n]]) return 0;
    return p + KW_SCAN_GENERIC_ANCHOR_VALUE;
}

typedef struct finder {
    const char *d;
    size_t len;
    size_t last; /* last anchor reported: names in one run end in one anchor */
    kw_scan_anchor_fn fn;
    void *ctx;
} finder;

static int at_pair(finder *f, size_t i)
{
    size_t k = name_end(f->d, f->len, i);
    if (!k) return 0;
    size_t to = anchor_end(f->d, f->len, k);
    if (!to || to == f->last) return 0;
    f->last = to;
    return f->fn(to, f->ctx);
}

static int is_pair(const char *d, size_t i)
{
    unsigned a = (unsigned char)d[i] | 0x20, b = (unsigned char)d[i + 1] | 0x20;
    return (a == 'k' && b == 'e') || (a == 'c' && b == 'r') || ((a == 's' || a == 'p') && b == 'w');
}

static int scan_scalar(finder *f, size_t from)
{
    for (size_t i = from; i + 1 < f->len; i++) {
        if (!is_pair(f->d, i)) continue;
        int rc = at_pair(f, i);
        if (rc) return rc;
    }
    return 0;
}

#ifdef KW_GENERIC_X86
static int scan_sse2(finder *f)
{
    const __m128i lower = _mm_set1_epi8(0x20);
    const __m128i k = _mm_set1_epi8('k'), e = _mm_set1_epi8('e'), c = _mm_set1_epi8('c'),
                  r = _mm_set1_epi8('r'), s = _mm_set1_epi8('s'), p = _mm_set1_epi8('p'),
                  w = _mm_set1_epi8('w');
    size_t i = 0;
    for (; i + 17 <= f->len; i += 16) {
        __m128i a = _mm_or_si128(_mm_loadu_si128((const __m128i *)(f->d + i)), lower);
        __m128i b = _mm_or_si128(_mm_loadu_si128((const __m128i *)(f->d + i + 1)), lower);
        __m128i m = _mm_and_si128(_mm_cmpeq_epi8(a, k), _mm_cmpeq_epi8(b, e));
        m = _mm_or_si128(m, _mm_and_si128(_mm_cmpeq_epi8(a, c), _mm_cmpeq_epi8(b, r)));
        m = _mm_or_si128(m, _mm_and_si128(_mm_or_si128(_mm_cmpeq_epi8(a, s), _mm_cmpeq_epi8(a, p)),
                                          _mm_cmpeq_epi8(b, w)));
        unsigned bits = (unsigned)_mm_movemask_epi8(m);
        while (bits) {
            int rc = at_pair(f, i + (size_t)__builtin_ctz(bits));
            if (rc) return rc;
            bits &= bits - 1;
        }
    }
    return scan_scalar(f, i);
}

__attribute__((target("avx2"))) static int scan_avx2(finder *f)
{
    const __m256i lower = _mm256_set1_epi8(0x20);
    const __m256i k = _mm256_set1_epi8('k'), e = _mm256_set1_epi8('e'), c = _mm256_set1_epi8('c'),
                  r = _mm256_set1_epi8('r'), s = _mm256_set1_epi8('s'), p = _mm256_set1_epi8('p'),
                  w = _mm256_set1_epi8('w');
    size_t i = 0;
    for (; i + 33 <= f->len; i += 32) {
        __m256i a = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(f->d + i)), lower);
        __m256i b = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(f->d + i + 1)), lower);
        __m256i m = _mm256_and_si256(_mm256_cmpeq_epi8(a, k), _mm256_cmpeq_epi8(b, e));
        m = _mm256_or_si256(m, _mm256_and_si256(_mm256_cmpeq_epi8(a, c), _mm256_cmpeq_epi8(b, r)));
        m = _mm256_or_si256(
            m, _mm256_and_si256(_mm256_or_si256(_mm256_cmpeq_epi8(a, s), _mm256_cmpeq_epi8(a, p)),
                                _mm256_cmpeq_epi8(b, w)));
        unsigned bits = (unsigned)_mm256_movemask_epi8(m);
        while (bits) {
            int rc = at_pair(f, i + (size_t)__builtin_ctz(bits));
            if (rc) return rc;
            bits &= bits - 1;
        }
    }
    return scan_scalar(f, i);
}
#endif

int kw_scan_generic_find_with(int level, const char *data, size_t len, kw_scan_anchor_fn fn,
                              void *ctx)
{
    finder f = {data, len, 0, fn, ctx};
#ifdef KW_GENERIC_X86
    if (level >= 2) return scan_avx2(&f);
    if (level == 1) return scan_sse2(&f);
#else
    (void)level;
#endif
    return scan_scalar(&f, 0);
}

int kw_scan_generic_find(const char *data, size_t len, kw_scan_anchor_fn fn, void *ctx)
{
#ifdef KW_GENERIC_X86
    static int level = -1; /* every thread computes the same value */
    int use = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (use < 0) {
        __builtin_cpu_init();
        use = __builtin_cpu_supports("avx2") ? 2 : 1;
        __atomic_store_n(&level, use, __ATOMIC_RELAXED);
    }
    return kw_scan_generic_find_with(use, data, len, fn, ctx);
#else
    return kw_scan_generic_find_with(0, data, len, fn, ctx);
#endif
}
