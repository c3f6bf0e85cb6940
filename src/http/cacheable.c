/* cacheable.c — answers a browser may keep: an ETag over the exact bytes
 * and a 304 when the client's If-None-Match names it.  Shared by the
 * remote config and the posthog-js files (whose bytes are built or loaded
 * by their handlers); the flag definitions keep their own ready-made
 * answers (h_flag_defs.c), and match If-None-Match here too. */
#include <string.h>

#include "http/http.h"
#include "keyward/key.h"

void kw_etag_of(const char *data, size_t len, char out[KW_ETAG_MAX])
{
    char hash[KW_HASH_LEN + 1];
    if (kw_key_hash(data, len, hash)) {
        strcpy(out, "W/\"0\"");  /* cannot hash: an ETag that never matches twice is not needed */
        return;
    }
    memcpy(out, "W/\"", 3);
    memcpy(out + 3, hash + 7, 32);  /* skip "sha256$" */
    memcpy(out + 35, "\"", 2);
}

/* The opaque tag of an entity tag: without its weakness mark. */
static const char *opaque_tag(const char *tag, size_t *len)
{
    if (*len >= 2 && tag[0] == 'W' && tag[1] == '/') {
        *len -= 2;
        return tag + 2;
    }
    return tag;
}

/* If-None-Match uses the weak comparison (RFC 9110): two tags match when
 * their opaque tags are the same, whether either is marked weak or not, so
 * a cache that dropped the W/ still gets its 304. */
int kw_etag_none_match(const char *header, const char *etag)
{
    if (!header) return 0;
    size_t n = strlen(etag);
    const char *ours = opaque_tag(etag, &n);
    const char *s = header;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',') s++;
        if (*s == '*' && (s[1] == '\0' || s[1] == ',' || s[1] == ' ' || s[1] == '\t')) return 1;
        const char *e = s;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
        size_t m = (size_t)(t - s);
        const char *theirs = opaque_tag(s, &m);
        if (m == n && m > 0 && memcmp(theirs, ours, n) == 0) return 1;
        s = e;
    }
    return 0;
}

void kw_resp_cacheable(const kw_http_req *req, kw_http_resp *resp, const char *type,
                       const char *data, size_t len, const char *etag, const char *cache_control,
                       void (*release)(void *), void *release_ctx)
{
    kw_resp_header(resp, "ETag", etag);
    kw_resp_header(resp, "Cache-Control", cache_control);
    if (kw_etag_none_match(kw_req_header(req, "If-None-Match"), etag)) {
        kw_resp_json(resp, 304, NULL);
        if (release) release(release_ctx);
        return;
    }
    kw_resp_raw(resp, 200, type, data, len, release, release_ctx);
}
