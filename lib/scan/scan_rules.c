/* scan_rules.c — what a secret looks like: the built-in rules, the checks
 * that turn an anchor match into a finding, and the user rules file parser.
 *
 * Every built-in rule is an (anchor pattern, extract function) pair.  The
 * pattern is deliberately short and literal-led ("phx_" + 20 base62 chars)
 * so Hyperscan can run all rules at memory speed; the extract function,
 * called only on the rare anchor hit, finds the whole token and applies the
 * judgement a regex cannot: the keyward CRC32 checksum (a 54-char body with
 * a bad checksum is a near miss, not a finding), Shannon entropy, and the
 * placeholder words that mark documentation and test fixtures
 * (AKIAIOSFODNN7EXAMPLE, "your_api_key", "xxxx", "${TOKEN}"); those checks
 * and the token boundary rule live in scan_checks.c.
 *
 * The provider rules are in scan_providers.c, the user rules file parser
 * in scan_rules_file.c. */
#include "scan/scan_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

/* ---- shared checks (the rest are in scan_checks.c) ---------------- */

/* How many of {lower, upper, digit} occur: random tokens have >= 2. */
static int char_classes(const char *s, size_t len)
{
    int lower = 0, upper = 0, digit = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        lower |= islower(c) != 0;
        upper |= isupper(c) != 0;
        digit |= isdigit(c) != 0;
    }
    return lower + upper + digit;
}

/* ---- extract functions ---------------------------------------------- */

/* phx_/phs_/phc_: a 54-char body must carry a valid checksum (high
 * confidence); 20..53 chars is a legacy PostHog key (medium). */
static int extract_posthog(const kw_scan_rule *rule, const char *data, size_t len,
                           size_t from, size_t to, unsigned flags, kw_scan_span *span)
{
    (void)from;
    (void)flags;
    size_t start = to - rule->anchor_len;
    if (!kw_scan_token_boundary(data, start, "")) return 0;
    size_t end = kw_scan_extend(data, len, to, KW_CHARSET_BASE62, start + KW_KEY_LEN + 1);
    if (end < len && (data[end] == '_' || data[end] == '-')) return 0; /* an identifier */
    size_t body_len = end - start - KW_KEY_PREFIX_LEN;
    const char *body = data + start + KW_KEY_PREFIX_LEN;
    if (body_len == KW_KEY_BODY_LEN) {
        if (!kw_key_checksum_ok(data + start, body, body_len)) return 0;
        span->confidence = KW_SCAN_HIGH;
    } else if (body_len >= KW_KEY_LEGACY_MIN_BODY && body_len < KW_KEY_BODY_LEN) {
        if (kw_scan_is_placeholder(body, body_len) || char_classes(body, body_len) < 2 ||
            kw_scan_entropy(body, body_len) < rule->min_entropy)
            return 0;
        span->confidence = KW_SCAN_MEDIUM;
    } else {
        return 0;
    }
    span->report = span->start = start;
    span->len = end - start;
    return 1;
}

/* The placeholder check of a dashed token (Slack) over its non-numeric
 * parts only: the numeric parts are workspace and user ids, in which
 * "1234" or "00000" is as likely as anywhere, not a sign of an example. */
static int dashed_is_placeholder(const char *s, size_t n)
{
    char kept[KW_SCAN_MAX_SECRET];
    size_t w = 0, i = 0;
    if (n > sizeof kept) return kw_scan_is_placeholder(s, n);
    while (i < n) {
        size_t j = i, digits = 0;
        while (j < n && s[j] != '-') digits += isdigit((unsigned char)s[j++]) != 0;
        if (j == i || digits != j - i) { /* not an id: keep it and its dash */
            memcpy(kept + w, s + i, j - i + (j < n));
            w += j - i + (j < n);
        }
        i = j + 1;
    }
    return kw_scan_is_placeholder(kept, w);
}

