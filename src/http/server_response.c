/* server_response.c — how an answer (kw_http_resp) becomes a
 * libmicrohttpd response and is queued on its connection.  Every answer
 * of the API listener is built here (sent by kw_server_send, or kept ready
 * to share), so the headers every response carries (no MIME sniffing, no
 * framing, no referrer, and Cache-Control: no-store unless the handler
 * chose otherwise) are added in one place.  A body is either a JSON value,
 * serialized here, or bytes already serialized (the cached flag
 * definitions, the console's files), sent without a copy; a response built
 * once may be queued on any number of connections (kw_http_ready,
 * kw_http_resp.shared). */
#include <stdlib.h>
#include <string.h>

#include "http/server_internal.h"

void kw_server_common_headers(struct MHD_Response *r)
{
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
}

static struct MHD_Response *build_response(kw_http_resp *resp)
{
    char *text = NULL;
    size_t len = 0;
    if (resp->body) {
        text = json_dumps(resp->body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        json_decref(resp->body);
        resp->body = NULL;
        if (!text) {
            text = strdup("{\"type\":\"server_error\",\"code\":\"error\",\"detail\":\"A server error "
                          "occurred.\",\"attr\":null}");
            resp->status = 500;
        }
        len = text ? strlen(text) : 0;
    }
    struct MHD_Response *r;
    if (resp->raw) {
        /* Zero-copy: a cached, reference-counted set that MHD releases
         * after the last byte is sent, or static data (release NULL). */
        r = resp->release ? MHD_create_response_from_buffer_with_free_callback_cls(
                                resp->raw_len, (void *)resp->raw, resp->release, resp->release_ctx)
                          : MHD_create_response_from_buffer(resp->raw_len, (void *)resp->raw,
                                                            MHD_RESPMEM_PERSISTENT);
        if (!r && resp->release) resp->release(resp->release_ctx);
        resp->release = NULL;  /* MHD's now, or done */
        if (!r) return NULL;
    } else {
        r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(text);
            return NULL;
        }
    }
    kw_server_common_headers(r);
    if (resp->raw)
        MHD_add_response_header(r, "Content-Type", resp->raw_type ? resp->raw_type : "application/json");
    else if (text)
        MHD_add_response_header(r, "Content-Type", "application/json");
    int has_cache_control = 0;
    for (int i = 0; i < resp->n_headers; i++) {
        MHD_add_response_header(r, resp->header_names[i], resp->header_values[i]);
        if (strcmp(resp->header_names[i], "Cache-Control") == 0) has_cache_control = 1;
    }
    if (!has_cache_control) MHD_add_response_header(r, "Cache-Control", "no-store");
    return r;
}

/* A kw_http_ready is an MHD response under a name of keyward's own. */
kw_http_ready *kw_http_ready_new(kw_http_resp *resp)
{
    return (kw_http_ready *)build_response(resp);
}

void kw_http_ready_free(kw_http_ready *ready)
{
    if (ready) MHD_destroy_response((struct MHD_Response *)ready);
}

enum MHD_Result kw_server_send(struct MHD_Connection *conn, kw_http_resp *resp)
{
    struct conn_state *state = resp->shared ? kw_conn_state(conn) : NULL;
    if (state) {
        enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status,
                                                 (struct MHD_Response *)resp->shared);
        json_decref(resp->body);
        if (ret == MHD_YES) {
            state->done = resp->release;
            state->done_ctx = resp->release_ctx;
        } else if (resp->release) {
            resp->release(resp->release_ctx);
        }
        return ret;
    }
    /* Not shared: what keeps the bytes alive goes with the response built
     * from them; without bytes (a 304) nothing needs it any longer. */
    if (!resp->raw && resp->release) {
        resp->release(resp->release_ctx);
        resp->release = NULL;
    }
    struct MHD_Response *r = build_response(resp);
    if (!r) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    return ret;
}
