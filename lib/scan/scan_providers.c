/* scan_providers.c — the provider rules: the token formats of the services
 * people leak keys of (cloud, source hosting and registries, messaging,
 * payments, AI, observability, auth and infrastructure, connection
 * strings), and the checks their formats allow beyond a regex.
 *
 * Each rule is a short literal-led anchor for the regex engine plus an
 * extract function that finds the whole token and rejects near misses:
 * wrong length (every length here is exact where the format fixes it),
 * wrong alphabet (the token may not run on into chars its alphabet lacks),
 * a bad checksum (GitHub and npm tokens carry a CRC32), a body that does not
 * decode as the format says (a Discord bot token starts with a base64 user
 * id), placeholder words, and low entropy.  Formats without a distinctive
 * prefix (Datadog, Twilio auth tokens, Cohere, ...) are found only as the
 * value of an assignment to a name that says which service it is.
 * docs/scanner.md lists every rule with its format. */
#include "scan/scan_internal.h"

#include <string.h>

#include "keyward/keyward.h"

#define ASSIGN KW_SCAN_ASSIGN
#define H KW_SCAN_HIGH
#define M KW_SCAN_MEDIUM

#define EXTRACT(name)                                                                            \
    static int name(const kw_scan_rule *rule, const char *data, size_t len, size_t from,         \
                    size_t to, unsigned flags, kw_scan_span *span)

/* A token of exactly `prefix + 36` chars whose last 6 are the base62 CRC32
 * of the 30 before them (GitHub classic tokens, npm).  The placeholder and
 * entropy checks read the 30 random chars only: the checksum is a number,
 * in which "1234" or "aaaaa" is as likely as anywhere. */
EXTRACT(extract_crc_token)
{
    (void)from;
    (void)flags;
    size_t start, n;
    if (!kw_scan_token_bounds(rule, data, len, to, &start, &n) || n < 36) return 0;
    const char *body = data + start + n - 36;
    if (!kw_scan_crc32_token_ok(body, 36) || kw_scan_is_placeholder(body, 30) ||
        kw_scan_entropy(body, 30) < rule->min_entropy)
        return 0;
    return kw_scan_accept(rule, span, start, start, n);
}

/* Anthropic keys end in "AA" after their 93-char body. */
EXTRACT(extract_anthropic)
{
    if (!kw_scan_extract_token(rule, data, len, from, to, flags, span)) return 0;
    return memcmp(data + span->start + span->len - 2, "AA", 2) == 0;
}

/* OpenAI keys (sk-..., sk-proj-..., sk-svcacct-..., sk-admin-...) all
 * carry "T3BlbkFJ" (base64 of "OpenAI") inside: the anchor, from which the
 * token is walked both ways. */
EXTRACT(extract_openai)
{
    (void)from;
    (void)flags;
    size_t mark = to - rule->anchor_len, start = mark;
    while (start > 0 && mark - start < 200 &&
           kw_scan_in_charset(KW_CHARSET_URLSAFE, (unsigned char)data[start - 1]))
        start--;
    if (mark - start < 10 || memcmp(data + start, "sk-", 3) != 0) return 0;
    if (!kw_scan_token_boundary(data, start, "-")) return 0;
    size_t end = kw_scan_extend(data, len, to, KW_CHARSET_URLSAFE, start + rule->max_len + 1);
    size_t n = end - start;
    if (n < rule->min_len || n > rule->max_len || end - to < 10) return 0;
    if (kw_scan_is_placeholder(data + start, n)) return 0;
    return kw_scan_accept(rule, span, start, start, n);
}

/* <8-10 digit bot id>:AA<33 base64url chars> */
EXTRACT(extract_telegram)
{
    (void)from;
    (void)flags;
    size_t colon = to - rule->anchor_len, start = colon;
    while (start > 0 && colon - start < 11 && data[start - 1] >= '0' && data[start - 1] <= '9')
        start--;
    if (colon - start < 8 || colon - start > 10) return 0;
    if (!kw_scan_token_boundary(data, start, "")) return 0;
    if (to < len && kw_scan_in_charset(KW_CHARSET_URLSAFE, (unsigned char)data[to])) return 0;
    if (kw_scan_is_placeholder(data + colon, to - colon)) return 0;
    return kw_scan_accept(rule, span, start, start, to - start);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return -1;
}

