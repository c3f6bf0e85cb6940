/* h_console_files.c — serves the embedded web console.
 *
 * `/` and `/invite/<token>` both answer index.html (a single-page app that
 * reads its route from the URL); `/assets/<name>` answers the other files.
 * Every answer carries a strict Content-Security-Policy: scripts, styles
 * and requests only from this origin, no inline script, no framing — so an
 * injected string can never run as code (the pages also build the DOM with
 * textContent, never innerHTML).  server_response.c adds X-Frame-Options,
 * X-Content-Type-Options and Referrer-Policy to every response. */
#include <string.h>

#include "http/console_files.h"
#include "http/http.h"

#define CSP "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " \
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "     \
            "frame-ancestors 'none'"

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } TYPES[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
        {".png", "image/png"},                 {".ico", "image/x-icon"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (strcmp(dot, TYPES[i].ext) == 0) return TYPES[i].type;
    return "application/octet-stream";
}

static void serve(kw_http_resp *resp, const char *name)
{
    for (unsigned i = 0; i < kw_console_file_count; i++) {
        const kw_console_file *f = &kw_console_files[i];
        if (strcmp(f->name, name) != 0) continue;
        kw_resp_raw(resp, 200, content_type(name), (const char *)f->data, f->size, NULL, NULL);
        kw_resp_header(resp, "Content-Security-Policy", CSP);
        /* Revalidate: a new binary serves new files at the same names. */
        kw_resp_header(resp, "Cache-Control", "no-cache");
        return;
    }
    kw_resp_error(resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
}

int kw_h_console(kw_http_req *req, kw_http_resp *resp)
{
    (void)req;
    serve(resp, "index.html");
    return KW_OK;
}

int kw_h_console_asset(kw_http_req *req, kw_http_resp *resp)
{
    serve(resp, req->match.id);
    return KW_OK;
}
