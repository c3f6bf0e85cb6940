/* body.c — request body decoding (gzip), one place for every route.
 *
 * PostHog's SDKs compress what they send: posthog-js marks it with
 * ?compression=gzip-js, server SDKs with Content-Encoding: gzip.  Both are
 * a gzip stream (zlib's inflate with gzip framing; a bare zlib stream is
 * accepted too).  The inflated size is capped at KW_MAX_INFLATED: a
 * compressed body under the 1 MiB wire limit can still expand a thousand
 * fold, so inflation stops, and the request is refused with 413, as soon
 * as the cap is crossed, before more memory is taken.  The buffer starts at
 * four times the compressed size and doubles, so a typical body costs one
 * or two allocations. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "http/http.h"

static int wants_gzip(const kw_http_req *req)
{
    const char *enc = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Encoding");
    if (enc && strcasecmp(enc, "gzip") == 0) return 1;
    const char *q = kw_req_query(req, "compression");
    return q && (strcasecmp(q, "gzip") == 0 || strcasecmp(q, "gzip-js") == 0);
}

static int malformed(kw_problem *p, char *buf)
{
    free(buf);
    kw_problem_set(p, KW_P_VALIDATION, "parse_error", NULL,
                   "Malformed request data: the body is not valid gzip data.");
    return 1;
}

int kw_body_decode(const kw_http_req *req, const char **out, size_t *len, kw_problem *p)
{
    *out = req->body;
    *len = req->body_len;
    if (!req->body_len || !wants_gzip(req)) return 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 32 + MAX_WBITS) != Z_OK) {  /* 32: gzip or zlib header */
        kw_problem_set(p, KW_P_SERVER, NULL, NULL, KW_MSG_SERVER_ERROR);
        return 1;
    }
    size_t cap = req->body_len * 4 < 4096 ? 4096 : req->body_len * 4;
    if (cap > KW_MAX_INFLATED) cap = KW_MAX_INFLATED;
    char *buf = malloc(cap + 1);
    if (!buf) goto nomem;
    z.next_in = (Bytef *)req->body;
    z.avail_in = (uInt)req->body_len;
    size_t used = 0;
    for (;;) {
        if (used == cap) {
            if (cap >= KW_MAX_INFLATED) {
                /* Full at the cap: too large unless the stream ends exactly here. */
                char probe;
                z.next_out = (Bytef *)&probe;
                z.avail_out = 1;
                int rc = inflate(&z, Z_NO_FLUSH);
                if (rc == Z_STREAM_END && z.avail_out == 1) break;
                inflateEnd(&z);
                free(buf);
                kw_problem_set(p, KW_P_TOO_LARGE, NULL, NULL,
                               "Request body is larger than %d bytes once decompressed.",
                               KW_MAX_INFLATED);
                return 1;
            }
            cap = cap * 2 > KW_MAX_INFLATED ? KW_MAX_INFLATED : cap * 2;
            char *grown = realloc(buf, cap + 1);
            if (!grown) goto nomem;
            buf = grown;
        }
        z.next_out = (Bytef *)buf + used;
        z.avail_out = (uInt)(cap - used);
        int rc = inflate(&z, Z_NO_FLUSH);
        used = cap - z.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc == Z_BUF_ERROR && z.avail_in == 0) {  /* truncated stream */
            inflateEnd(&z);
            return malformed(p, buf);
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            inflateEnd(&z);
            return malformed(p, buf);
        }
    }
    inflateEnd(&z);
    buf[used] = '\0';
    *out = buf;
    *len = used;
    return 0;
nomem:
    inflateEnd(&z);
    free(buf);
    kw_problem_set(p, KW_P_SERVER, NULL, NULL, KW_MSG_SERVER_ERROR);
    return 1;
}

void kw_body_free(const kw_http_req *req, const char *out)
{
    if (out && out != req->body) free((char *)out);
}