/* Whether s (base64 without padding) decodes to ASCII digits only. */
static int decodes_to_digits(const char *s, size_t n)
{
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0) return 0;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            unsigned char byte = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
            if (byte < '0' || byte > '9') return 0;
        }
    }
    return 1;
}

/* Discord bot token: base64(user id).<6 chars>.<27-38 chars>.  The anchor
 * is the two last parts; the first must decode to a 17-20 digit id. */
EXTRACT(extract_discord_bot)
{
    (void)from;
    (void)flags;
    size_t dot = to - rule->anchor_len, start = dot;
    while (start > 0 && dot - start < 30 && kw_is_base62((unsigned char)data[start - 1])) start--;
    size_t first = dot - start;
    if (first < 23 || first > 27 || !strchr("MNO", data[start])) return 0;
    if (!kw_scan_token_boundary(data, start, "-.")) return 0;
    if (!decodes_to_digits(data + start, first)) return 0;
    size_t end = kw_scan_extend(data, len, to, KW_CHARSET_URLSAFE, to + 12);
    if (end - to > 11) return 0;
    if (kw_scan_entropy(data + dot, end - dot) < rule->min_entropy) return 0;
    return kw_scan_accept(rule, span, start, start, end - start);
}

/* discord(app).com/api/webhooks/<id>/<token>: the anchor is the path and
 * id; the host must be Discord's. */
EXTRACT(extract_discord_webhook)
{
    (void)from;
    (void)flags;
    size_t anchor = to - rule->anchor_len, start = anchor + rule->skip;
    size_t back = anchor > 16 ? anchor - 16 : 0;
    if (!kw_scan_contains_nocase(data + back, anchor - back, "discord")) return 0;
    size_t p = start;
    while (p < len && p - start < 21 && data[p] >= '0' && data[p] <= '9') p++;
    if (p - start < 17 || p >= len || data[p] != '/') return 0;
    size_t end = kw_scan_extend(data, len, p + 1, KW_CHARSET_URLSAFE, p + 70);
    if (end - (p + 1) < 60 || end - (p + 1) > 68) return 0;
    if (kw_scan_is_placeholder(data + p + 1, end - p - 1)) return 0;
    return kw_scan_accept(rule, span, start, start, end - start);
}

/* Sentry DSN https://<32 hex key>@<host>/<project>: the key is reported
 * when the host is Sentry's (sentry.io or a host naming sentry). */
EXTRACT(extract_sentry_dsn)
{
    (void)from;
    (void)flags;
    size_t start = to - rule->anchor_len + rule->skip, host = to;
    size_t host_end = host;
    while (host_end < len && host_end - host < 128 &&
           (kw_is_base62((unsigned char)data[host_end]) || strchr(".-:", data[host_end])))
        host_end++;
    if (!kw_scan_contains_nocase(data + host, host_end - host, "sentry")) return 0;
    if (kw_scan_is_placeholder(data + start, 32) ||
        kw_scan_entropy(data + start, 32) < rule->min_entropy)
        return 0;
    return kw_scan_accept(rule, span, start, start, 32);
}

/* The passwords of connection strings that carry them, and nothing else:
 * the word is what people copy in, and what clearly is none. */
static const char *const URL_PLACEHOLDER_PASSWORDS[] = {
    "password", "pass", "passwd", "pwd", "secret", "changeme", "postgres", "root", "admin",
    "test", "guest", "user", "mysql", "redis", "rabbitmq", "mongo", "example", "xxx", "***",
};

