/* test_scan_rules.c — every built-in rule, both ways, from one table; and
 * the precision of the generic assignment rule on ordinary code.
 *
 * Each row is {rule id, a true sample, a near miss}: the true sample must
 * be reported by that rule, the near miss (wrong length, alphabet,
 * checksum, context, or a placeholder) by no rule but, at most, the generic
 * one (which judges any secret-like assignment, including ones that merely
 * resemble a provider's format).  Samples are templates filled at run time
 * (scan_samples.h).  A rule without a row fails the test, so a new rule
 * cannot ship untested. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/scan.h"
#include "scan_fixture.h"
#include "scan/scan_internal.h"
#include "scan_samples.h"

typedef struct found_ids {
    size_t count;
    const char *ids[16];
    char secrets[16][512];
} found_ids;

static int collect(const kw_scan_finding *f, const char *data, void *ctx)
{
    found_ids *c = ctx;
    if (c->count < 16) {
        size_t n = f->secret_len < 511 ? f->secret_len : 511;
        c->ids[c->count] = f->rule_id;
        memcpy(c->secrets[c->count], data + f->secret_offset, n);
        c->secrets[c->count][n] = '\0';
    }
    c->count++;
    return 0;
}


static found_ids scan(fixture *fx, const char *text)
{
    found_ids c = {0};
    assert_int_equal(kw_scan_buffer(fx->engine, fx->scratch, text, strlen(text), 0, collect, &c),
                     KW_OK);
    return c;
}

static const struct { const char *id, *hit, *miss; } CASES[] = {
    /* core */
    {"posthog-personal-api-key", "k = phx_{A:43}", "k = phx_{A:54}"},
    {"posthog-project-secret-key", "k = phs_{A:43}", "k = phs_{A:54}"},
    {"posthog-project-token", "k = phc_{A:43}", "k = phc_{A:54}"},
    {"aws-access-key-id", "id = AKIA{U:16}", "id = AKIA{U:12}"},
    {"aws-secret-access-key", "aws_secret_access_key = \"{B:40}\"", "aws_secret_access_key = \"{B:39}\""},
    {"github-fine-grained-pat", "t = github_pat_{A:22}_{A:59}", "t = github_pat_{A:22}_{A:40}"},
    {"slack-token", "x xoxb-{d:11}-{d:12}-{A:24}", "x xoxb-{d:4}"},
    {"stripe-live-key", "k = sk_live_{A:24}", "k = sk_live_{A:12}"},
    {"private-key", "-----BEGIN RSA PRIVATE KEY-----\n{B:64}\n{B:40}\n-----END RSA PRIVATE KEY-----\n",
     "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----\n"},
    {"jwt", "jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.{A:43}",
     "jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.{A:8}"},
    {"generic-secret-assignment", "client_secret: \"{A:24}\"", "client_secret: \"cacheRetryPolicyValue\""},
    /* cloud */
    {"aws-session-token", "aws_session_token = \"{B:300}\"", "aws_session_token = \"{B:60}\""},
    {"google-api-key", "key=AIza{A:35}", "key=AIza{A:34}"},
    {"gcp-service-account-key",
     "{\"type\": \"service_account\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{B:64}\\n{B:64}\\n-----END PRIVATE KEY-----\\n\"}",
     "{\"private_key\": \"-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----\\n\"}"},
    {"gcp-oauth-client-secret", "s = GOCSPX-{A:28}", "s = GOCSPX-{A:20}"},
    {"google-oauth-access-token", "Bearer ya29.{A:100}", "Bearer ya29.{A:10}"},
    {"azure-storage-account-key",
     "DefaultEndpointsProtocol=https;AccountName=x;AccountKey={B:86}==;EndpointSuffix=core.windows.net",
     "AccountKey={B:80}==;"},
    {"azure-client-secret", "secret = \"{A:3}8Q~{A:34}\"", "secret = \"{A:3}8Q~{A:30}\""},
    {"digitalocean-token", "t = dop_v1_{a:64}", "t = dop_v1_{a:63}"},
    {"heroku-api-key", "k = HRKU-AA{A:58}", "k = HRKU-AA{A:50}"},
    {"heroku-api-key-legacy", "HEROKU_API_KEY={a:8}-{a:4}-{a:4}-{a:4}-{a:12}",
     "HEROKU_API_KEY={a:8}-{a:4}-{a:4}-{a:4}-{a:11}"},
    {"cloudflare-api-token", "CLOUDFLARE_API_TOKEN={A:40}", "CLOUDFLARE_API_TOKEN={A:39}"},
    {"cloudflare-origin-ca-key", "k = v1.0-{a:24}-{a:146}", "k = v1.0-{a:24}-{a:140}"},
    {"alibaba-access-key-id", "id = LTAI{A:20}", "id = LTAI{A:10}"},
    {"alibaba-access-key-secret", "ALIBABA_CLOUD_ACCESS_KEY_SECRET={A:30}",
     "ALIBABA_CLOUD_ACCESS_KEY_SECRET={A:29}"},
    /* source hosting, CI, registries */
    {"github-pat", "t = ghp_{A:30}{C}", "t = ghp_{A:36}"},
    {"github-oauth-token", "t = gho_{A:30}{C}", "t = gho_{A:36}"},
    {"github-user-token", "t = ghu_{A:30}{C}", "t = ghu_{A:36}"},
    {"github-server-token", "t = ghs_{A:30}{C}", "t = ghs_{A:36}"},
    {"github-refresh-token", "t = ghr_{A:30}{C}", "t = ghr_{A:36}"},
    {"gitlab-pat", "t = glpat-{A:20}", "t = glpat-{A:12}"},
    {"gitlab-deploy-token", "t = gldt-{A:20}", "t = gldt-{A:10}"},
    {"gitlab-runner-token", "t = glrt-{A:20}", "t = glrt-{A:10}"},
    {"gitlab-runner-registration-token", "t = GR1348941{A:20}", "t = GR1348941{A:10}"},
    {"gitlab-ci-job-token", "t = glcbt-{A:5}_{A:20}", "t = glcbt-{A:8}"},
    {"gitlab-pipeline-trigger-token", "t = glptt-{a:40}", "t = glptt-{a:39}"},
    {"gitlab-feed-token", "t = glft-{A:20}", "t = glft-{A:10}"},
    {"gitlab-oauth-app-secret", "t = gloas-{A:64}", "t = gloas-{A:60}"},
    {"bitbucket-app-password", "p = ATBB{A:32}", "p = ATBB{A:20}"},
    {"atlassian-api-token", "t = ATATT3{A:180}={a:8}", "t = ATATT3{A:50}"},
    {"npm-access-token", "//registry.npmjs.org/:_authToken=npm_{A:30}{C}",
     "//registry.npmjs.org/:_authToken=npm_{A:36}"},
    {"pypi-upload-token", "password = pypi-AgEIcHlwaS5vcmc{A:150}", "password = pypi-AgEIcHlwaS5vcmc{A:55}"},
    {"rubygems-api-key", "k = rubygems_{a:48}", "k = rubygems_{a:47}"},
    {"nuget-api-key", "k = oy2{l:43}", "k = oy2{l:40}"},
    {"dockerhub-pat", "p = dckr_pat_{A:27}", "p = dckr_pat_{A:20}"},
    {"dockerhub-org-token", "p = dckr_oat_{A:32}", "p = dckr_oat_{A:28}"},
    {"circleci-token", "t = CCIPAT_{A:22}_{a:40}", "t = CCIPAT_{A:22}_{a:30}"},
    {"terraform-cloud-token", "t = {A:14}.atlasv1.{A:67}", "t = {A:14}.atlasv1.{A:40}"},
    {"jfrog-api-key", "k = AKCp{A:69}", "k = AKCp{A:60}"},
    {"linear-api-key", "k = lin_api_{A:40}", "k = lin_api_{A:39}"},
    {"doppler-token", "t = dp.pt.{A:43}", "t = dp.pt.{A:40}"},
    {"pulumi-access-token", "t = pul-{a:40}", "t = pul-{a:39}"},
    {"postman-api-key", "k = PMAK-{a:24}-{a:34}", "k = PMAK-{a:24}-{a:30}"},
    /* messaging */
    {"slack-webhook", "url = https://hooks.slack.com/services/T{U:10}/B{U:10}/{A:24}",
     "url = https://hooks.slack.com/services/T{U:4}/B{U:4}/{A:4}"},
    {"slack-app-token", "t = xapp-1-A{U:10}-{d:13}-{a:64}", "t = xapp-1-A{U:10}"},
    {"slack-config-token", "t = xoxe.xoxp-1-{A:140}", "t = xoxe.xoxp-1-{A:4}"},
    {"slack-refresh-token", "t = xoxe-1-{A:140}", "t = xoxe-1-{A:20}"},
    {"discord-bot-token", "bot.run(\"{D:18}.{A:6}.{A:27}\")", "bot.run(\"M{A:23}.{A:6}.{A:27}\")"},
    {"discord-webhook", "url = https://discord.com/api/webhooks/{d:18}/{A:68}",
     "url = https://example.org/api/webhooks/{d:18}/{A:68}"},
    {"telegram-bot-token", "bot = {d:10}:AA{A:33}", "bot = {d:10}:AA{A:30}"},
    {"twilio-api-key", "k = SK{a:32}", "k = SK{a:31}"},
    {"twilio-auth-token", "TWILIO_AUTH_TOKEN={a:32}", "TWILIO_AUTH_TOKEN={U:32}"},
    {"sendgrid-api-key", "k = SG.{A:22}.{A:43}", "k = SG.{A:22}.{A:40}"},
    {"mailgun-api-key", "k = key-{a:32}", "k = key-{a:31}"},
    {"mailchimp-api-key", "k = {a:32}-us14", "k = {a:31}-us14"},
    {"postmark-server-token", "POSTMARK_SERVER_TOKEN={a:8}-{a:4}-{a:4}-{a:4}-{a:12}",
     "POSTMARK_SERVER_TOKEN={a:8}-{a:4}-{a:4}-{a:12}"},
    /* payments */
    {"stripe-webhook-secret", "s = whsec_{A:32}", "s = whsec_{A:20}"},
    {"square-access-token", "t = EAAA{A:60}", "t = EAAA{A:50}"},
    {"square-legacy-access-token", "t = sq0atp-{A:22}", "t = sq0atp-{A:20}"},
    {"square-oauth-secret", "s = sq0csp-{A:43}", "s = sq0csp-{A:40}"},
    {"braintree-access-token", "t = access_token$production${l:16}${a:32}",
     "t = access_token$sandbox${l:16}${a:32}"},
    {"shopify-access-token", "t = shpat_{a:32}", "t = shpat_{a:31}"},
    {"shopify-custom-app-token", "t = shpca_{a:32}", "t = shpca_{a:31}"},
    {"shopify-private-app-token", "t = shppa_{a:32}", "t = shppa_{a:31}"},
    {"shopify-shared-secret", "s = shpss_{a:32}", "s = shpss_{a:31}"},
    /* AI */
    {"openai-api-key", "k = sk-proj-{A:74}T3BlbkFJ{A:74}", "k = sk-{A:20}T3BlbkFJ{A:3}"},
    {"anthropic-api-key", "k = sk-ant-api03-{A:93}AA", "k = sk-ant-api03-{A:93}AB"},
    {"anthropic-admin-key", "k = sk-ant-admin01-{A:93}AA", "k = sk-ant-admin01-{A:92}AA"},
    {"huggingface-token", "t = hf_{L:34}", "t = hf_{L:33}"},
    {"huggingface-org-token", "t = api_org_{L:34}", "t = api_org_{L:30}"},
    {"cohere-api-key", "COHERE_API_KEY={A:40}", "COHERE_API_KEY={A:39}"},
    {"replicate-api-token", "t = r8_{A:37}", "t = r8_{A:36}"},
    {"groq-api-key", "k = gsk_{A:52}", "k = gsk_{A:51}"},
    {"mistral-api-key", "MISTRAL_API_KEY={A:32}", "MISTRAL_API_KEY={A:31}"},
    {"perplexity-api-key", "k = pplx-{A:48}", "k = pplx-{A:47}"},
    {"xai-api-key", "k = xai-{A:80}", "k = xai-{A:79}"},
    {"langsmith-api-key", "k = lsv2_pt_{a:32}_{a:10}", "k = lsv2_pt_{a:32}_{a:9}"},
    /* observability */
    {"sentry-dsn", "dsn = https://{a:32}@o{d:6}.ingest.sentry.io/{d:7}",
     "dsn = https://{a:32}@example.com/1"},
    {"sentry-org-token", "t = sntrys_eyJ{A:80}_{A:43}", "t = sntrys_eyJ{A:30}"},
    {"sentry-user-token", "t = sntryu_{a:64}", "t = sntryu_{a:63}"},
    {"datadog-api-key", "DD_API_KEY={a:32}", "DD_API_KEY={a:31}"},
    {"datadog-app-key", "DATADOG_APP_KEY={a:40}", "DATADOG_APP_KEY={a:39}"},
    {"newrelic-user-api-key", "k = NRAK-{U:27}", "k = NRAK-{U:26}"},
    {"newrelic-insert-key", "k = NRII-{A:32}", "k = NRII-{A:31}"},
    {"newrelic-license-key", "license = {a:36}NRAL", "license = {a:35}NRAL"},
    {"grafana-cloud-token", "t = glc_{B:80}", "t = glc_{A:20}"},
    {"grafana-service-account-token", "t = glsa_{A:32}_{a:8}", "t = glsa_{A:32}_{a:7}"},
    {"grafana-api-key", "t = eyJrIjoi{B:80}", "t = eyJrIjoi{B:45}"},
    {"segment-public-api-token", "t = sgp_{A:64}", "t = sgp_{A:63}"},
    {"segment-write-key", "SEGMENT_WRITE_KEY={A:32}", "SEGMENT_WRITE_KEY={A:31}"},
    {"dynatrace-api-token", "t = dt0c01.{U:24}.{U:64}", "t = dt0c01.{U:24}.{U:60}"},
    /* auth and infrastructure */
    {"age-secret-key", "AGE-SECRET-KEY-1{Z:58}", "AGE-SECRET-KEY-1{Z:57}"},
    {"vault-service-token", "VAULT_TOKEN=hvs.{A:90}", "VAULT_TOKEN=hvs.{A:20}"},
    {"vault-batch-token", "VAULT_TOKEN=hvb.{A:90}", "VAULT_TOKEN=hvb.{A:20}"},
    {"vault-recovery-token", "VAULT_TOKEN=hvr.{A:90}", "VAULT_TOKEN=hvr.{A:20}"},
    {"okta-api-token", "OKTA_API_TOKEN=00{A:40}", "OKTA_API_TOKEN=01{A:40}"},
    {"1password-secret-key", "k = A3-{U:6}-{U:11}-{U:5}-{U:5}-{U:5}", "k = A3-{U:6}-{U:11}-{U:5}-{U:5}-{U:4}"},
    {"1password-service-account-token", "OP_SERVICE_ACCOUNT_TOKEN=ops_eyJ{B:400}",
     "OP_SERVICE_ACCOUNT_TOKEN=ops_eyJ{B:50}"},
    /* connection strings */
    {"postgres-url-password", "DATABASE_URL=postgres://app:{A:20}@db.internal:5432/app",
     "DATABASE_URL=postgres://app:${PGPASSWORD}@db.internal:5432/app"},
    {"mysql-url-password", "url = mysql://root:{A:16}@10.0.0.5/shop", "url = mysql://root:password@localhost/shop"},
    {"mongodb-url-password", "uri = mongodb+srv://svc:{A:16}@cluster0.mongodb.net/db",
     "uri = mongodb+srv://svc@cluster0.mongodb.net/db"},
    {"redis-url-password", "url = redis://:{A:24}@cache:6379/0", "url = redis://cache:6379/0"},
    {"amqp-url-password", "url = amqps://worker:{A:18}@mq.internal/vhost",
     "url = amqps://worker:<password>@mq.internal/vhost"},
    {"smtp-url-password", "url = smtp://mailer:{A:18}@smtp.internal:587",
     "url = smtp://mailer:changeme@smtp.internal:587"},
};

