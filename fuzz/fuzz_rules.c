/* fuzz_rules.c — the user rules file parser (`keyward scan --rules FILE`,
 * `keyward redact --rules FILE`) and the engine built from its rules.
 *
 * A rules file may come from a repository the operator does not control
 * (a CI job pointing --rules at the checkout), so its parser is attack
 * surface like any other input.
 * Input: the rules file text, then optionally a NUL byte and a buffer to
 * scan with an engine of the file's rules.  That engine leaves the
 * built-in rules out (a rule set made empty through scan_internal.h):
 * compiling them costs tens of milliseconds an input, and they are
 * fuzz_scan's subject.
 * Invariants:
 *   - a refused file gives KW_ERR_INVALID and a non-empty "name:line: why"
 *     message, and adds no rule;
 *   - an accepted file adds rules with non-empty ids; the same file loaded
 *     again into a fresh set gives the same rule count (no hidden state);
 *   - when the engine compiles, every finding on the buffer lies inside it
 *     and arrives in offset order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "keyward/keyward.h"
#include "keyward/scan.h"
#include "scan/scan_internal.h"

/* Bounded: the parser's cost, not the regex compiler's, is under test. */
#define MAX_RULES_TEXT (16 * 1024)

struct order {
    size_t len, last;
};

static int on_finding(const kw_scan_finding *f, const char *data, void *ctx)
{
    struct order *o = ctx;
    (void)data;
    FZ_CHECK(f->secret_offset <= o->len && f->secret_len <= o->len - f->secret_offset,
             "finding [%zu,+%zu) outside a %zu-byte buffer", f->secret_offset, f->secret_len,
             o->len);
    FZ_CHECK(f->secret_offset >= o->last, "findings out of order");
    o->last = f->secret_offset;
    return 0;
}

static size_t load(const char *text, kw_scan_rules **out, int *rc)
{
    char err[512] = "";
    FZ_CHECK(kw_scan_rules_new(out) == KW_OK, "rules_new");
    size_t builtin = kw_scan_rules_count(*out);
    *rc = kw_scan_rules_load_string(*out, text, "fuzz.toml", err, sizeof err);
    size_t count = kw_scan_rules_count(*out);
    if (*rc) {
        FZ_CHECK(*rc == KW_ERR_INVALID, "load: %s", kw_strerror(*rc));
        FZ_CHECK(err[0] != '\0', "a refusal says why");
        FZ_CHECK(count == builtin, "a refused file added %zu rules", count - builtin);
    }
    for (size_t i = 0; i < count; i++) {
        const char *id = kw_scan_rule_id(*out, i);
        FZ_CHECK(id && id[0], "rule %zu has no id", i);
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nul = memchr(data, '\0', size);
    size_t text_len = nul ? (size_t)(nul - (const char *)data) : size;
    if (text_len > MAX_RULES_TEXT) return 0;
    char *text = malloc(text_len + 1);
    FZ_CHECK(text != NULL, "out of memory");
    memcpy(text, data, text_len);
    text[text_len] = '\0';

    kw_scan_rules *rules, *again;
    int rc, rc_again;
    size_t count = load(text, &rules, &rc);
    size_t count_again = load(text, &again, &rc_again);
    FZ_CHECK(rc == rc_again && count == count_again, "loading twice differs");
    kw_scan_rules_free(again);
    kw_scan_rules_free(rules);
    if (rc || !nul) {
        free(text);
        return 0;
    }
    /* the same file into a rule set without the built-ins */
    rules = calloc(1, sizeof *rules);
    FZ_CHECK(rules != NULL, "out of memory");
    char err[512] = "";
    rc = kw_scan_rules_load_string(rules, text, "fuzz.toml", err, sizeof err);
    free(text);
    FZ_CHECK(rc == KW_OK, "the file loaded into the full set but not alone: %s", err);

    kw_scan_engine *engine = NULL;
    if (kw_scan_rules_count(rules) && kw_scan_engine_new(rules, &engine, err, sizeof err) == KW_OK) {
        kw_scan_scratch *scratch;
        FZ_CHECK(kw_scan_scratch_new(engine, &scratch) == KW_OK, "scratch");
        size_t len = size - text_len - 1;
        char *buf = malloc(len ? len : 1);
        FZ_CHECK(buf != NULL, "out of memory");
        if (len) memcpy(buf, nul + 1, len);
        struct order o = {len, 0};
        kw_scan_buffer(engine, scratch, buf, len, KW_SCAN_LOCATE | KW_SCAN_HONOR_ALLOW, on_finding,
                       &o);
        free(buf);
        kw_scan_scratch_free(scratch);
        kw_scan_engine_free(engine);
    } else if (kw_scan_rules_count(rules)) {
        FZ_CHECK(err[0] != '\0', "an engine refusal says why");
    }
    kw_scan_rules_free(rules);
    return 0;
}
