/* body.c — turning what a client sent into JSON text, in one place for
 * every route.
 *
 * PostHog's SDKs do not all send plain JSON: posthog-js gzips its batches
 * (?compression=gzip-js, Content-Type text/plain) or sends a form,
 * data=<base64 of JSON>; posthog-python and posthog-node may send
 * Content-Encoding: gzip.  kw_body_decode undoes those layers: first the
 * compression (gzip or zlib, recognised by header, query or magic bytes),
 * then the form's `data` field (base64, or JSON as is, as PostHog accepts
 * both).  A plain body — nearly every request — is handed back as is, with
 * no copy.  Inflating is capped at KW_MAX_INFLATED: the 1 MiB on the wire
 * must not become gigabytes in memory (a "zip bomb" gets 413 as soon as it
 * crosses the cap). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "http/http.h"

static int malformed(kw_problem *p, const char *why)
{
    kw_problem_set(p, KW_P_VALIDATION, "invalid_payload", NULL, "Malformed request data: %s", why);
    return 1;
}

/* Zero bytes after the last member are padding (some writers pad to a
 * block; gunzip and Python's gzip skip them). */
static int zero_padding(const Bytef *rest, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (rest[i]) return 0;
    return 1;
}

/* Inflates the whole body: every member of a gzip body (a gzip file is a
 * series of them, which gunzip decodes whole), so nothing after the first
 * is dropped while the request is answered 200; bytes that are neither a
 * member nor zero padding are malformed.  More than KW_MAX_INFLATED bytes
 * out is 413. */
static int inflate_body(const char *in, size_t in_len, char **out, size_t *out_len, kw_problem *p)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 32) != Z_OK) return malformed(p, "Failed to decompress data.");
    size_t cap = in_len * 4 + 1024, len = 0;
    if (cap > KW_MAX_INFLATED + 1) cap = KW_MAX_INFLATED + 1;
    char *buf = malloc(cap + 1);
    int rc = Z_OK;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)in_len;
    while (buf && len <= KW_MAX_INFLATED) {
        if (len == cap) {
            size_t ncap = cap * 2 > KW_MAX_INFLATED + 1 ? KW_MAX_INFLATED + 1 : cap * 2;
            char *nbuf = realloc(buf, ncap + 1);
            if (!nbuf) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nbuf;
            cap = ncap;
        }
        zs.next_out = (Bytef *)buf + len;
        zs.avail_out = (uInt)(cap - len);
        rc = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
        if (rc == Z_STREAM_END) {
            if (zero_padding(zs.next_in, zs.avail_in)) break;  /* the whole body */
            if (inflateReset(&zs) != Z_OK) break;              /* another member follows */
            rc = Z_OK;
            continue;
        }
        if (rc != Z_OK) break;
        if (zs.avail_in == 0 && zs.avail_out != 0) break;  /* truncated input */
    }
    inflateEnd(&zs);
    if (!buf) {
        kw_problem_set(p, KW_P_SERVER, NULL, NULL, KW_MSG_SERVER_ERROR);
        return 1;
    }
    if (len > KW_MAX_INFLATED) {
        free(buf);
        kw_problem_set(p, KW_P_TOO_LARGE, NULL, NULL,
                       "Decompressed request body is larger than %d bytes.", KW_MAX_INFLATED);
        return 1;
    }
    if (rc != Z_STREAM_END) {
        free(buf);
        return malformed(p, "Failed to decompress data.");
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* URL-decodes s[0..n) in place ('+' is a space); returns the new length. */
static size_t url_decode(char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            s[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            s[o++] = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == ' ' || c == '-') return 62;  /* ' ': a '+' that a form turned into a space */
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Base64 (standard or URL alphabet, padding optional) decoded in place. */
static int b64_decode(char *s, size_t n, size_t *out_len)
{
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' || s[i] == '\n' || s[i] == '\r') continue;
        int v = b64_value(s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            s[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    *out_len = o;
    return 0;
}

/* The `data` field of a form body, decoded; 1 when there is none. */
static int form_data(char *body, size_t len, size_t *start, size_t *n)
{
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&') end++;
        if (end - i >= 5 && memcmp(body + i, "data=", 5) == 0) {
            *start = i + 5;
            *n = url_decode(body + i + 5, end - i - 5);
            return 0;
        }
        i = end + 1;
    }
    return 1;
}

int kw_body_decode(const kw_http_req *req, const char **out, size_t *len, kw_problem *p)
{
    *out = req->body;
    *len = req->body_len;
    if (!req->body_len) return 0;
    const char *enc = kw_req_header(req, "Content-Encoding");
    const char *type = kw_req_header(req, "Content-Type");
    const char *compression = kw_req_query(req, "compression");
    const unsigned char *b = (const unsigned char *)req->body;
    int gzip_magic = req->body_len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
    int compressed = gzip_magic ||
                     (enc && (strcasecmp(enc, "gzip") == 0 || strcasecmp(enc, "deflate") == 0)) ||
                     (compression && (strcasecmp(compression, "gzip-js") == 0 ||
                                      strcasecmp(compression, "gzip") == 0));
    int form = type && strncasecmp(type, "application/x-www-form-urlencoded", 33) == 0;
    if (!compressed && !form) return 0;
    char *text;
    size_t n;
    if (compressed) {
        if (inflate_body(req->body, req->body_len, &text, &n, p)) return 1;
    } else {
        text = malloc(req->body_len + 1);  /* the form is decoded in place */
        if (!text) {
            kw_problem_set(p, KW_P_SERVER, NULL, NULL, KW_MSG_SERVER_ERROR);
            return 1;
        }
        memcpy(text, req->body, req->body_len);
        text[req->body_len] = '\0';
        n = req->body_len;
    }
    size_t start, dn;
    if (form && !form_data(text, n, &start, &dn)) {
        char *d = text + start;
        size_t skip = 0;
        while (skip < dn && (d[skip] == ' ' || d[skip] == '\t')) skip++;
        /* PostHog accepts the data field as JSON or as base64 of JSON. */
        if (skip < dn && d[skip] != '{' && d[skip] != '[' && b64_decode(d, dn, &dn)) {
            free(text);
            return malformed(p, "data is neither JSON nor base64.");
        }
        memmove(text, d, dn);
        text[dn] = '\0';
        n = dn;
    }
    *out = text;
    *len = n;
    return 0;
}

void kw_body_free(const kw_http_req *req, const char *out)
{
    if (out && out != req->body) free((char *)out);
}