static int has_rule(const found_ids *c, const char *id)
{
    for (size_t i = 0; i < c->count && i < 16; i++)
        if (strcmp(c->ids[i], id) == 0) return 1;
    return 0;
}

static void test_every_rule_both_ways(void **state)
{
    fixture *fx = *state;
    uint64_t seed = 20261204;
    char text[2048];
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        for (int round = 0; round < 8; round++) { /* fresh random content each round */
            samples_expand(CASES[i].hit, text, sizeof text, &seed);
            found_ids c = scan(fx, text);
            if (!has_rule(&c, CASES[i].id))
                fail_msg("%s: true sample not reported by its rule: %s", CASES[i].id, text);
            samples_expand(CASES[i].miss, text, sizeof text, &seed);
            c = scan(fx, text);
            for (size_t k = 0; k < c.count && k < 16; k++)
                if (strcmp(c.ids[k], "generic-secret-assignment") != 0 ||
                    strcmp(CASES[i].id, "generic-secret-assignment") == 0)
                    fail_msg("%s: near miss reported by %s: %s", CASES[i].id, c.ids[k], text);
        }
    }
}

/* Every built-in rule has a row, and there are at least 80 of them. */
static void test_every_rule_has_a_case(void **state)
{
    fixture *fx = *state;
    size_t n = kw_scan_rules_count(fx->rules);
    assert_true(n >= 80);
    for (size_t r = 0; r < n; r++) {
        const char *id = kw_scan_rule_id(fx->rules, r);
        size_t i = 0;
        while (i < sizeof CASES / sizeof CASES[0] && strcmp(CASES[i].id, id) != 0) i++;
        if (i == sizeof CASES / sizeof CASES[0]) fail_msg("rule %s has no test case", id);
    }
}

