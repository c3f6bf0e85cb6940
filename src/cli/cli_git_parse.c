/* cli_git_parse.c — parsers for what git prints, kept free of any process
 * or library so the fuzzer can feed them directly.
 *
 * git's output describes a repository someone else controls: file names in
 * it may hold any byte but NUL, and a header or size is only believed after
 * it has been matched byte by byte. */
#include <stdint.h>
#include <string.h>

#include "cli/cli_git.h"

int cli_git_parse_header(const char *header, size_t n, const char *oid, size_t *size)
{
    /* "<oid> blob <size>\n", the oid exactly the one asked for */
    size_t ol = strlen(oid);
    if (n == ol + 9 && memcmp(header, oid, ol) == 0 && memcmp(header + ol, " missing\n", 9) == 0)
        return 1;
    if (n < ol + 8 || memcmp(header, oid, ol) != 0 || memcmp(header + ol, " blob ", 6) != 0 ||
        header[n - 1] != '\n')
        return -1;
    const char *p = header + ol + 6, *end = header + n - 1;
    if (p == end || end - p > 19) return -1;
    unsigned long long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v > SIZE_MAX - 2) return -1;
    *size = (size_t)v;
    return 0;
}

int cli_is_object_id(const char *s)
{
    size_t n = strspn(s, "0123456789abcdef");
    return s[n] == '\0' && (n == 40 || n == 64);
}

/* One `diff --raw -z` record: ":<mode> <mode> <oid> <oid> <status>\0<path>\0"
 * (R and C have a second path).  *dst_oid and *path point into buf; returns
 * the offset after the record, 0 when malformed. */
size_t cli_parse_raw_record(const char *buf, size_t len, size_t i, const char **dst_mode,
                            const char **dst_oid, const char **path)
{
    const char *rec = buf + i;
    const char *nul = memchr(rec, '\0', len - i);
    if (!nul || rec[0] != ':') return 0;
    /* the header: five space-separated fields */
    const char *f[5];
    size_t fl[5], k = 0;
    const char *p = rec + 1;
    while (k < 5 && p < nul) {
        const char *sp = memchr(p, ' ', (size_t)(nul - p));
        const char *e = sp ? sp : nul;
        f[k] = p;
        fl[k++] = (size_t)(e - p);
        p = sp ? sp + 1 : nul;
    }
    if (k != 5 || p != nul || fl[0] != 6 || fl[1] != 6 || (fl[3] != 40 && fl[3] != 64) ||
        fl[2] != fl[3] || fl[4] < 1)
        return 0;
    for (size_t x = 0; x < fl[3]; x++)
        if (!f[3][x] || !strchr("0123456789abcdef", f[3][x])) return 0;
    int two = f[4][0] == 'R' || f[4][0] == 'C';
    size_t at = (size_t)(nul - buf) + 1;
    for (int n = 0; n < (two ? 2 : 1); n++) {
        if (at >= len) return 0;
        const char *end = memchr(buf + at, '\0', len - at);
        if (!end || end == buf + at) return 0;
        *path = buf + at;
        at = (size_t)(end - buf) + 1;
    }
    *dst_mode = f[1];
    *dst_oid = f[3];
    return at;
}