/* scheme://[user]:password@host — the anchor (of any length) ends at "://". */
EXTRACT(extract_url_password)
{
    (void)from;
    (void)flags;
    size_t p = to;
    while (p < len && p - to < 128 && !strchr(":@/?#\"'` \t\r\n<>{}", data[p])) p++;
    if (p >= len || data[p] != ':') return 0;
    size_t pw = ++p;
    while (p < len && p - pw < 129 && !strchr("@/?#\"'` \t\r\n<>", data[p])) p++;
    size_t n = p - pw;
    if (p >= len || data[p] != '@' || n < 3 || n > 128) return 0;
    if (p + 1 >= len || !(kw_is_base62((unsigned char)data[p + 1]) || data[p + 1] == '[')) return 0;
    const char *v = data + pw;
    if (strchr("$%{*<[", v[0])) return 0; /* ${VAR}, %(var)s, {{ var }}, ****, <password> */
    for (size_t i = 0; i < sizeof URL_PLACEHOLDER_PASSWORDS / sizeof URL_PLACEHOLDER_PASSWORDS[0];
         i++)
        if (n == strlen(URL_PLACEHOLDER_PASSWORDS[i]) &&
            kw_scan_contains_nocase(v, n, URL_PLACEHOLDER_PASSWORDS[i]))
            return 0;
    if (kw_scan_is_placeholder(v, n) || kw_scan_contains_nocase(v, n, "password")) return 0;
    return kw_scan_accept(rule, span, pw, pw, n);
}

#define TOK(id, desc, pat, alen, cs, conf, min, max)                                             \
    {id, desc, pat, alen, kw_scan_extract_token, NULL, cs, conf, 9, 3.0, min, max, 0}
#define TOKX(id, desc, pat, alen, fn, cs, conf, min, max)                                        \
    {id, desc, pat, alen, fn, NULL, cs, conf, 9, 3.0, min, max, 0}
#define SKIP(id, desc, pat, alen, skip, fn, cs, conf, min, max)                                  \
    {id, desc, pat, alen, fn, NULL, cs, conf, 9, 3.0, min, max, skip}
/* a value of `vlen` chars of charset `cs` assigned to a name matching
 * `names`; the anchor holds only the value's first 12 chars (`head`): long
 * bounded repeats under a caseless name cost Hyperscan compile time (paid
 * on every run of the program) and the extract checks the rest */
#define ASG(id, desc, names, head, vlen, cs, conf)                                                \
    {id, desc, "(?i)" names ASSIGN head, 12, kw_scan_extract_assignment, NULL, cs, conf, 5, 3.0,  \
     vlen, vlen, 0}
#define URL(id, desc, scheme, alen)                                                               \
    {id, desc, scheme "://", alen + 3, extract_url_password, NULL, KW_CHARSET_ANY, H, 7, 0, 0, 0, 0}

#define B62 KW_CHARSET_BASE62
#define URLS KW_CHARSET_URLSAFE
#define HEX KW_CHARSET_HEX
#define DOTS KW_CHARSET_B64URL_PAD

