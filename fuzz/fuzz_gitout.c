/* fuzz_gitout.c — the parsers of git's output (a `cat-file --batch` header,
 * `diff --raw -z` records), the escaping of file names for reports, and the
 * baseline file (`--baseline`, which may come with the checkout).  git
 * prints what a repository someone else controls contains, so these see
 * hostile bytes.
 *
 * Input: byte 0 picks the parser (0: header, 1: raw records, 2: file
 * name, 3: a baseline file, 4: a file name through report and baseline);
 * the rest is parsed from an exactly-sized heap copy so ASan sees any read
 * past its end.
 * Invariants:
 *   - header: 0 only for "<oid> blob <digits>\n" with the size those digits
 *     say; 1 only for exactly "<oid> missing\n";
 *   - raw: each record advances, stays inside the buffer, yields a 6-byte
 *     mode, a 40/64-digit lower-case hex id and a non-empty NUL-terminated
 *     path inside the buffer;
 *   - name: the escaped name is valid UTF-8 with no control byte, and is
 *     the name itself whenever that already was;
 *   - baseline: a file that is not a JSON array is refused and changes
 *     nothing; otherwise the findings kept are the ones given, in order;
 *   - round trip: a finding in a file of any name, reported as JSON and
 *     used as the baseline, is silenced (the report and the baseline agree
 *     on the escaped name). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_git.h"
#include "cli/cli_scan.h"
#include "fuzz_common.h"
#include "keyward/keyward.h"

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

static const char FP[] = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

/* A finding as the scanner would add it (file name escaped, owned). */
static void add_finding(cli_findings *list, const char *file, const char *rule)
{
    kw_scan_finding f;
    memset(&f, 0, sizeof f);
    f.rule_id = rule;
    f.line = f.column = 1;
    snprintf(f.mask, sizeof f.mask, "********");
    snprintf(f.fingerprint, sizeof f.fingerprint, "%s", FP);
    FZ_CHECK(cli_findings_add(list, &f, NULL, file, NULL, 0) == KW_OK, "findings_add");
}

static char *temp_file(const char *data, size_t len)
{
    char *path = strdup("/tmp/keyward-fuzz-baseline-XXXXXX");
    FZ_CHECK(path != NULL, "out of memory");
    int fd = mkstemp(path);
    FZ_CHECK(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w");
    FZ_CHECK(f && fwrite(data, 1, len, f) == len && fclose(f) == 0, "write baseline");
    return path;
}

static void fuzz_baseline(const char *data, size_t len)
{
    static const char *const FILES[] = {"a.txt", "dir/b.env", "a.txt"};
    static const char *const RULES[] = {"phx-personal-key", "phx-personal-key", "aws-access-key"};
    cli_findings list = {0};
    for (size_t i = 0; i < 3; i++) add_finding(&list, FILES[i], RULES[i]);
    cli_finding before[3];
    memcpy(before, list.items, sizeof before);
    char *path = temp_file(data, len);
    int rc = cli_baseline_filter(&list, path); /* a refusal prints one line on stderr */
    unlink(path);
    free(path);
    FZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
    if (rc) FZ_CHECK(list.count == 3 && !memcmp(list.items, before, sizeof before), "refusal changed");
    size_t k = 0;
    for (size_t i = 0; i < 3 && k < list.count; i++)
        if (list.items[k].rule_id == before[i].rule_id && list.items[k].line == before[i].line &&
            !strcmp(list.items[k].fingerprint, before[i].fingerprint))
            k++;
    FZ_CHECK(k == list.count, "kept findings are not the ones given, in order");
    cli_findings_free(&list);
}

static void fuzz_round_trip(const char *data, size_t len)
{
    char *name = strndup(data, len);
    FZ_CHECK(name != NULL, "out of memory");
    if (!name[0]) {
        free(name);
        return;
    }
    cli_findings list = {0};
    add_finding(&list, name, "phx-personal-key");
    free(name);
    char *report = NULL;
    size_t report_len = 0;
    FILE *out = open_memstream(&report, &report_len);
    FZ_CHECK(out && cli_report_json(out, &list) == 0 && fclose(out) == 0, "report");
    char *path = temp_file(report, report_len);
    free(report);
    FZ_CHECK(cli_baseline_filter(&list, path) == 0, "the report is not a valid baseline");
    unlink(path);
    free(path);
    FZ_CHECK(list.count == 0, "a reported finding is not silenced by its own report");
    cli_findings_free(&list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t n = size - 1;
    char *copy = malloc(n ? n : 1);
    if (!copy) return 0;
    memcpy(copy, data + 1, n);
    switch (data[0] % 5) {
    case 0: fuzz_header(copy, n); break;
    case 1: fuzz_raw(copy, n); break;
    case 2: fuzz_name(copy, n); break;
    case 3: fuzz_baseline(copy, n); break;
    default: fuzz_round_trip(copy, n); break;
    }
    free(copy);
    return 0;
}
