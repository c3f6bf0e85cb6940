/* fuzz_gitout.c — the parsers of git's output (a `cat-file --batch` header,
 * `diff --raw -z` records) and the escaping of file names for reports.
 * git prints what a repository someone else controls contains, so these
 * see hostile bytes.
 *
 * Input: byte 0 picks the parser (0: header, 1: raw records, 2: file
 * name); the rest is parsed from an exactly-sized heap copy so ASan sees
 * any read past its end.
 * Invariants:
 *   - header: 0 only for "<oid> blob <digits>\n" with the size those digits
 *     say; 1 only for exactly "<oid> missing\n";
 *   - raw: each record advances, stays inside the buffer, yields a 6-byte
 *     mode, a 40/64-digit lower-case hex id and a non-empty NUL-terminated
 *     path inside the buffer;
 *   - name: the escaped name is valid UTF-8 with no control byte, and is
 *     the name itself whenever that already was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_git.h"
#include "cli/cli_scan.h"
#include "fuzz_common.h"

static const char OID[] = "0123456789abcdef0123456789abcdef01234567";

/* 1 when s[0..n) is UTF-8 without control bytes (what reports need). */
static int clean_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 || s[i] == 0x7f) return 0;
        size_t want = s[i] < 0x80 ? 1 : (s[i] & 0xe0) == 0xc0 ? 2 : (s[i] & 0xf0) == 0xe0 ? 3
                    : (s[i] & 0xf8) == 0xf0 ? 4 : 0;
        if (!want || i + want > n) return 0;
        unsigned cp = want == 1 ? s[i] : want == 2 ? s[i] & 0x1f : want == 3 ? s[i] & 0x0f : s[i] & 7;
        for (size_t k = 1; k < want; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const unsigned MIN[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < MIN[want] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += want;
    }
    return 1;
}

static void fuzz_header(const char *h, size_t n)
{
    size_t size = 12345;
    int rc = cli_git_parse_header(h, n, OID, &size);
    FZ_CHECK(rc >= -1 && rc <= 1, "rc %d", rc);
    size_t ol = sizeof OID - 1;
    if (rc == 1) FZ_CHECK(n == ol + 9 && !memcmp(h, OID, ol), "missing on %zu bytes", n);
    if (rc == 0) {
        FZ_CHECK(n > ol + 7 && !memcmp(h, OID, ol) && !memcmp(h + ol, " blob ", 6) &&
                     h[n - 1] == '\n', "accepted a malformed header");
        size_t v = 0;
        for (size_t i = ol + 6; i < n - 1; i++) {
            FZ_CHECK(h[i] >= '0' && h[i] <= '9', "non-digit in size");
            v = v * 10 + (size_t)(h[i] - '0');
        }
        FZ_CHECK(v == size, "size %zu, digits say %zu", size, v);
    }
}

static void fuzz_raw(const char *buf, size_t len)
{
    for (size_t i = 0; i < len;) {
        const char *mode = NULL, *oid = NULL, *path = NULL;
        size_t next = cli_parse_raw_record(buf, len, i, &mode, &oid, &path);
        if (!next) return;
        FZ_CHECK(next > i && next <= len, "record %zu -> %zu of %zu", i, next, len);
        FZ_CHECK(mode >= buf && mode + 6 < buf + len && mode[6] == ' ', "mode");
        size_t ol = strspn(oid, "0123456789abcdef");
        FZ_CHECK((ol == 40 || ol == 64) && oid[ol] == ' ', "oid of %zu digits", ol);
        FZ_CHECK(path > oid && path < buf + next, "path outside its record");
        size_t pl = strnlen(path, (size_t)(buf + len - path));
        FZ_CHECK(pl > 0 && path + pl < buf + len, "path not NUL-terminated in the buffer");
        i = next;
    }
}

static void fuzz_name(const char *data, size_t len)
{
    char *raw = strndup(data, len); /* a file name has no NUL */
    FZ_CHECK(raw != NULL, "out of memory");
    char *shown = cli_display_name(raw);
    FZ_CHECK(shown != NULL, "out of memory");
    size_t rl = strlen(raw), sl = strlen(shown);
    FZ_CHECK(clean_utf8((const unsigned char *)shown, sl), "escaped name is not clean UTF-8");
    if (clean_utf8((const unsigned char *)raw, rl))
        FZ_CHECK(!strcmp(raw, shown), "a clean name was changed");
    free(shown);
    free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = size - 1;
    char *copy = malloc(n ? n : 1);
    if (!copy) return 0;
    memcpy(copy, data + 1, n);
    switch (data[0] % 3) {
    case 0: fuzz_header(copy, n); break;
    case 1: fuzz_raw(copy, n); break;
    default: fuzz_name(copy, n); break;
    }
    free(copy);
    return 0;
}