/* The secret reported is the credential, not the text around it. */
static void test_secret_span(void **state)
{
    fixture *fx = *state;
    found_ids c = scan(fx, "DATABASE_URL=postgres://app:Qz7Lm2Xc9Vb3Nk8Hj1Gf@db:5432/app\n");
    assert_int_equal(c.count, 1);
    assert_string_equal(c.secrets[0], "Qz7Lm2Xc9Vb3Nk8Hj1Gf");
    uint64_t seed = 7;
    char text[512];
    samples_expand("AccountName=x;AccountKey={B:86}==;EndpointSuffix=core", text, sizeof text, &seed);
    c = scan(fx, text);
    assert_int_equal(c.count, 1);
    assert_int_equal(strlen(c.secrets[0]), 88);
    assert_memory_equal(c.secrets[0], strstr(text, "AccountKey=") + 11, 88);
}

/* Values that are language or code, not secrets, under secret-like names:
 * none may be reported.  Each is a shape seen in ordinary code. */
static void test_generic_rejects_identifiers(void **state)
{
    fixture *fx = *state;
    static const char *const CODE[] = {
        "    client = Client(token=someVariable, retries=3)\n",
        "    session = login(api_key=userProvidedApiKey)\n",
        "  api_key: getKey()\n",
        "const auth = { apiKey: configuredApiKey };\n",
        "refresh_token_mode: \"cacheRetryPolicy\"\n",
        "  \"access_token_strategy\": \"rotateOnEveryRequest\",\n",
        "secret_name: database-connection-settings\n",
        "PASSWORD_RESET_TOKEN_TTL=one_hour_default_v2\n",
        "token_type = \"BearerTokenAuthentication\"\n",
        "api_key_header = 'X-Api-Key-Header-Name'\n",
        "    password_field = \"HTTPServerPasswordInput\"\n",
        "auth_key := keyForTenantLookup\n",
        "private_key_path: \"/etc/ssl/private/server.key\"\n",
        "  secret: ${{ secrets.DEPLOY_TOKEN }}\n",
        "token = \"AKIA1234SHORT\"\n",
        "github_token = \"ghp_Q9w8E7r6T5y4U3i2O1pA0sDfGhJkLzXcVbNm\"\n", /* bad CRC32 */
        "api_key = \"sk_live_short\"\n",
        "password = \"test-password-please-change\"\n",
        "token = \"TODO_fill_in_the_real_one\"\n",
        "secret = \"aaaaBBBBccccDDDDeeee\"\n",
        "api_key = \"0000111122223333\"\n",
    };
    for (size_t i = 0; i < sizeof CODE / sizeof CODE[0]; i++) {
        found_ids c = scan(fx, CODE[i]);
        if (c.count) fail_msg("reported (%s): %s", c.ids[0], CODE[i]);
    }
}