const kw_scan_builtin KW_SCAN_PROVIDERS[] = {
    /* cloud */
    {"aws-session-token", "AWS session token assignment",
     "(?i)aws[a-z0-9_.-]{0,20}session[_-]?token" ASSIGN "[0-9A-Za-z/+=]{100}", 100,
     kw_scan_extract_assignment, NULL, KW_CHARSET_BASE64, H, 5, 4.0, 100, 2048, 0},
    TOK("google-api-key", "Google API key (AIza + 35)", "AIza[0-9A-Za-z_-]{16}", 20, URLS, H, 39, 39),
    {"gcp-service-account-key", "Google service-account JSON private key",
     "\"private_key\"[ \t]{0,3}:[ \t]{0,3}\"-----BEGIN PRIVATE KEY-----", 0, kw_scan_extract_pem,
     NULL, B62, H, 12, 3.0, 0, 0, 0},
    TOK("gcp-oauth-client-secret", "Google OAuth client secret (GOCSPX-)",
        "GOCSPX-[0-9A-Za-z_-]{16}", 23, URLS, H, 35, 35),
    TOK("google-oauth-access-token", "Google OAuth access token (ya29.)",
        "ya29\\.[0-9A-Za-z_-]{16}", 21, DOTS, M, 40, 2048),
    SKIP("azure-storage-account-key", "Azure storage account key (AccountKey=, 88 base64)",
         "AccountKey=[0-9A-Za-z+/]{86}==", 99, 11, kw_scan_extract_token, KW_CHARSET_BASE64, H, 88,
         88),
    TOK("azure-client-secret", "Azure AD client secret (xxxNQ~ + 34, 40 chars)",
        "[0-9A-Za-z_~.-]{3}[0-9]Q~[0-9A-Za-z_~.-]{16}", 22, KW_CHARSET_AZURE, H, 40, 40),
    TOK("digitalocean-token", "DigitalOcean token (dop_v1_, doo_v1_, dor_v1_ + 64 hex)",
        "do[opr]_v1_[0-9a-f]{16}", 23, HEX, H, 71, 71),
    TOK("heroku-api-key", "Heroku API key (HRKU-AA + 58)", "HRKU-AA[0-9A-Za-z_-]{16}", 23, URLS,
        H, 65, 65),
    ASG("heroku-api-key-legacy", "Heroku legacy API key (UUID) assignment",
        "heroku[a-z0-9_.-]{0,20}(?:key|token)",
        "[0-9a-f]{8}-[0-9a-f]{3}", 36, KW_CHARSET_DASHED, M),
    ASG("cloudflare-api-token", "Cloudflare API token (40 base64url) assignment",
        "cloudflare[a-z0-9_.-]{0,20}(?:token|key)", "[0-9A-Za-z_-]{12}", 40, URLS, M),
    TOK("cloudflare-origin-ca-key", "Cloudflare Origin CA key (v1.0-)",
        "v1\\.0-[0-9a-f]{24}-[0-9a-f]{16}", 46, DOTS, H, 176, 176),
    TOK("alibaba-access-key-id", "Alibaba Cloud AccessKey id (LTAI)", "LTAI[0-9A-Za-z]{16}", 20,
        B62, H, 20, 24),
    ASG("alibaba-access-key-secret", "Alibaba Cloud AccessKey secret (30) assignment",
        "(?:alibaba|aliyun)[a-z0-9_.-]{0,20}secret", "[0-9A-Za-z]{12}", 30, B62, H),
    /* source hosting, CI, registries */
    TOKX("github-pat", "GitHub personal access token (ghp_, CRC32)", "ghp_[0-9A-Za-z]{16}", 20,
         extract_crc_token, B62, H, 40, 40),
    TOKX("github-oauth-token", "GitHub OAuth token (gho_, CRC32)", "gho_[0-9A-Za-z]{16}", 20,
         extract_crc_token, B62, H, 40, 40),
    TOKX("github-user-token", "GitHub user-to-server token (ghu_, CRC32)", "ghu_[0-9A-Za-z]{16}", 20, extract_crc_token, B62, H, 40, 40),
    TOKX("github-server-token", "GitHub server-to-server token (ghs_, CRC32)",
         "ghs_[0-9A-Za-z]{16}", 20, extract_crc_token, B62, H, 40, 40),
    TOKX("github-refresh-token", "GitHub refresh token (ghr_, CRC32)", "ghr_[0-9A-Za-z]{16}", 20,
         extract_crc_token, B62, H, 40, 40),
    TOK("gitlab-pat", "GitLab personal access token (glpat-)", "glpat-[0-9A-Za-z_-]{16}", 22, URLS,
        H, 26, 64),
    TOK("gitlab-deploy-token", "GitLab deploy token (gldt-)", "gldt-[0-9A-Za-z_-]{16}", 21, URLS, H,
        25, 64),
    TOK("gitlab-runner-token", "GitLab runner authentication token (glrt-)",
        "glrt-[0-9A-Za-z_-]{16}", 21, URLS, H, 25, 64),
    TOK("gitlab-runner-registration-token", "GitLab runner registration token (GR1348941)",
        "GR1348941[0-9A-Za-z_-]{16}", 25, URLS, H, 29, 64),
    TOK("gitlab-ci-job-token", "GitLab CI/CD job token (glcbt-)", "glcbt-[0-9A-Za-z_-]{16}", 22,
        URLS, H, 26, 80),
    TOK("gitlab-pipeline-trigger-token", "GitLab pipeline trigger token (glptt- + 40 hex)",
        "glptt-[0-9a-f]{16}", 22, HEX, H, 46, 46),
    TOK("gitlab-feed-token", "GitLab feed token (glft-)", "glft-[0-9A-Za-z_-]{16}", 21, URLS, H, 25,
        64),
    TOK("gitlab-oauth-app-secret", "GitLab OAuth application secret (gloas- + 64)",
        "gloas-[0-9A-Za-z_-]{16}", 22, URLS, H, 70, 70),
    TOK("bitbucket-app-password", "Bitbucket app password (ATBB)", "ATBB[0-9A-Za-z]{16}", 20, B62,
        H, 32, 40),
    TOK("atlassian-api-token", "Atlassian API token (ATATT3)", "ATATT3[0-9A-Za-z_=-]{16}", 22, DOTS,
        H, 100, 300),
    TOKX("npm-access-token", "npm access token (npm_, CRC32)", "npm_[0-9A-Za-z]{16}", 20,
         extract_crc_token, B62, H, 40, 40),
    TOK("pypi-upload-token", "PyPI upload token (pypi- + macaroon for pypi.org)",
        "pypi-AgEIcHlwaS5vcmc[0-9A-Za-z_-]{16}", 36, URLS, H, 85, 512),
    TOK("rubygems-api-key", "RubyGems API key (rubygems_ + 48 hex)", "rubygems_[0-9a-f]{16}", 25,
        HEX, H, 57, 57),
    TOK("nuget-api-key", "NuGet API key (oy2 + 43)", "oy2[0-9a-z]{16}", 19, B62, M, 46, 46),
    TOK("dockerhub-pat", "Docker Hub personal access token (dckr_pat_ + 27)",
        "dckr_pat_[0-9A-Za-z_-]{16}", 25, URLS, H, 36, 36),
    TOK("dockerhub-org-token", "Docker Hub organization access token (dckr_oat_ + 32)",
        "dckr_oat_[0-9A-Za-z_-]{16}", 25, URLS, H, 41, 41),
    TOK("circleci-token", "CircleCI personal or project token (CCIPAT_/CCIPRJ_)",
        "CCIP(?:AT|RJ)_[0-9A-Za-z]{22}_[0-9a-f]{16}", 46, KW_CHARSET_WORD, H, 70, 70),
    TOK("terraform-cloud-token", "Terraform Cloud / HCP token (.atlasv1.)",
        "[0-9A-Za-z]{14}\\.atlasv1\\.[0-9A-Za-z_=-]{16}", 39, DOTS, H, 83, 120),
    TOK("jfrog-api-key", "JFrog Artifactory API key (AKCp + 69)", "AKCp[0-9A-Za-z]{16}", 20, B62, H,
        73, 73),
    TOK("linear-api-key", "Linear API key (lin_api_ + 40)", "lin_api_[0-9A-Za-z]{16}", 24, B62, H,
        48, 48),
    TOK("doppler-token", "Doppler personal token (dp.pt. + 43)", "dp\\.pt\\.[0-9A-Za-z]{16}", 22,
        DOTS, H, 49, 49),
    TOK("pulumi-access-token", "Pulumi access token (pul- + 40 hex)", "pul-[0-9a-f]{16}", 20, HEX,
        H, 44, 44),
    TOK("postman-api-key", "Postman API key (PMAK-)", "PMAK-[0-9a-f]{24}-[0-9a-f]{16}", 46,
        KW_CHARSET_DASHED, H, 64, 64),
    /* messaging */
    SKIP("slack-webhook", "Slack incoming webhook URL (hooks.slack.com/services/)",
         "hooks\\.slack\\.com/services/[0-9A-Za-z/]{20}", 45, 25, kw_scan_extract_token,
         KW_CHARSET_PATH, H, 40, 80),
    TOK("slack-app-token", "Slack app-level token (xapp-)", "xapp-[0-9]-[0-9A-Za-z-]{10}", 17,
        KW_CHARSET_DASHED, H, 50, 255),
    TOK("slack-config-token", "Slack configuration token (xoxe.xoxp-)",
        "xoxe\\.xox[bp]-[0-9]-[0-9A-Za-z]{10}", 22, KW_CHARSET_DASHED, H, 60, 320),
    TOK("slack-refresh-token", "Slack configuration refresh token (xoxe-1-)",
        "xoxe-[0-9]-[0-9A-Za-z]{10}", 17, KW_CHARSET_DASHED, H, 60, 320),
    TOKX("discord-bot-token", "Discord bot token (base64 id . 6 . 27-38)",
         "\\.[0-9A-Za-z_-]{6}\\.[0-9A-Za-z_-]{27}", 35, extract_discord_bot, URLS, H, 0, 0),
    SKIP("discord-webhook", "Discord webhook URL (discord.com/api/webhooks/<id>/<token>)",
         "/api/webhooks/[0-9]{17}", 31, 14, extract_discord_webhook, URLS, H, 0, 0),
    TOKX("telegram-bot-token", "Telegram bot token (<id>:AA + 33)", ":AA[0-9A-Za-z_-]{33}", 36,
         extract_telegram, URLS, H, 0, 0),
    TOK("twilio-api-key", "Twilio API key SID secret pair (SK + 32 hex)", "SK[0-9a-f]{16}", 18, HEX,
        M, 34, 34),
    ASG("twilio-auth-token", "Twilio auth token (32 hex) assignment",
        "twilio[a-z0-9_.-]{0,20}(?:token|secret)", "[0-9a-f]{12}", 32, HEX, H),
    TOK("sendgrid-api-key", "SendGrid API key (SG. + 22 . 43)",
        "SG\\.[0-9A-Za-z_-]{22}\\.[0-9A-Za-z_-]{16}", 42, DOTS, H, 69, 69),
    TOK("mailgun-api-key", "Mailgun private API key (key- + 32 hex)", "key-[0-9a-f]{16}", 20, HEX,
        H, 36, 36),
    TOK("mailchimp-api-key", "Mailchimp API key (32 hex -us<dc>)", "[0-9a-f]{32}-us[0-9]", 36, B62,
        H, 36, 37),
    ASG("postmark-server-token", "Postmark server token (UUID) assignment",
        "postmark[a-z0-9_.-]{0,20}(?:token|key)",
        "[0-9a-f]{8}-[0-9a-f]{3}", 36, KW_CHARSET_DASHED, H),
    /* payments */
    TOK("stripe-webhook-secret", "Stripe webhook signing secret (whsec_)",
        "whsec_[0-9A-Za-z]{16}", 22, B62, H, 38, 80),
    TOK("square-access-token", "Square access token (EAAA + 60)", "EAAA[0-9A-Za-z_-]{16}", 20, URLS,
        H, 64, 64),
    TOK("square-legacy-access-token", "Square legacy access token (sq0atp- + 22)",
        "sq0atp-[0-9A-Za-z_-]{16}", 23, URLS, H, 29, 29),
    TOK("square-oauth-secret", "Square OAuth secret (sq0csp- + 43)", "sq0csp-[0-9A-Za-z_-]{16}", 23,
        URLS, H, 50, 50),
    TOK("braintree-access-token", "Braintree access token (access_token$production$)",
        "access_token\\$production\\$[0-9a-z]{16}\\$[0-9a-f]{16}", 57, B62, H, 73, 73),
    TOK("shopify-access-token", "Shopify access token (shpat_ + 32 hex)", "shpat_[0-9a-f]{16}", 22,
        HEX, H, 38, 38),
    TOK("shopify-custom-app-token", "Shopify custom app token (shpca_ + 32 hex)",
        "shpca_[0-9a-f]{16}", 22, HEX, H, 38, 38),
    TOK("shopify-private-app-token", "Shopify private app token (shppa_ + 32 hex)",
        "shppa_[0-9a-f]{16}", 22, HEX, H, 38, 38),
    TOK("shopify-shared-secret", "Shopify shared secret (shpss_ + 32 hex)", "shpss_[0-9a-f]{16}", 22, HEX, H, 38, 38),
    /* AI */
    TOKX("openai-api-key", "OpenAI API key (sk-, sk-proj-, ... with T3BlbkFJ)", "T3BlbkFJ", 8,
         extract_openai, URLS, H, 40, 250),
    TOKX("anthropic-api-key", "Anthropic API key (sk-ant-api03- + 93 + AA)",
         "sk-ant-api0[0-9]-[0-9A-Za-z_-]{16}", 29, extract_anthropic, URLS, H, 108, 108),
    TOKX("anthropic-admin-key", "Anthropic admin key (sk-ant-admin01- + 93 + AA)",
         "sk-ant-admin0[0-9]-[0-9A-Za-z_-]{16}", 31, extract_anthropic, URLS, H, 110, 110),
    TOK("huggingface-token", "Hugging Face access token (hf_ + 34 letters)", "hf_[A-Za-z]{16}", 19,
        KW_CHARSET_ALPHA, H, 37, 37),
    TOK("huggingface-org-token", "Hugging Face organization token (api_org_ + 34 letters)",
        "api_org_[A-Za-z]{16}", 24, KW_CHARSET_ALPHA, H, 42, 42),
    ASG("cohere-api-key", "Cohere API key (40) assignment", "(?:cohere|co)[_-]?api[_-]?key",
        "[0-9A-Za-z]{12}", 40, B62, H),
    TOK("replicate-api-token", "Replicate API token (r8_ + 37)", "r8_[0-9A-Za-z]{16}", 19, B62, H,
        40, 40),
    TOK("groq-api-key", "Groq API key (gsk_ + 52)", "gsk_[0-9A-Za-z]{16}", 20, B62, H, 56, 56),
    ASG("mistral-api-key", "Mistral API key (32) assignment", "mistral[a-z0-9_.-]{0,20}key",
        "[0-9A-Za-z]{12}", 32, B62, H),
    TOK("perplexity-api-key", "Perplexity API key (pplx- + 48)", "pplx-[0-9A-Za-z]{16}", 21, B62,
        H, 53, 53),
    TOK("xai-api-key", "xAI API key (xai- + 80)", "xai-[0-9A-Za-z]{16}", 20, B62, H, 84, 84),
    TOK("langsmith-api-key", "LangSmith API key (lsv2_pt_/lsv2_sk_)",
        "lsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}", 51, KW_CHARSET_WORD, H, 51, 51),
    /* observability */
    {"sentry-dsn", "Sentry DSN key (https://<32 hex>@...sentry...)", "//[0-9a-f]{32}@", 35,
     extract_sentry_dsn, NULL, HEX, H, 9, 3.0, 32, 32, 2},
    TOK("sentry-org-token", "Sentry organization auth token (sntrys_)",
        "sntrys_eyJ[0-9A-Za-z_]{16}", 26, KW_CHARSET_WORD, H, 60, 400),
    TOK("sentry-user-token", "Sentry user auth token (sntryu_ + 64 hex)", "sntryu_[0-9a-f]{16}", 23,
        HEX, H, 71, 71),
    ASG("datadog-api-key", "Datadog API key (32 hex) assignment",
        "(?:datadog|dd)[a-z0-9_.-]{0,20}api[_-]?key", "[0-9a-f]{12}", 32, HEX, H),
    ASG("datadog-app-key", "Datadog application key (40 hex) assignment",
        "(?:datadog|dd)[a-z0-9_.-]{0,20}app(?:lication)?[_-]?key", "[0-9a-f]{12}", 40, HEX, H),
    TOK("newrelic-user-api-key", "New Relic user API key (NRAK- + 27)", "NRAK-[0-9A-Z]{16}", 21,
        KW_CHARSET_UPPER_DIGIT, H, 32, 32),
    TOK("newrelic-insert-key", "New Relic insights insert key (NRII- + 32)",
        "NRII-[0-9A-Za-z_-]{16}", 21, URLS, H, 37, 37),
    TOK("newrelic-license-key", "New Relic ingest license key (40 hex ending NRAL)",
        "[0-9a-f]{36}NRAL", 40, B62, H, 40, 40),
    TOK("grafana-cloud-token", "Grafana Cloud token (glc_)", "glc_[0-9A-Za-z+/]{16}", 20,
        KW_CHARSET_BASE64, H, 36, 404),
    TOK("grafana-service-account-token", "Grafana service account token (glsa_)",
        "glsa_[0-9A-Za-z]{32}_[0-9a-f]{8}", 46, KW_CHARSET_WORD, H, 46, 46),
    TOK("grafana-api-key", "Grafana legacy API key (base64 {\"k\":...)", "eyJrIjoi[0-9A-Za-z+/]{40}",
        48, KW_CHARSET_BASE64, M, 60, 200),
    TOK("segment-public-api-token", "Segment public API token (sgp_ + 64)", "sgp_[0-9A-Za-z]{16}", 20, B62, H, 68, 68),
    ASG("segment-write-key", "Segment write key (32) assignment",
        "segment[a-z0-9_.-]{0,20}write[_-]?key", "[0-9A-Za-z]{12}", 32, B62, M),
    TOK("dynatrace-api-token", "Dynatrace API token (dt0c01.)",
        "dt0c01\\.[0-9A-Z]{24}\\.[0-9A-Z]{16}", 48, DOTS, H, 96, 96),
    /* auth and infrastructure */
    TOK("age-secret-key", "age secret key (AGE-SECRET-KEY-1 + 58 bech32)",
        "AGE-SECRET-KEY-1[02-9ac-hj-np-zAC-HJ-NP-Z]{16}", 32, KW_CHARSET_DASHED, H, 74, 74),
    TOK("vault-service-token", "HashiCorp Vault service token (hvs.)", "hvs\\.[0-9A-Za-z_-]{16}", 20, URLS, H, 28, 255),
    TOK("vault-batch-token", "HashiCorp Vault batch token (hvb.)", "hvb\\.[0-9A-Za-z_-]{16}", 20,
        URLS, H, 28, 255),
    TOK("vault-recovery-token", "HashiCorp Vault recovery token (hvr.)", "hvr\\.[0-9A-Za-z_-]{16}", 20, URLS, H, 28, 255),
    ASG("okta-api-token", "Okta API token (00 + 40) assignment", "okta[a-z0-9_.-]{0,20}(?:token|key)",
        "00[0-9A-Za-z_-]{10}", 42, URLS, H),
    TOK("1password-secret-key", "1Password account secret key (A3-)",
        "A3-[0-9A-Z]{6}-[0-9A-Z]{11}-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}", 39, KW_CHARSET_DASHED, H,
        39, 39),
    TOK("1password-service-account-token", "1Password service account token (ops_eyJ)",
        "ops_eyJ[0-9A-Za-z+/]{16}", 23, KW_CHARSET_BASE64, H, 100, 2048),
    /* connection strings with a password */
    URL("postgres-url-password", "PostgreSQL URL with a password", "(?i)postgres(?:ql)?", 0),
    URL("mysql-url-password", "MySQL/MariaDB URL with a password", "(?i)(?:mysql|mariadb)", 0),
    URL("mongodb-url-password", "MongoDB URL with a password", "(?i)mongodb(?:\\+srv)?", 0),
    URL("redis-url-password", "Redis URL with a password", "(?i)rediss?", 0),
    URL("amqp-url-password", "AMQP (RabbitMQ) URL with a password", "(?i)amqps?", 0),
    URL("smtp-url-password", "SMTP URL with a password", "(?i)smtps?", 0),
};

const size_t KW_SCAN_PROVIDERS_COUNT = sizeof KW_SCAN_PROVIDERS / sizeof KW_SCAN_PROVIDERS[0];
