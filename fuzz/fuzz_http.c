/* fuzz_http.c — keyward's HTTP server, in process, over loopback TCP.
 *
 * LLVMFuzzerInitialize bootstraps a temp SQLite database (kw_bootstrap: a
 * user, organization, project and a phx_ key with scope "*"), adds a
 * second key and a flag, and starts the real server (kw_server_start, the
 * MHD thread pool of `keyward serve`) on 127.0.0.1 port 0.
 * Input: byte 0 bit 0 clear → the rest is sent as raw bytes (request
 * line, headers, body: everything fuzzed).  Bit 0 set → a valid request
 * line from a table of 16 routes (bits 1-4) plus Host and
 * "Authorization: Bearer <bootstrap key>" is sent first; then with bit 5
 * set the rest is the body (Content-Length added), else the rest is sent
 * raw (more headers, blank line, body).  The write side is then shut and
 * the response read with a short timeout.
 * Invariants:
 *   - the server stays up: after an input without a response, GET /_health
 *     on a new connection answers 200;
 *   - a response is HTTP/1.x with a 3-digit status; one from keyward
 *     (it carries X-Content-Type-Options) has a JSON body when it has a
 *     body, never a 500, and on 4xx/5xx the body is exactly PostHog's
 *     {type, code, detail, attr} (strings; attr string or null).
 *     Responses libmicrohttpd writes itself (malformed requests, oversized
 *     headers) are HTML by MHD's design and only checked for the status
 *     line; see docs/fuzzing.md.
 * After each authenticated input the database is put back (created rows
 * removed, the bootstrap key and the flag restored). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/service.h"

static kw_store *store;
static kw_app app;
static kw_server *server;
static unsigned port;
static char boot_value[KW_KEY_LEN + 1];
static kw_pkey boot_key, other_key;
static kw_flag flag;
static kw_project project;
static char routes[16][160];
static char cleanup_sql[512];

static int find_boot(void *ctx, const kw_pkey *k)
{
    (void)ctx;
    if (strcmp(k->label, "keyward init") == 0) boot_key = *k;
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    store = kw_fz_temp_store();
    kw_user user;
    kw_problem p;
    FZ_CHECK(kw_bootstrap(store, "fuzz@example.com", "Fuzz org", "Fuzz project", &user, &project,
                          boot_value, &p) == 0, "bootstrap: %s", p.detail);
    FZ_CHECK(kw_store_pkey_list(store, user.id, find_boot, NULL) == KW_OK && boot_key.id[0], "boot key");
    kw_principal session;
    memset(&session, 0, sizeof session);
    session.session = 1;
    session.user_id = user.id;
    session.scopes.wildcard = 1;
    session.n_scoped_teams = session.n_scoped_orgs = -1;
    kw_call c = {.store = store, .actor = &session};
    char value[KW_KEY_LEN + 1];
    json_t *body = json_pack("{s:s, s:[s]}", "label", "other", "scopes", "feature_flag:read");
    FZ_CHECK(kw_pkey_create(&c, body, &other_key, value, &p) == 0, "other key: %s", p.detail);
    json_decref(body);
    body = json_pack("{s:s, s:{s:[{s:[{s:s, s:s, s:s}], s:i}]}}", "key", "seed-flag", "filters",
                     "groups", "properties", "key", "email", "operator", "icontains", "value",
                     "@example.com", "rollout_percentage", 50);
    FZ_CHECK(kw_flag_create(&c, project.id, body, &flag, &p) == 0, "flag: %s", p.detail);
    json_decref(body);

    long long P = (long long)project.id, F = (long long)flag.id;
    const char *O = other_key.id;
    snprintf(routes[0], sizeof routes[0], "GET /_health");
    snprintf(routes[1], sizeof routes[1], "GET /api/users/@me/");
    snprintf(routes[2], sizeof routes[2], "GET /api/projects/");
    snprintf(routes[3], sizeof routes[3], "GET /api/projects/%lld/", P);
    snprintf(routes[4], sizeof routes[4], "PATCH /api/projects/%lld/reset_token/", P);
    snprintf(routes[5], sizeof routes[5], "GET /api/personal_api_keys/");
    snprintf(routes[6], sizeof routes[6], "POST /api/personal_api_keys/");
    snprintf(routes[7], sizeof routes[7], "GET /api/personal_api_keys/@current/");
    snprintf(routes[8], sizeof routes[8], "PATCH /api/personal_api_keys/%s/", O);
    snprintf(routes[9], sizeof routes[9], "POST /api/personal_api_keys/%s/roll/", O);
    snprintf(routes[10], sizeof routes[10], "GET /api/environments/%lld/feature_flags/", P);
    snprintf(routes[11], sizeof routes[11], "POST /api/projects/%lld/feature_flags/", P);
    snprintf(routes[12], sizeof routes[12], "PATCH /api/projects/%lld/feature_flags/%lld/", P, F);
    snprintf(routes[13], sizeof routes[13], "DELETE /api/projects/@current/feature_flags/%lld", F);
    snprintf(routes[14], sizeof routes[14], "GET /api/projects/%lld/activity_log/", P);
    snprintf(routes[15], sizeof routes[15], "PATCH /api/personal_api_keys/@current/");
    snprintf(cleanup_sql, sizeof cleanup_sql,
             "DELETE FROM activity_log; DELETE FROM feature_flags WHERE id <> %lld; "
             "DELETE FROM personal_api_keys WHERE id NOT IN ('%s', '%s');",
             F, boot_key.id, other_key.id);

    app.store = store;
    app.max_body = KW_MAX_BODY;
    /* libmicrohttpd 0.9.75 does not always notice a client's FIN (after a
     * shutdown(SHUT_WR) + close, some connections stay in CLOSE_WAIT until
     * the idle timeout; the hello-world reference does the same).  At ~70
     * inputs/s the default 30 s kept ~250-300 of them open from 127.0.0.1
     * and now and then reached the per-IP limit of 512, so the health check
     * after an input got no answer: a false "server not healthy".  A short
     * idle timeout reaps them; the server's own behaviour is unchanged. */
    app.conn_timeout = 2;
    FZ_CHECK(kw_verifier_new(store, &app.verifier) == KW_OK, "verifier");
    char err[256];
    FZ_CHECK(kw_server_start(&app, "127.0.0.1:0", 2, &server, err, sizeof err) == 0, "start: %s", err);
    port = kw_server_port(server);
    FZ_CHECK(port != 0, "no port");
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* For failure messages: sockets the process (client and server) holds. */
static int open_descriptors(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n - 2;
}

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    FZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        /* libFuzzer's timeout alarm can interrupt a connect that waits
         * (a full accept queue): the connection still completes, so wait
         * for it rather than report EINTR as the server being down. */
        FZ_CHECK(errno == EINTR, "server down: connect: %s", strerror(errno));
        struct pollfd pfd = {fd, POLLOUT, 0};
        int r;
        do r = poll(&pfd, 1, 5000);
        while (r < 0 && errno == EINTR);
        int err = r == 1 ? 0 : ETIMEDOUT;
        socklen_t len = sizeof err;
        if (r == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        FZ_CHECK(err == 0, "server down: connect: %s (%d descriptors open)", strerror(err),
                 open_descriptors());
    }
    return fd;
}