/* Where a prefixed token over one charset starts and how long it is: a
 * token boundary before the anchor, the charset's run after it, and the
 * rule's length bounds.  The anchor may start with `skip` bytes that are
 * not part of the secret (AccountKey=, a webhook host). */
int kw_scan_token_bounds(const kw_scan_rule *rule, const char *data, size_t len, size_t to,
                         size_t *start, size_t *n)
{
    size_t anchor = to - rule->anchor_len;
    const char *glue = rule->charset == KW_CHARSET_DASHED ? "-" : "";
    if (!kw_scan_token_boundary(data, anchor, glue)) return 0;
    *start = anchor + rule->skip;
    size_t end = kw_scan_extend(data, len, to, rule->charset, *start + rule->max_len + 1);
    *n = end - *start;
    return *n >= rule->min_len && *n <= rule->max_len;
}

/* A prefixed token over one charset (AWS ids, GitHub, Slack, Stripe, and
 * most provider rules), unless it reads as a placeholder or has too little
 * entropy. */
int kw_scan_extract_token(const kw_scan_rule *rule, const char *data, size_t len,
                          size_t from, size_t to, unsigned flags, kw_scan_span *span)
{
    (void)from;
    (void)flags;
    size_t start, n;
    if (!kw_scan_token_bounds(rule, data, len, to, &start, &n)) return 0;
    if (rule->charset == KW_CHARSET_DASHED ? dashed_is_placeholder(data + start, n)
                                           : kw_scan_is_placeholder(data + start, n))
        return 0;
    if (rule->min_entropy > 0 && kw_scan_entropy(data + start, n) < rule->min_entropy) return 0;
    return kw_scan_accept(rule, span, start, start, n);
}

static int is_quote(unsigned char c) { return c == '"' || c == '\'' || c == '`'; }

/* A JSON string escape starts at p (\n, \", \u0026, ...): in an escaped
 * log line it ends an unquoted value ("token=<value>\nnext=..."), which
 * would otherwise run on into the next text and, a backslash being no
 * base64 or past the length limit, not be reported at all. */
static int json_escape_at(const char *data, size_t len, size_t p)
{
    return data[p] == '\\' && p + 1 < len && data[p + 1] && strchr("nrtbf\"\\/u", data[p + 1]);
}

/* True when every part of v between separators (-_./) is all lowercase,
 * all uppercase or all digits: "user-client-123", "DEFAULT_VALUE".  Random
 * secrets mix classes inside a part; a random 12+ char base62 part is all
 * one case with probability under 1e-4. */
static int looks_like_identifier(const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        int lower = 0, upper = 0, digit = 0, other = 0;
        for (; i < n && !strchr("-_./", v[i]); i++) {
            unsigned char c = (unsigned char)v[i];
            lower |= islower(c) != 0;
            upper |= isupper(c) != 0;
            digit |= isdigit(c) != 0;
            other |= !isalnum(c);
        }
        if (other || lower + upper + digit > 1) return 0;
        i++;
    }
    return 1;
}

/* The name an assignment value at `start` is assigned to: walks back over
 * the separator and quotes, then over the name's chars.  Sets *before to
 * the byte before the name (0 at the start of the data). */
static size_t assigned_name(const char *data, size_t start, size_t *name_len, char *before,
                            int *sep_eq)
{
    size_t p = start;
    *sep_eq = 0;
    while (p > 0 && start - p < 16 && strchr(" \t=:>\"'`\\", data[p - 1]) && data[p - 1])
        *sep_eq |= data[--p] == '=';
    size_t end = p;
    while (p > 0 && end - p < 64 &&
           (kw_is_base62((unsigned char)data[p - 1]) || strchr("_.-", data[p - 1])) && data[p - 1])
        p--;
    *name_len = end - p;
    *before = p > 0 ? data[p - 1] : 0;
    return p;
}

/* Names whose values are random by design and secret by no one: paging
 * cursors, idempotency and client request tokens; and names of what is
 * about a secret, not the secret: a key's id (AWSAccessKeyId=AKGP..., an
 * access key id is public; a real AKIA id is the AWS rule's) and the
 * constant prefix of a token format (SESSION_TOKEN_PREFIX = "FQoGZXIv..."). */
