/* h_static.c — posthog-js's files for the HTML snippet: GET
 * /static/array.js (what PostHog's snippet loads from api_host),
 * array.full.js and the other bundles, and the extensions array.js loads
 * lazily (/static/<name>.js?v=<version>, or /static/<version>/<name>.js
 * with posthog-js's strict script versioning: the version segment is not
 * read — the operator's copy is the version served).
 *
 * keyward does not build posthog-js: the operator points it at a copy
 * (`keyward serve --js-dir DIR`, DIR being the package's dist/ folder;
 * default: the copy scripts/deps installs from npm, at the version pinned
 * in scripts/posthog-js/, into the build tree).  The files are read once,
 * at start, into memory: a request never touches the file system, and
 * what can be served is the fixed list of names below, looked up by exact
 * name — the request's path is never joined to a directory, so no
 * "../", encoded or not, can reach another file.  Each file's weak ETag is
 * computed at load.  Without a copy every name answers a 404 that names
 * the setting, never an empty stub that would leave `posthog` silently
 * dead. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http.h"
#include "keyward/keyward.h"

/* The bundles of posthog-js's dist/ a page may load: the snippet's
 * array*.js, and the extensions array.js loads by name
 * (loadExternalDependency).  Absent ones (older versions) are 404. */
static const char *const NAMES[] = {
    "array.js", "array.full.js", "array.no-external.js", "array.full.no-external.js",
    "array.full.es5.js",
    "conversations.js", "dead-clicks-autocapture.js", "exception-autocapture.js",
    "lazy-recorder.js", "logs.js", "posthog-recorder.js", "product-tours.js", "recorder.js",
    "surveys.js", "tracing-headers.js", "web-vitals.js", "web-vitals-soft-navs.js",
    "web-vitals-with-attribution.js", "web-vitals-with-attribution-soft-navs.js",
};
#define N_NAMES (sizeof NAMES / sizeof NAMES[0])
#define JS_FILE_MAX (32 * 1024 * 1024)

struct kw_jsfiles {
    struct {
        char *data;  /* NULL: not in the folder */
        size_t len;
        char etag[KW_ETAG_MAX];
    } file[N_NAMES];
};

/* Reads one regular file whole; 0, or -1 with errno (ENOENT when absent). */
static int read_file(const char *path, char **out, size_t *len)
{
    /* O_NONBLOCK: a FIFO put there cannot hang the start. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return -1;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > JS_FILE_MAX) {
        if (!errno || errno == ENOENT) errno = EINVAL;
        goto err;
    }
    size_t size = (size_t)st.st_size, got = 0;
    buf = malloc(size ? size : 1);
    if (!buf) goto err;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (n == 0) errno = EIO;  /* shrank while read */
            goto err;
        }
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *len = size;
    return 0;
err:;
    int e = errno;
    free(buf);
    close(fd);
    errno = e;
    return -1;
}

void kw_jsfiles_free(kw_jsfiles *js)
{
    if (!js) return;
    for (size_t i = 0; i < N_NAMES; i++) free(js->file[i].data);
    free(js);
}

int kw_jsfiles_load(const char *dir, kw_jsfiles **out, char *err, size_t errsz)
{
    *out = NULL;
    kw_jsfiles *js = calloc(1, sizeof *js);
    if (!js) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < N_NAMES; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, NAMES[i]) >= sizeof path) {
            snprintf(err, errsz, "%.200s: path too long", dir);
            goto fail;
        }
        if (read_file(path, &js->file[i].data, &js->file[i].len)) {
            if (errno == ENOENT) continue;
            snprintf(err, errsz, "%.300s: %s", path,
                     errno == EINVAL ? "not a regular file of at most 32 MiB" : strerror(errno));
            goto fail;
        }
        kw_etag_of(js->file[i].data, js->file[i].len, js->file[i].etag);
    }
    if (!js->file[0].data) {
        snprintf(err, errsz, "%.300s has no array.js (give posthog-js's dist/ folder)", dir);
        goto fail;
    }
    *out = js;
    return 0;
fail:
    kw_jsfiles_free(js);
    return -1;
}

int kw_h_static(kw_http_req *req, kw_http_resp *resp)
{
    const kw_jsfiles *js = req->app->js;
    if (!js) {
        kw_problem p;
        kw_problem_set(&p, KW_P_NOT_FOUND, "js_dir_not_configured", "js_dir",
                       "posthog-js is not configured on this server: start keyward serve with "
                       "--js-dir DIR (or KEYWARD_JS_DIR), DIR being posthog-js's dist/ folder.");
        kw_resp_problem(resp, &p);
        return KW_OK;
    }
    for (size_t i = 0; i < N_NAMES; i++) {
        if (strcmp(req->match.id, NAMES[i]) != 0 || !js->file[i].data) continue;
        kw_resp_cacheable(req, resp, "application/javascript; charset=utf-8", js->file[i].data,
                          js->file[i].len, js->file[i].etag, "public, max-age=300", NULL, NULL);
        return KW_OK;
    }
    kw_resp_error(resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
    return KW_OK;
}