static void send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0) return; /* the server may close early (e.g. 413): fine */
        data += n;
        len -= (size_t)n;
    }
}

/* Reads one response until it is complete, EOF or `timeout_ms`.  Returns
 * the header length (0 when no complete header arrived); *body_len is the
 * body's length, without what follows it (bytes after a request's end are
 * the next request, so a second response may follow the first). */
static size_t read_response(int fd, kw_fz_buf *in, int timeout_ms, int head, size_t *body_len)
{
    int64_t deadline = now_ms() + timeout_ms;
    size_t header_len = 0;
    long content_length = -1;
    char chunk[4096];
    for (;;) {
        if (header_len && content_length >= 0 && in->len >= header_len + (size_t)content_length) break;
        int64_t left = deadline - now_ms();
        if (left <= 0) break;
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left) <= 0) break;
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        kw_fz_buf_append(in, chunk, (size_t)n);
        if (!header_len) {
            char *end = memmem(in->data, in->len, "\r\n\r\n", 4);
            if (end) {
                header_len = (size_t)(end - in->data) + 4;
                char *cl = strcasestr(in->data, "\r\nContent-Length:");
                if (cl && cl < end) content_length = strtol(cl + 17, NULL, 10);
                /* 1xx, 204, 304 and any answer to HEAD never have a body,
                 * whatever Content-Length says and whatever follows (a
                 * pipelined request's answer) */
                int status = in->len > 12 ? atoi(in->data + 9) : 0;
                if (head || status / 100 == 1 || status == 204 || status == 304) content_length = 0;
            }
        }
    }
    *body_len = header_len ? in->len - header_len : 0;
    /* a pipelined request's response may have come in the same recv() */
    if (content_length >= 0 && *body_len > (size_t)content_length) *body_len = (size_t)content_length;
    return header_len;
}

static void check_problem_body(const json_t *body, int status, const char *text)
{
    FZ_CHECK(json_is_object(body) && json_object_size(body) == 4, "%d: not {type,code,detail,attr}: %s",
             status, text);
    FZ_CHECK(json_is_string(json_object_get(body, "type")) &&
                 json_is_string(json_object_get(body, "code")) &&
                 json_is_string(json_object_get(body, "detail")),
             "%d: type/code/detail not strings: %s", status, text);
    const json_t *attr = json_object_get(body, "attr");
    FZ_CHECK(attr && (json_is_string(attr) || json_is_null(attr)), "%d: attr: %s", status, text);
}