static int name_is_not_secret(const char *name, size_t n)
{
    static const char *const SUFFIXES[] = {"nexttoken", "pagetoken", "continuationtoken",
                                           "clienttoken", "synctoken", "idempotencytoken",
                                           "paginationtoken", "cursortoken", "tokentype",
                                           "keyid", "tokenid", "keyprefix", "tokenprefix",
                                           "secretprefix"};
    char squeezed[64];
    size_t w = 0;
    for (size_t i = 0; i < n && w < sizeof squeezed; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '_' || c == '-' || c == '.') continue;
        squeezed[w++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    for (size_t i = 0; i < sizeof SUFFIXES / sizeof SUFFIXES[0]; i++) {
        size_t sl = strlen(SUFFIXES[i]);
        if (w >= sl && memcmp(squeezed + w - sl, SUFFIXES[i], sl) == 0) return 1;
    }
    return 0;
}

/* Hex values shorter than 128 bits are ids, hash prefixes and colours far
 * more often than secrets. */
static int short_hex(const char *v, size_t n)
{
    if (n >= 32) return 0;
    for (size_t i = 0; i < n; i++)
        if (!kw_scan_in_charset(KW_CHARSET_HEX, (unsigned char)(v[i] | 0x20))) return 0;
    return 1;
}

/* The value after `name = `.  The anchor ends `anchor_len` chars into the
 * value (so names with short values never reach this function); the
 * value is quoted (up to the same quote) or bare (up to whitespace or
 * punctuation that ends a value in code and config files). */
int kw_scan_extract_assignment(const kw_scan_rule *rule, const char *data, size_t len,
                              size_t from, size_t to, unsigned flags, kw_scan_span *span)
{
    (void)from;
    (void)flags;
    size_t start = to - rule->anchor_len, p = start, limit = start + rule->max_len + 1;
    unsigned char quote = start > 0 && is_quote((unsigned char)data[start - 1])
                              ? (unsigned char)data[start - 1] : 0;
    /* an escaped opening quote (\") closes at the same escaped quote */
    int escaped = quote && start > 1 && data[start - 2] == '\\';
    while (p < len && p < limit) {
        unsigned char c = (unsigned char)data[p];
        if (c == '\n' || c == '\r' || c == ' ' || c == '\t') break;
        if (escaped ? c == '\\' && p + 1 < len && (unsigned char)data[p + 1] == quote
            : quote ? c == quote
                    : (is_quote(c) || strchr(",;()[]{}<>", c) != NULL ||
                       json_escape_at(data, len, p)))
            break;
        p++;
    }
    if (quote && (p + escaped >= len || (escaped && data[p] != '\\') ||
                  (unsigned char)data[p + escaped] != quote))
        return 0; /* unterminated */
    size_t n = p - start;
    const char *v = data + start;
    if (n < rule->min_len || n > rule->max_len) return 0;
    if (!quote && (memchr(v, '.', n) || strchr("$%&@*(", v[0]))) return 0; /* code, not data */
    if (kw_scan_contains_nocase(v, n, "://")) return 0;
    if (rule->charset != KW_CHARSET_ANY) { /* a provider's value: exactly its alphabet */
        for (size_t i = 0; i < n; i++)
            if (!kw_scan_in_charset(rule->charset, (unsigned char)v[i])) return 0;
    }
    /* cheapest first; all three are plain predicates */
    if (char_classes(v, n) < 2 || looks_like_identifier(v, n) || kw_scan_is_placeholder(v, n))
        return 0;
    if (rule->charset == KW_CHARSET_ANY) {
        /* a bare value followed by `(` is a call (`token=getKey()`), not
         * data; a bare variable (`f(api_key=someVariable)`) is caught as
         * language below, while a random bare value stays a finding, as
         * log lines (`(api_key=...)`) carry secrets unquoted */
        if (!quote && p < len && data[p] == '(') return 0;
        if (short_hex(v, n)) return 0;
        /* a name inside a colon path or type name is no assignment target:
         * arn:aws:secretsmanager:...:secret:<name>, "AWS::IAM::AccessKey": (but
         * `:api_key=<value>` in a log line is one) */
        size_t name_len;
        char before;
        int sep_eq;
        size_t name = assigned_name(data, start, &name_len, &before, &sep_eq);
        if ((before == ':' && !sep_eq) || name_is_not_secret(data + name, name_len)) return 0;
        if (kw_scan_has_provider_prefix(v, n) || kw_scan_value_is_language(v, n, !quote)) return 0;
    }
    if (kw_scan_entropy(v, n) < rule->min_entropy) return 0;
    return kw_scan_accept(rule, span, start, start, n);
}

/* eyJ<header>.eyJ<payload>.<signature> */
static int extract_jwt(const kw_scan_rule *rule, const char *data, size_t len,
                       size_t from, size_t to, unsigned flags, kw_scan_span *span)
{
    (void)from;
    (void)flags;
    size_t start = to - rule->anchor_len;
    size_t limit = start + KW_SCAN_MAX_SECRET;
    if (!kw_scan_token_boundary(data, start, "-.")) return 0;
    size_t p = start;
    for (int segment = 0; segment < 3; segment++) {
        size_t seg_start = p;
        while (p < len && p < limit &&
               (kw_scan_in_charset(KW_CHARSET_WORD, (unsigned char)data[p]) || data[p] == '-'))
            p++;
        size_t seg_len = p - seg_start;
        if (segment == 1 && (seg_len < 4 || memcmp(data + seg_start, "eyJ", 3) != 0)) return 0;
        if (segment == 2) {
            if (seg_len < 16) return 0;
            /* jwt.io's documentation token */
            if (seg_len == 43 && memcmp(data + seg_start, "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV", 34) == 0)
                return 0;
        } else {
            if (p >= len || data[p] != '.') return 0;
            p++;
        }
    }
    return kw_scan_accept(rule, span, start, start, p - start);
}

/* strlen("-----BEGIN" "PRIVATE KEY" "-----"): the shortest anchor. */
#define PEM_MIN_ANCHOR 26

/* -----BEGIN ... PRIVATE KEY-----: reported at the BEGIN line; the secret
 * (what is masked and fingerprinted) is the body up to the END line, or
 * everything after the header (bounded) when the END line is missing. */
int kw_scan_extract_pem(const kw_scan_rule *rule, const char *data, size_t len,
                       size_t from, size_t to, unsigned flags, kw_scan_span *span)
{
    (void)from;
    /* The BEGIN of this anchor is at least PEM_MIN_ANCHOR bytes before its
     * end: searching back from there skips a "-----BEGIN" that starts in
     * the closing dashes ("...KEY-----BEGIN"), which is not the header.
     * The report offset must be the real header, since the redactor holds
     * a block back from there and must find it again in the next round. */
    if (to < PEM_MIN_ANCHOR) return 0;
    size_t lowest = to > 80 ? to - 80 : 0, header = SIZE_MAX;
    for (size_t i = to - PEM_MIN_ANCHOR + 1; i-- > lowest;) {
        if (i + 10 <= len && memcmp(data + i, "-----BEGIN", 10) == 0) {
            header = i;
            break;
        }
    }
    if (header == SIZE_MAX) return 0;
    size_t body = to;
    while (body < len && (data[body] == '\r' || data[body] == '\n' || data[body] == ' ')) body++;
    size_t window = len - body < KW_SCAN_MAX_PEM ? len - body : KW_SCAN_MAX_PEM;
    const char *footer = memmem(data + body, window, "-----END", 8);
    size_t body_end = footer ? (size_t)(footer - data) : body + window;
    while (body_end > body && isspace((unsigned char)data[body_end - 1])) body_end--;
    size_t n = body_end - body;
    if (!footer && (flags & KW_SCAN_PARTIAL) && body + window == len) {
        /* the block may go on in the caller's next buffer: report it as
         * reaching the end, so the caller holds it back */
        return kw_scan_accept(rule, span, header, body, len - body);
    }
    if (n < 32 || kw_scan_entropy(data + body, n) < rule->min_entropy) return 0;
    if (kw_scan_contains_nocase(data + body, n < 64 ? n : 64, "...") ||
        kw_scan_contains_nocase(data + body, n < 64 ? n : 64, "<"))
        return 0;
    return kw_scan_accept(rule, span, header, body, n);
}

/* User rules: the whole match, with an optional entropy floor. */
int kw_scan_extract_user(const kw_scan_rule *rule, const char *data, size_t len,
                        size_t from, size_t to, unsigned flags, kw_scan_span *span)
{
    (void)len;
    (void)flags;
    size_t n = to - from;
    if (n == 0 || n > KW_SCAN_MAX_SECRET) return 0;
    if (rule->min_entropy > 0 && kw_scan_entropy(data + from, n) < rule->min_entropy) return 0;
    return kw_scan_accept(rule, span, from, from, n);
}

/* ---- the built-in table --------------------------------------------- */

#define ASSIGN KW_SCAN_ASSIGN

static const kw_scan_builtin BUILTINS[] = {
    {"posthog-personal-api-key", "PostHog/keyward personal API key (phx_)",
     "phx_[0-9A-Za-z]{20}", 24, extract_posthog, NULL, KW_CHARSET_BASE62, KW_SCAN_HIGH, 10, 3.0, 0, 0, 0},
    {"posthog-project-secret-key", "PostHog/keyward project secret API key (phs_)",
     "phs_[0-9A-Za-z]{20}", 24, extract_posthog, NULL, KW_CHARSET_BASE62, KW_SCAN_HIGH, 10, 3.0, 0, 0, 0},
    {"posthog-project-token", "PostHog/keyward project token (phc_)",
     "phc_[0-9A-Za-z]{20}", 24, extract_posthog, NULL, KW_CHARSET_BASE62, KW_SCAN_HIGH, 10, 3.0, 0, 0, 0},
    {"aws-access-key-id", "AWS access key id",
     "(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}", 20, kw_scan_extract_token, NULL, KW_CHARSET_UPPER_DIGIT,
     /* 2.5, not 3.0: the body is 16 base32 chars, and about 1 real id in
      * 5,000 has less than 3 bits a char; placeholders are runs, filtered
      * apart */
     KW_SCAN_HIGH, 9, 2.5, 20, 20, 0},
    {"aws-secret-access-key", "AWS secret access key assignment",
     "(?i)aws[a-z0-9_.-]{0,20}(?:secret|sk)" ASSIGN "[0-9A-Za-z/+]{40}", 40, kw_scan_extract_assignment,
     NULL, KW_CHARSET_BASE64, KW_SCAN_HIGH, 5, 3.5, 40, 40, 0},
    {"github-fine-grained-pat", "GitHub fine-grained personal access token",
     "github_pat_[0-9A-Za-z_]{22}", 33, kw_scan_extract_token, NULL, KW_CHARSET_WORD, KW_SCAN_HIGH, 9, 3.0,
     93, 93, 0},
    {"slack-token", "Slack token (xoxb-, xoxp-, ...)",
     "xox[baprs]-[0-9A-Za-z-]{10}", 15, kw_scan_extract_token, NULL, KW_CHARSET_DASHED, KW_SCAN_HIGH, 9, 3.0,
     15, 255, 0},
    {"stripe-live-key", "Stripe live secret or restricted key",
     "[sr]k_live_[0-9A-Za-z]{20}", 28, kw_scan_extract_token, NULL, KW_CHARSET_BASE62, KW_SCAN_HIGH, 9, 3.0,
     28, 255, 0},
    /* the highest priority: a block's secret is its whole body, so it must
     * win over a token starting where the body starts (a key on the body's
     * first line; or, in a redactor round cut inside that line, a prefix
     * that only looks like one), else the rest of the body goes unmasked */
    {"private-key", "Private key block",
     "-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----", 0, kw_scan_extract_pem, NULL, KW_CHARSET_BASE62,
     KW_SCAN_HIGH, 11, 3.0, 0, 0, 0},
    {"jwt", "JSON Web Token", "eyJ[0-9A-Za-z_-]{8}", 11, extract_jwt, NULL, KW_CHARSET_WORD,
     KW_SCAN_MEDIUM, 4, 0, 0, 0, 0},
    /* found by kw_scan_generic_find (scan_generic.c): as a regex this
     * one rule cost more than all the others together */
    {"generic-secret-assignment", "High-entropy value assigned to a secret-like name",
     KW_SCAN_GENERIC_ANCHOR, KW_SCAN_GENERIC_ANCHOR_VALUE, kw_scan_extract_assignment,
     kw_scan_generic_find, KW_CHARSET_ANY, KW_SCAN_MEDIUM, 1, 3.0, 12, 200, 0},
};

const char *kw_scan_confidence_name(kw_scan_confidence c)
{
    return c == KW_SCAN_HIGH ? "high" : "medium";
}

int kw_scan_rules_push(kw_scan_rules *rules, kw_scan_rule **out)
{
    if (rules->count == rules->cap) {
        size_t cap = rules->cap ? rules->cap * 2 : 16;
        kw_scan_rule *items = realloc(rules->items, cap * sizeof *items);
        if (!items) return KW_ERR_NOMEM;
        rules->items = items;
        rules->cap = cap;
    }
    *out = &rules->items[rules->count++];
    memset(*out, 0, sizeof **out);
    return KW_OK;
}

static int add_builtin(kw_scan_rules *rules, const kw_scan_builtin *b)
{
    kw_scan_rule *r;
    if (kw_scan_rules_push(rules, &r)) return KW_ERR_NOMEM;
    r->id = strdup(b->id);
    r->description = strdup(b->description);
    r->pattern = strdup(b->pattern);
    if (!r->id || !r->description || !r->pattern) return KW_ERR_NOMEM;
    r->anchor_len = b->anchor_len;
    r->skip = b->skip;
    r->extract = b->extract;
    r->find = b->find;
    r->charset = b->charset;
    r->confidence = b->confidence;
    r->priority = b->priority;
    r->min_entropy = b->min_entropy;
    r->min_len = b->min_len;
    r->max_len = b->max_len;
    return KW_OK;
}

int kw_scan_rules_new(kw_scan_rules **out)
{
    kw_scan_rules *rules = calloc(1, sizeof *rules);
    if (!rules) return KW_ERR_NOMEM;
    for (size_t i = 0; i < sizeof BUILTINS / sizeof BUILTINS[0]; i++)
        if (add_builtin(rules, &BUILTINS[i])) goto nomem;
    for (size_t i = 0; i < KW_SCAN_PROVIDERS_COUNT; i++)
        if (add_builtin(rules, &KW_SCAN_PROVIDERS[i])) goto nomem;
    *out = rules;
    return KW_OK;
nomem:
    kw_scan_rules_free(rules);
    return KW_ERR_NOMEM;
}

void kw_scan_rules_free(kw_scan_rules *rules)
{
    if (!rules) return;
    for (size_t i = 0; i < rules->count; i++) {
        free(rules->items[i].id);
        free(rules->items[i].description);
        free(rules->items[i].pattern);
    }
    free(rules->items);
    free(rules);
}

size_t kw_scan_rules_count(const kw_scan_rules *rules) { return rules->count; }
const char *kw_scan_rule_id(const kw_scan_rules *rules, size_t i) { return rules->items[i].id; }
kw_scan_confidence kw_scan_rule_confidence(const kw_scan_rules *rules, size_t i)
{
    return rules->items[i].confidence;
}

const char *kw_scan_rule_description(const kw_scan_rules *rules, size_t i)
{
    return rules->items[i].description;
}