/* Shapes found reported by the generic rule in real code trees (Python's
 * site-packages: awscli examples, botocore, moto), none a secret. */
static void test_generic_rejects_real_code_shapes(void **state)
{
    fixture *fx = *state;
    static const char *const CODE[] = {
        /* a key's id is public (a real AKIA id is the AWS rule's) */
        ("\"Message\": \"https://b.s3.amazonaws.com/l.out?AWSAccessKeyId=AKGPT4J56IAJ2EUBL5CQ"
         "&Expires=1440195891&Signature=n%2BEalOV6A\",\n"),
        "api_key_id: \"Zq8vR3mXk2Lp9Tn4Wc7Y\"\n",
        "    ACCESS_TOKEN_ID = 'c9F2kQ8mZ1rT7vX4bN6wP3yL'\n",
        /* the constant prefix of a token format */
        "SESSION_TOKEN_PREFIX = \"FQoGZXIvYXdzEBYaD\"\n",
        "API_KEY_PREFIX: \"Zq8vR3mXk2Lp\"\n",
        /* a value naming a secret, not being one */
        "ACCESS_KEY = 'AWSAccessKeyId'\n",
        "    private_key_param = \"ssmPrivateKeyName2\"\n",
        /* values typed by counting */
        "        self.update_token = \"1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d\"\n",
        "    \"ChangeToken\": \"12cs345-67cd-890b-1cd2-c3a4567d89f1\"\n",
        "secret: abcdefghij0123456789\n",
    };
    for (size_t i = 0; i < sizeof CODE / sizeof CODE[0]; i++) {
        found_ids c = scan(fx, CODE[i]);
        if (c.count) fail_msg("reported (%s): %s", c.ids[0], CODE[i]);
    }
    /* and what is near them stays reported: a key id's neighbour the key,
     * random hex under a token name */
    uint64_t seed = 31;
    char text[512];
    static const char *const STILL[] = {
        "AWSSecretKey={A:40}&Expires=1440195891\n", "update_token = \"{a:32}\"\n",
        "change_token = \"9f1c2e7a-4b3d-4c8e-a1f5-2d6b9e0c7a43\"\n", "SESSION_TOKEN = \"{B:40}\"\n",
    };
    for (size_t i = 0; i < sizeof STILL / sizeof STILL[0]; i++) {
        for (int round = 0; round < 50; round++) {
            samples_expand(STILL[i], text, sizeof text, &seed);
            found_ids c = scan(fx, text);
            if (c.count != 1) fail_msg("%zu findings in: %s", c.count, text);
        }
    }
}

