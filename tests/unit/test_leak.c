/* test_leak.c — leak reports: reporter signatures and what a report does.
 *
 * Signatures: keys are made here with OpenSSL (ECDSA P-256), loaded in
 * both accepted file formats, and the check must accept exactly the
 * signature of the exact body under the named key.  Reports run against a
 * bootstrapped SQLite store: a live phx_ or phs_ is deleted with a
 * "revoked" entry naming the URL, a phc_ is only logged, a keyward-format
 * token with a bad checksum or an unknown one changes nothing, and check
 * mode never changes anything. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyward/keyward.h"
#include "keyward/leak.h"
#include "keyward/service.h"

static EVP_PKEY *make_key(const char *curve) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve); }

static void pem_of(EVP_PKEY *k, char *out, size_t size)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    assert_true(n > 0 && (size_t)n < size);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(bio);
}

static void sign(EVP_PKEY *k, const char *body, char *b64, size_t size)
{
    unsigned char sig[256];
    size_t len = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &len, (const unsigned char *)body, strlen(body)), 1);
    EVP_MD_CTX_free(ctx);
    assert_true(4 * ((len + 2) / 3) < size);
    EVP_EncodeBlock((unsigned char *)b64, sig, (int)len);
}

static void test_signatures(void **state)
{
    (void)state;
    EVP_PKEY *k1 = make_key("P-256"), *k2 = make_key("P-256"), *k384 = make_key("P-384");
    char pem1[1024], pem2[1024], pem384[1024], text[4096], err[256];
    pem_of(k1, pem1, sizeof pem1);
    pem_of(k2, pem2, sizeof pem2);
    pem_of(k384, pem384, sizeof pem384);
    const char *body = "[{\"token\":\"phx_x\",\"type\":\"t\",\"url\":\"u\",\"source\":\"content\"}]";
    char sig1[512], sig2[512];
    sign(k1, body, sig1, sizeof sig1);
    sign(k2, body, sig2, sizeof sig2);

    /* PEM text format */
    snprintf(text, sizeof text, "# GitHub keys\nkey_identifier: one\n%s\n# key_identifier: two\n%s", pem1, pem2);
    kw_leak_keys *keys;
    assert_int_equal(kw_leak_keys_parse(text, strlen(text), &keys, err, sizeof err), KW_OK);
    assert_int_equal(kw_leak_keys_count(keys), 2);
    assert_int_equal(kw_leak_signature_verify(keys, "one", sig1, body, strlen(body)), KW_OK);
    assert_int_equal(kw_leak_signature_verify(keys, "two", sig2, body, strlen(body)), KW_OK);
    /* wrong key, unknown key, changed body, garbage */
    assert_int_equal(kw_leak_signature_verify(keys, "two", sig1, body, strlen(body)), KW_ERR_INVALID);
    assert_int_equal(kw_leak_signature_verify(keys, "three", sig1, body, strlen(body)), KW_ERR_NOTFOUND);
    assert_int_equal(kw_leak_signature_verify(keys, "one", sig1, body, strlen(body) - 1), KW_ERR_INVALID);
    assert_int_equal(kw_leak_signature_verify(keys, "one", "not base64!", body, strlen(body)), KW_ERR_INVALID);
    assert_int_equal(kw_leak_signature_verify(keys, "one", "", body, strlen(body)), KW_ERR_INVALID);
    kw_leak_keys_free(keys);

    /* GitHub's JSON document */
    json_t *doc = json_pack("{s:[{s:s, s:s, s:b}]}", "public_keys", "key_identifier", "gh1", "key",
                            pem2, "is_current", 1);
    char *json = json_dumps(doc, 0);
    assert_int_equal(kw_leak_keys_parse(json, strlen(json), &keys, err, sizeof err), KW_OK);
    assert_int_equal(kw_leak_signature_verify(keys, "gh1", sig2, body, strlen(body)), KW_OK);
    kw_leak_keys_free(keys);
    free(json);
    json_decref(doc);

    /* refused files: no identifier, not P-256, nothing at all */
    assert_int_not_equal(kw_leak_keys_parse(pem1, strlen(pem1), &keys, err, sizeof err), KW_OK);
    assert_non_null(strstr(err, "key_identifier"));
    snprintf(text, sizeof text, "key_identifier: big\n%s", pem384);
    assert_int_not_equal(kw_leak_keys_parse(text, strlen(text), &keys, err, sizeof err), KW_OK);
    assert_non_null(strstr(err, "P-256"));
    assert_int_not_equal(kw_leak_keys_parse("hello\n", 6, &keys, err, sizeof err), KW_OK);
    assert_null(keys);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k384);
}

struct counter {
    int n;
    char last[64];
};

static int count_entry(void *ctx, const kw_activity *e)
{
    struct counter *c = ctx;
    c->n++;
    snprintf(c->last, sizeof c->last, "%s", e->activity);
    if (strcmp(e->activity, "revoked") == 0)
        assert_non_null(strstr(e->detail, "\"context\":{\"reason\":\"leaked\",\"url\":\"https://x/y\""));
    return 0;
}

