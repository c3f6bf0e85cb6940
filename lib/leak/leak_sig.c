/* leak_sig.c — the reporter's public keys and the signature check.
 *
 * GitHub signs each secret-scanning report with an ECDSA P-256 key and
 * names the key in Github-Public-Key-Identifier; the signature (base64 of
 * DER) covers the raw request body.  A server started with
 * --leak-report-keys refuses reports that do not verify, so a stranger
 * cannot make it revoke keys in bulk... except keys the stranger holds,
 * which an unsigned report would also allow: the trade-off is written up
 * in docs/security.md.  Keys are loaded once at start-up; verification is
 * read-only and safe from any thread. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/leak.h"

#define MAX_KEYS 32
#define MAX_ID 256
#define MAX_SIG_B64 1024

struct kw_leak_keys {
    size_t n;
    char ids[MAX_KEYS][MAX_ID + 1];
    EVP_PKEY *pkeys[MAX_KEYS];
};

void kw_leak_keys_free(kw_leak_keys *keys)
{
    if (!keys) return;
    for (size_t i = 0; i < keys->n; i++) EVP_PKEY_free(keys->pkeys[i]);
    free(keys);
}

size_t kw_leak_keys_count(const kw_leak_keys *keys) { return keys ? keys->n : 0; }

/* One PEM block → an EC P-256 key under `id`. */
static int add_key(kw_leak_keys *keys, const char *id, size_t id_len, const char *pem,
                   size_t pem_len, char *err, size_t errsz)
{
    if (keys->n == MAX_KEYS) {
        snprintf(err, errsz, "more than %d keys", MAX_KEYS);
        return KW_ERR_LIMIT;
    }
    if (id_len == 0 || id_len > MAX_ID) {
        snprintf(err, errsz, "key %zu: missing or overlong key identifier", keys->n + 1);
        return KW_ERR_INVALID;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
    EVP_PKEY *pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    char group[64] = "";
    size_t glen = 0;
    if (!pkey || !EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
        EVP_PKEY_free(pkey);
        snprintf(err, errsz, "key '%.*s': not a PEM ECDSA P-256 public key", (int)(id_len > 64 ? 64 : id_len), id);
        return KW_ERR_INVALID;
    }
    memcpy(keys->ids[keys->n], id, id_len);
    keys->ids[keys->n][id_len] = '\0';
    keys->pkeys[keys->n++] = pkey;
    return KW_OK;
}

static int parse_github_json(kw_leak_keys *keys, const char *text, size_t len, char *err, size_t errsz)
{
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, 0, &jerr);
    json_t *list = doc ? json_object_get(doc, "public_keys") : NULL;
    if (!json_is_array(list)) {
        snprintf(err, errsz, "expected {\"public_keys\": [...]}%s%s", doc ? "" : ": ", doc ? "" : jerr.text);
        json_decref(doc);
        return KW_ERR_INVALID;
    }
    size_t i;
    json_t *item;
    int rc = KW_OK;
    json_array_foreach(list, i, item) {
        json_t *id = json_object_get(item, "key_identifier");
        json_t *pem = json_object_get(item, "key");
        if (!json_is_string(id) || !json_is_string(pem)) {
            snprintf(err, errsz, "public_keys[%zu]: key_identifier and key must be strings", i);
            rc = KW_ERR_INVALID;
            break;
        }
        rc = add_key(keys, json_string_value(id), json_string_length(id), json_string_value(pem),
                     json_string_length(pem), err, errsz);
        if (rc) break;
    }
    json_decref(doc);
    return rc;
}