/* What the generic rule must still report: random values, quoted or in
 * config files. */
static void test_generic_reports_random_values(void **state)
{
    fixture *fx = *state;
    static const char *const TEMPLATES[] = {
        "client_secret: \"{A:24}\"\n", "SESSION_SECRET={A:32}\n", "api_key = '{A:28}'\n",
        "  \"password\": \"{B:20}\"\n", "export AUTH_TOKEN={a:40}\n", "token: {A:16}\n",
        "const client = new Client({ apiKey: \"{A:28}\" });\n",
    };
    uint64_t seed = 99;
    char text[512];
    for (size_t i = 0; i < sizeof TEMPLATES / sizeof TEMPLATES[0]; i++) {
        for (int round = 0; round < 20; round++) {
            samples_expand(TEMPLATES[i], text, sizeof text, &seed);
            found_ids c = scan(fx, text);
            if (c.count != 1 || strcmp(c.ids[0], "generic-secret-assignment") != 0)
                fail_msg("%zu findings in: %s", c.count, text);
        }
    }
}

static int count_finding(const kw_scan_finding *f, const char *data, void *ctx)
{
    (void)f;
    (void)data;
    ++*(size_t *)ctx;
    return 0;
}

/* The generic rule's recall as a rate: the word and entropy tests that keep
 * identifiers out may also take a random value for language, and that must
 * stay rare (under 1 in 10,000) for every length a secret commonly has.
 * Values hold a digit, as generated secrets nearly all do. */
