/* webhook_sign.c — the Standard Webhooks signature and the retry schedule
 * (see webhook.h).
 *
 * A secret is "whsec_" followed by the base64 of the HMAC key; the
 * signature is "v1," and the base64 of HMAC-SHA256 over
 * "<webhook-id>.<webhook-timestamp>.<body>", so a receiver can check it
 * with any of the Standard Webhooks libraries or a few lines of its own
 * (docs/webhooks.md). */
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/webhook.h"

#define SECRET_PREFIX "whsec_"
#define SECRET_BYTES 24

int kw_webhook_new_secret(char out[KW_WEBHOOK_SECRET_MAX + 1])
{
    unsigned char key[SECRET_BYTES];
    if (RAND_bytes(key, sizeof key) != 1) return KW_ERR_CRYPTO;
    memcpy(out, SECRET_PREFIX, sizeof SECRET_PREFIX - 1);
    EVP_EncodeBlock((unsigned char *)out + sizeof SECRET_PREFIX - 1, key, sizeof key);
    OPENSSL_cleanse(key, sizeof key);
    return KW_OK;
}

/* The key bytes of a secret; -1 when it is not "whsec_" + base64. */
static int secret_key(const char *secret, unsigned char *key, size_t cap)
{
    if (strncmp(secret, SECRET_PREFIX, sizeof SECRET_PREFIX - 1) != 0) return -1;
    const char *b64 = secret + sizeof SECRET_PREFIX - 1;
    size_t n = strlen(b64);
    if (n == 0 || n % 4 || n / 4 * 3 > cap) return -1;
    int len = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)n);
    if (len < 0) return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (b64[n - 1] == '=') len--;
    if (b64[n - 2] == '=') len--;
    return len;
}

int kw_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
                    size_t body_len, char out[KW_WEBHOOK_SIGNATURE_MAX + 1])
{
    unsigned char key[96];
    int key_len = secret_key(secret, key, sizeof key);
    if (key_len <= 0) return KW_ERR_INVALID;
    char head[160];
    int head_len = snprintf(head, sizeof head, "%s.%lld.", msg_id, (long long)timestamp);
    if (head_len < 0 || (size_t)head_len >= sizeof head) {
        OPENSSL_cleanse(key, sizeof key);
        return KW_ERR_INVALID;
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    int ok = 0;
    EVP_MAC *alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *h = alg ? EVP_MAC_CTX_new(alg) : NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    if (h && EVP_MAC_init(h, key, (size_t)key_len, params) &&
        EVP_MAC_update(h, (const unsigned char *)head, (size_t)head_len) &&
        EVP_MAC_update(h, (const unsigned char *)body, body_len) &&
        EVP_MAC_final(h, mac, &mac_len, sizeof mac))
        ok = 1;
    EVP_MAC_CTX_free(h);
    EVP_MAC_free(alg);
    OPENSSL_cleanse(key, sizeof key);
    if (!ok || mac_len != 32) return KW_ERR_CRYPTO;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len);
    return KW_OK;
}

kw_time kw_webhook_next_attempt(kw_time created_at, int64_t attempts, kw_time now, int64_t base_us)
{
    int64_t delay = base_us > 0 ? base_us : 1;
    for (int64_t i = 1; i < attempts && delay < KW_WEBHOOK_BACKOFF_CAP_US; i++) delay *= 2;
    if (delay > KW_WEBHOOK_BACKOFF_CAP_US) delay = KW_WEBHOOK_BACKOFF_CAP_US;
    kw_time next = now + delay;
    return next > created_at + KW_WEBHOOK_GIVE_UP_US ? 0 : next;
}