/* The request is a HEAD (libmicrohttpd skips empty lines before the
 * request line, as HTTP allows). */
static int is_head(const char *data, size_t len)
{
    size_t i = 0;
    while (i < len && (data[i] == '\r' || data[i] == '\n')) i++;
    return len - i >= 5 && memcmp(data + i, "HEAD ", 5) == 0;
}

/* Checks one response; returns its status. */
static int check_response(const kw_fz_buf *in, size_t header_len, size_t body_len, int head)
{
    FZ_CHECK(in->len >= 12 && strncmp(in->data, "HTTP/1.", 7) == 0 && in->data[8] == ' ',
             "bad status line: %.40s", in->data);
    int status = atoi(in->data + 9);
    FZ_CHECK(status >= 100 && status <= 599, "status %d", status);
    char *hdr_end = in->data + header_len;
    char *mark = strcasestr(in->data, "\r\nX-Content-Type-Options: nosniff");
    int ours = mark && mark < hdr_end;
    if (!ours) return status; /* written by libmicrohttpd itself */
    FZ_CHECK(status != 500, "keyward answered 500: %s", hdr_end);
    if (head) {  /* HEAD: the headers of the GET answer, never a body */
        FZ_CHECK(body_len == 0, "%d: a body in answer to HEAD", status);
        return status;
    }
    if (body_len == 0) {
        FZ_CHECK(status < 400, "%d without a body", status);
        return status;
    }
    char *ct = strcasestr(in->data, "\r\nContent-Type: application/json");
    if (!ct || ct > hdr_end) {
        /* The console's own files (GET /, /invite/…, /assets/…; an empty
         * path is "/") are the only bodies that are not JSON. */
        char *page = strcasestr(in->data, "\r\nContent-Type: text/");
        char *svg = strcasestr(in->data, "\r\nContent-Type: image/svg+xml");
        FZ_CHECK(status == 200 && ((page && page < hdr_end) || (svg && svg < hdr_end)),
                 "keyward body without a JSON content type: %.400s", in->data);
        return status;
    }
    json_error_t e;
    json_t *body = json_loadb(hdr_end, body_len, JSON_DECODE_ANY, &e);
    FZ_CHECK(body != NULL, "body is not JSON (%s): %.200s", e.text, hdr_end);
    if (status >= 400) check_problem_body(body, status, hdr_end);
    json_decref(body);
    return status;
}

static void check_alive(void)
{
    int fd = connect_server();
    static const char req[] = "GET /_health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    send_all(fd, req, sizeof req - 1);
    kw_fz_buf in = {0};
    size_t body_len;
    size_t hl = read_response(fd, &in, 5000, 0, &body_len);
    FZ_CHECK(hl > 0 && strncmp(in.data, "HTTP/1.1 200", 12) == 0, "server not healthy: %.60s (%d descriptors open)",
             in.data ? in.data : "(nothing)", open_descriptors());
    close(fd);
    kw_fz_buf_free(&in);
}

static void restore_state(void)
{
    kw_fz_sql(cleanup_sql);
    FZ_CHECK(kw_store_pkey_update(store, &boot_key) == KW_OK, "restore boot key");
    kw_flag copy = flag;
    copy.filters = strdup(flag.filters);
    FZ_CHECK(copy.filters && kw_store_flag_update(store, &copy) == KW_OK, "restore flag");
    kw_flag_clear(&copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned mode = data[0];
    const char *rest = (const char *)data + 1;
    size_t rest_len = size - 1;
    kw_fz_buf req = {0};
    int authed = mode & 1;
    if (authed) {
        char head[512];
        int n = snprintf(head, sizeof head, "%s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n",
                         routes[(mode >> 1) & 15], boot_value);
        kw_fz_buf_append(&req, head, (size_t)n);
        if (mode & 0x20) {
            n = snprintf(head, sizeof head, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                         rest_len);
            kw_fz_buf_append(&req, head, (size_t)n);
        }
    }
    kw_fz_buf_append(&req, rest, rest_len);

    int fd = connect_server();
    send_all(fd, req.data, req.len);
    shutdown(fd, SHUT_WR);
    kw_fz_buf in = {0};
    size_t body_len;
    int head = is_head(req.data, req.len);
    size_t header_len = read_response(fd, &in, 300, head, &body_len);
    close(fd);
    if (header_len)
        check_response(&in, header_len, body_len, head);
    else
        check_alive();
    if (authed) restore_state();
    kw_fz_buf_free(&in);
    kw_fz_buf_free(&req);
    return 0;
}