static void test_generic_recall_rate_on_random_values(void **state)
{
    fixture *fx = *state;
    enum { VALUES = 20000 };
    static const char *const TEMPLATES[] = {"password = \"{A:24}\"\n", "api_key={A:28}\n",
                                            "AUTH_TOKEN=\"{B:40}\"\n"};
    uint64_t seed = 2026;
    char *text = malloc((size_t)VALUES * 64);
    assert_non_null(text);
    for (size_t t = 0; t < sizeof TEMPLATES / sizeof TEMPLATES[0]; t++) {
        size_t len = 0;
        for (int i = 0; i < VALUES;) {
            size_t n = samples_expand(TEMPLATES[t], text + len, 64, &seed);
            if (strpbrk(strchr(text + len, '=') + 1, "0123456789") == NULL) continue;
            len += n;
            i++;
        }
        size_t found = 0;
        assert_int_equal(kw_scan_buffer(fx->engine, fx->scratch, text, len, 0, count_finding, &found),
                         KW_OK);
        if ((VALUES - found) * 10000 > VALUES) fail_msg("%zu of %d missed: %s", VALUES - found, VALUES,
                                                       TEMPLATES[t]);
    }
    free(text);
}

/* A GitHub token's last 6 chars are its CRC32 in base62, a number: one
 * that reads "XxXX" or "1234" is as real as any other, so the placeholder
 * check reads the random part only. */