static void test_report(void **state)
{
    (void)state;
    char path[] = "/tmp/kw-test-leak-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    kw_store *store;
    assert_int_equal(kw_store_open(path, &store), KW_OK);
    kw_user user;
    kw_project project;
    char phx[KW_KEY_LEN + 1];
    kw_problem p;
    assert_int_equal(kw_bootstrap(store, "a@x.io", "Org", "Web", &user, &project, phx, &p), 0);
    kw_principal admin = {.session = 1, .user_id = user.id, .n_scoped_teams = -1, .n_scoped_orgs = -1};
    admin.scopes.wildcard = 1;
    kw_call as_admin = {.store = store, .actor = &admin, .ip = "127.0.0.1"};
    kw_psk psk;
    char phs[KW_KEY_LEN + 1];
    json_t *body = json_pack("{s:s, s:[s]}", "label", "sdk", "scopes", "feature_flag:read");
    assert_int_equal(kw_psk_create(&as_admin, &project, body, &psk, phs, &p), 0);
    json_decref(body);
    char bad[KW_KEY_LEN + 1];
    memcpy(bad, phx, sizeof bad);
    bad[KW_KEY_LEN - 1] = bad[KW_KEY_LEN - 1] == '0' ? '1' : '0';  /* checksum breaks */

    kw_principal anon = {.n_scoped_teams = -1, .n_scoped_orgs = -1};
    kw_call c = {.store = store, .actor = &anon, .ip = "203.0.113.9"};
    kw_leak_item items[] = {
        {phx, KW_KEY_LEN, "posthog_personal_api_key", "https://x/y", "content"},
        {phs, KW_KEY_LEN, NULL, "https://x/y", NULL},
        {project.api_token, strlen(project.api_token), NULL, "https://x/y", NULL},
        {bad, KW_KEY_LEN, NULL, NULL, NULL},
        {"hello", 5, NULL, NULL, NULL},
        {phx, KW_KEY_LEN, NULL, NULL, NULL},  /* repeated: same answer */
    };
    enum { N = sizeof items / sizeof items[0] };
    kw_leak_result r[N];

    /* check mode: nothing changes */
    assert_int_equal(kw_leak_process(&c, items, N, 0, r, &p), 0);
    kw_leak_outcome live[N] = {KW_LEAK_LIVE, KW_LEAK_LIVE, KW_LEAK_LIVE, KW_LEAK_UNKNOWN,
                               KW_LEAK_UNKNOWN, KW_LEAK_LIVE};
    for (int i = 0; i < N; i++) assert_int_equal(r[i].outcome, live[i]);
    assert_string_equal(r[4].token_hash,
                        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");

    /* report mode */
    assert_int_equal(kw_leak_process(&c, items, N, 1, r, &p), 0);
    kw_leak_outcome done[N] = {KW_LEAK_REVOKED, KW_LEAK_REVOKED, KW_LEAK_PUBLIC, KW_LEAK_UNKNOWN,
                               KW_LEAK_UNKNOWN, KW_LEAK_REVOKED};
    for (int i = 0; i < N; i++) assert_int_equal(r[i].outcome, done[i]);
    kw_pkey row;
    char hash[KW_HASH_LEN + 1];
    kw_key_hash(phx, KW_KEY_LEN, hash);
    assert_int_equal(kw_store_pkey_by_hash(store, hash, &row), KW_ERR_NOTFOUND);
    kw_key_hash(phs, KW_KEY_LEN, hash);
    assert_int_equal(kw_store_psk_by_hash(store, hash, &psk), KW_ERR_NOTFOUND);
    kw_project still;
    assert_int_equal(kw_store_project_by_token(store, project.api_token, &still), KW_OK);

    kw_activity_query q = {.project_id = project.id, .limit = 100};
    struct counter cnt = {0, ""};
    assert_int_equal(kw_store_activity_list(store, &q, count_entry, &cnt), KW_OK);
    /* created (init key), created (psk), revoked ×2; nothing for the public token */
    assert_int_equal(cnt.n, 4);

    /* reported again: nothing live any more */
    assert_int_equal(kw_leak_process(&c, items, 2, 1, r, &p), 0);
    assert_int_equal(r[0].outcome, KW_LEAK_UNKNOWN);
    assert_int_equal(r[1].outcome, KW_LEAK_UNKNOWN);
    kw_store_close(store);
    unlink(path);
    char side[300];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

static void test_limits(void **state)
{
    (void)state;
    kw_problem p;
    kw_principal anon = {.n_scoped_teams = -1, .n_scoped_orgs = -1};
    kw_call c = {.actor = &anon};
    assert_int_equal(kw_leak_process(&c, NULL, KW_LEAK_MAX_ITEMS + 1, 1, NULL, &p), 1);
    assert_int_equal(p.status, 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signatures),
        cmocka_unit_test(test_report),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
