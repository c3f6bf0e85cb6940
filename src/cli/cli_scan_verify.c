/* cli_scan_verify.c — `keyward scan --verify URL`: which found keys are live.
 *
 * Only keyward-format keys (54-char body whose checksum holds) are sent:
 * the server cannot know anything about other secrets, and a checksum
 * failure is already a near miss.  They go in batches of at most
 * KW_LEAK_MAX_ITEMS to POST <URL>/api/secret_scanning/verify/, the read-only
 * twin of the leak report: nothing is revoked.  The request carries the
 * keys themselves, so the URL must be https:// unless it points at this
 * machine (http://localhost, 127.0.0.1, [::1]); anything else is refused
 * rather than sending live keys in clear text.  The caller authenticates
 * with a personal key (verifying needs a trusted caller, see
 * docs/security.md).  The server's token_hash is the sha256 of the token,
 * the same as the finding's fingerprint, which is how answers are matched. */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli/cli_scan.h"
#include "keyward/keyward.h"
#include "keyward/leak.h"

#define MAX_RESPONSE (8u << 20)

struct buffer {
    char *data;
    size_t len;
    int too_big;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct buffer *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > MAX_RESPONSE) {
        b->too_big = 1;
        return 0;
    }
    char *data = realloc(b->data, b->len + n + 1);
    if (!data) return 0;
    memcpy(data + b->len, ptr, n);
    b->data = data;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* https://…, or http:// to this machine only.  The URL is parsed by
 * libcurl (the parser that will send the request), the host compared as
 * parsed, and userinfo refused: "http://localhost@evil/" and
 * "http://localhost:x@evil/" name evil, not localhost. */
static int url_allowed(const char *url)
{
    CURLU *u = curl_url();
    if (!u) return 0;
    char *scheme = NULL, *host = NULL, *user = NULL, *password = NULL, *query = NULL,
         *fragment = NULL;
    int ok = 0;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        int has_user = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK;
        int has_password = curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK;
        /* the endpoint path is appended: a query or fragment would swallow it */
        int has_rest = curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
                       curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK;
        if (has_user || has_password || has_rest) {
            ok = 0;
        } else if (strcasecmp(scheme, "https") == 0) {
            ok = 1;
        } else if (strcasecmp(scheme, "http") == 0) {
            ok = strcasecmp(host, "localhost") == 0 || strcmp(host, "127.0.0.1") == 0 ||
                 strcmp(host, "[::1]") == 0;
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(user);
    curl_free(password);
    curl_free(query);
    curl_free(fragment);
    curl_url_cleanup(u);
    return ok;
}

/* One batch: items idx[0..n) of list.  0 or -1 (printed). */
static int verify_batch(CURL *curl, const char *endpoint, struct curl_slist *headers,
                        cli_findings *list, const size_t *idx, size_t n)
{
    json_t *req = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(req, json_pack("{s:s, s:s}", "token", list->items[idx[i]].key, "type",
                                             list->items[idx[i]].rule_id));
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body) return -1;
    struct buffer resp = {0};
    curl_easy_setopt(curl, CURLOPT_URL, endpoint);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    CURLcode cc = curl_easy_perform(curl);
    OPENSSL_cleanse(body, strlen(body));  /* it held the keys */
    free(body);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    int rc = -1;
    json_t *doc = NULL;
    if (cc != CURLE_OK) {
        fprintf(stderr, "keyward scan: --verify: %s\n",
                resp.too_big ? "response too large" : curl_easy_strerror(cc));
        goto done;
    }
    doc = resp.data ? json_loads(resp.data, 0, NULL) : NULL;
    if (status != 200) {
        const char *detail = json_string_value(json_object_get(doc, "detail"));
        fprintf(stderr, "keyward scan: --verify: the server answered %ld%s%s\n", status,
                detail ? ": " : "", detail ? detail : "");
        goto done;
    }
    if (!json_is_array(doc) || json_array_size(doc) != n) {
        fprintf(stderr, "keyward scan: --verify: unexpected answer from the server\n");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        cli_finding *f = &list->items[idx[i]];
        json_t *o = json_array_get(doc, i);
        const char *hash = json_string_value(json_object_get(o, "token_hash"));
        if (!hash || strcmp(hash, f->fingerprint) != 0) {
            fprintf(stderr, "keyward scan: --verify: answers do not match the request\n");
            goto done;
        }
        f->live = json_is_true(json_object_get(o, "live"));
    }
    rc = 0;
done:
    json_decref(doc);
    free(resp.data);
    return rc;
}

int cli_verify_findings(cli_findings *list, const char *base_url, const char *api_key)
{
    if (!url_allowed(base_url)) {
        fprintf(stderr, "keyward scan: --verify %s: use https:// (plain http:// only to localhost), "
                        "without user:password@, query or fragment: the keys themselves are sent\n", base_url);
        return -1;
    }
    size_t *idx = malloc((list->count ? list->count : 1) * sizeof *idx);
    char endpoint[2048], auth[256];
    size_t base_len = strlen(base_url);
    while (base_len && base_url[base_len - 1] == '/') base_len--;
    int n = snprintf(endpoint, sizeof endpoint, "%.*s/api/secret_scanning/verify/", (int)base_len,
                     base_url);
    int m = snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key);
    if (!idx || n < 0 || (size_t)n >= sizeof endpoint || m < 0 || (size_t)m >= sizeof auth) {
        fprintf(stderr, "keyward scan: --verify: URL or key too long\n");
        free(idx);
        return -1;
    }
    size_t count = 0;
    for (size_t i = 0; i < list->count; i++)
        if (list->items[i].key[0]) idx[count++] = i;
    int rc = 0;
    if (count) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        CURL *curl = curl_easy_init();
        struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
        headers = curl_slist_append(headers, auth);
        if (!curl || !headers) {
            rc = -1;
        } else {
            curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
            curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
            for (size_t off = 0; off < count && !rc; off += KW_LEAK_MAX_ITEMS) {
                size_t batch = count - off < KW_LEAK_MAX_ITEMS ? count - off : KW_LEAK_MAX_ITEMS;
                rc = verify_batch(curl, endpoint, headers, list, idx + off, batch);
            }
        }
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        curl_global_cleanup();
    }
    OPENSSL_cleanse(auth, sizeof auth);
    free(idx);
    return rc;
}
