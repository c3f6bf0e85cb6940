/* framing.c — the headers that frame a request or name its caller, read
 * once at its first callback, and the requests refused for them.
 *
 * libmicrohttpd takes the first of repeated headers and reads a chunked
 * body over a Content-Length.  A proxy in front may do otherwise, and then
 * the two disagree on where a request ends (request smuggling: the rest of
 * a body served as the next request) or on which credential it carries (a
 * check made on one Authorization header, the request run with another).
 * Such requests are refused with 400 and their connection closed
 * (server_request.c), before a byte of their body is read. */
#include <string.h>
#include <strings.h>

#include "http/server_internal.h"

static enum MHD_Result header(void *cls, enum MHD_ValueKind kind, const char *key,
                              size_t key_size, const char *value, size_t value_size)
{
    kw_framing *f = cls;
    (void)kind;
    (void)value_size;
    if (key_size == 14 && strcasecmp(key, "Content-Length") == 0) {
        if (!f->n_content_length++) f->content_length = value;
    } else if (key_size == 17 && strcasecmp(key, "Transfer-Encoding") == 0) {
        if (!f->n_transfer_encoding++) f->transfer_encoding = value;
    } else if (key_size == 13 && strcasecmp(key, "Authorization") == 0) {
        f->n_authorization++;
    }
    return MHD_YES;
}

int kw_framing_read(struct MHD_Connection *conn, kw_framing *f, kw_problem *p)
{
    memset(f, 0, sizeof *f);
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, header, f);
    const char *why = NULL;
    if (f->n_content_length > 1)
        why = "Content-Length must be sent once.";
    else if (f->n_transfer_encoding > 1 ||
             (f->transfer_encoding && strcasecmp(f->transfer_encoding, "chunked") != 0))
        why = "The only Transfer-Encoding supported is chunked, sent once.";
    else if (f->transfer_encoding && f->content_length)
        why = "Content-Length and Transfer-Encoding must not be sent together.";
    else if (f->n_authorization > 1)
        why = "Authorization must be sent once.";
    if (!why) return 0;
    kw_problem_set(p, KW_P_VALIDATION, "invalid_input", NULL, "%s", why);
    return 1;
}