/* "key_identifier: X" lines, each followed by a PEM block. */
static int parse_pem_text(kw_leak_keys *keys, const char *text, size_t len, char *err, size_t errsz)
{
    static const char BEGIN[] = "-----BEGIN PUBLIC KEY-----", END[] = "-----END PUBLIC KEY-----";
    static const char LABEL[] = "key_identifier:";
    const char *p = text, *stop = text + len;
    const char *id = NULL;
    size_t id_len = 0;
    while (p < stop) {
        const char *eol = memchr(p, '\n', (size_t)(stop - p));
        if (!eol) eol = stop;
        const char *s = p;
        while (s < eol && (*s == ' ' || *s == '\t' || *s == '#')) s++;
        if ((size_t)(eol - s) >= sizeof LABEL - 1 && memcmp(s, LABEL, sizeof LABEL - 1) == 0) {
            id = s + sizeof LABEL - 1;
            while (id < eol && (*id == ' ' || *id == '\t')) id++;
            const char *e = eol;
            while (e > id && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
            id_len = (size_t)(e - id);
        } else if ((size_t)(eol - s) >= sizeof BEGIN - 1 && memcmp(s, BEGIN, sizeof BEGIN - 1) == 0) {
            const char *end = memmem(s, (size_t)(stop - s), END, sizeof END - 1);
            if (!end) {
                snprintf(err, errsz, "PEM block without an END line");
                return KW_ERR_INVALID;
            }
            end += sizeof END - 1;
            if (!id) {
                snprintf(err, errsz, "PEM block %zu has no 'key_identifier:' line before it", keys->n + 1);
                return KW_ERR_INVALID;
            }
            int rc = add_key(keys, id, id_len, s, (size_t)(end - s), err, errsz);
            if (rc) return rc;
            id = NULL;
            eol = memchr(end, '\n', (size_t)(stop - end));
            if (!eol) eol = stop;
        }
        p = eol + 1;
    }
    return KW_OK;
}

int kw_leak_keys_parse(const char *text, size_t len, kw_leak_keys **out, char *err, size_t errsz)
{
    *out = NULL;
    kw_leak_keys *keys = calloc(1, sizeof *keys);
    if (!keys) return KW_ERR_NOMEM;
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t')) i++;
    int rc = i < len && text[i] == '{' ? parse_github_json(keys, text, len, err, errsz)
                                       : parse_pem_text(keys, text, len, err, errsz);
    if (!rc && keys->n == 0) {
        snprintf(err, errsz, "no public key found");
        rc = KW_ERR_INVALID;
    }
    if (rc) {
        kw_leak_keys_free(keys);
        return rc;
    }
    *out = keys;
    return KW_OK;
}

int kw_leak_keys_load(const char *path, kw_leak_keys **out, char *err, size_t errsz)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: cannot open", path);
        return KW_ERR_IO;
    }
    char *text = malloc(256 * 1024);
    size_t len = text ? fread(text, 1, 256 * 1024 - 1, f) : 0;
    int too_big = text && len == 256 * 1024 - 1 && fgetc(f) != EOF;
    fclose(f);
    if (!text) return KW_ERR_NOMEM;
    if (too_big) {
        free(text);
        snprintf(err, errsz, "%s: larger than 256 KiB", path);
        return KW_ERR_LIMIT;
    }
    char inner[200] = "";
    int rc = kw_leak_keys_parse(text, len, out, inner, sizeof inner);
    free(text);
    if (rc) snprintf(err, errsz, "%s: %s", path, inner);
    return rc;
}

int kw_leak_signature_verify(const kw_leak_keys *keys, const char *key_id, const char *sig_b64,
                             const char *body, size_t len)
{
    const EVP_PKEY *pkey = NULL;
    for (size_t i = 0; keys && i < keys->n && !pkey; i++)
        if (strcmp(keys->ids[i], key_id) == 0) pkey = keys->pkeys[i];
    if (!pkey) return KW_ERR_NOTFOUND;
    size_t b64_len = strlen(sig_b64);
    if (b64_len == 0 || b64_len > MAX_SIG_B64 || b64_len % 4) return KW_ERR_INVALID;
    unsigned char sig[MAX_SIG_B64];
    int n = EVP_DecodeBlock(sig, (const unsigned char *)sig_b64, (int)b64_len);
    if (n < 0) return KW_ERR_INVALID;
    /* EVP_DecodeBlock counts padding as zero bytes; DER must not see them. */
    for (size_t i = b64_len; i > 0 && sig_b64[i - 1] == '='; i--) n--;
    if (n <= 0) return KW_ERR_INVALID;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, (EVP_PKEY *)pkey) == 1 &&
             EVP_DigestVerify(ctx, sig, (size_t)n, (const unsigned char *)body, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? KW_OK : KW_ERR_INVALID;
}