static void test_crc_checksum_is_not_a_placeholder(void **state)
{
    fixture *fx = *state;
    found_ids c = scan(fx, "GH=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\n");
    assert_int_equal(c.count, 1);
    assert_string_equal(c.ids[0], "github-pat");
    c = scan(fx, "GH=ghp_1234kZyHU9QZHCf8y0zcUAN9R6tQ763nXxXX\n"); /* bad CRC */
    assert_int_equal(c.count, 0);
}

/* Sixteen symbols repeat: one random 64-char hex body in a thousand has a
 * run of five, so a hex body needs a run of seven to read as a filler. */
static void test_hex_run_is_not_a_placeholder(void **state)
{
    fixture *fx = *state;
    found_ids c = scan(fx, "x = dop_v1_913cce18ab9745edd65bd5677f9f8954f01d22222cbfcf421900a48a7bbee7fc\n");
    assert_int_equal(c.count, 1);
    assert_string_equal(c.ids[0], "digitalocean-token");
    c = scan(fx, "x = dop_v1_913cce18ab9745edd65bd5677f9f8954f01d2222222cbfcf421900a48a7bbee7\n");
    assert_int_equal(c.count, 0);
}

static void test_language_splitter(void **state)
{
    (void)state;
    static const char *const WORDS[] = {"cacheRetryPolicy", "user_session_timeout",
                                        "database-connection-name", "HTTPServerConfig",
                                        "rotateOnEveryRequest", "DefaultTokenProvider"};
    static const char *const RANDOM[] = {"c9F2kQ8mZ1rT7vX4bN6wP3yL", "Zq8vR3mXk2Lp9Tn4Wc7Y",
                                         "3f9a7c2e8b1d4f6a0c5e", "hRtWqPzXvBnMkLjS"};
    for (size_t i = 0; i < sizeof WORDS / sizeof WORDS[0]; i++)
        if (!kw_scan_value_is_language(WORDS[i], strlen(WORDS[i]), 0)) fail_msg("%s", WORDS[i]);
    for (size_t i = 0; i < sizeof RANDOM / sizeof RANDOM[0]; i++)
        if (kw_scan_value_is_language(RANDOM[i], strlen(RANDOM[i]), 0)) fail_msg("%s", RANDOM[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_rule_both_ways),
        cmocka_unit_test(test_every_rule_has_a_case),
        cmocka_unit_test(test_secret_span),
        cmocka_unit_test(test_generic_rejects_identifiers),
        cmocka_unit_test(test_generic_rejects_real_code_shapes),
        cmocka_unit_test(test_generic_reports_random_values),
        cmocka_unit_test(test_generic_recall_rate_on_random_values),
        cmocka_unit_test(test_language_splitter),
        cmocka_unit_test(test_crc_checksum_is_not_a_placeholder),
        cmocka_unit_test(test_hex_run_is_not_a_placeholder),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
