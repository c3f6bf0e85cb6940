/* hello.c — kw_bench_hello: the HTTP reference server for bench/run.
 *
 * A libmicrohttpd hello-world whose daemon is started exactly as
 * src/http/server.c starts keyward's (same flags, thread pool size, limits,
 * timeouts, completion callback), answering every request with
 * {"status":"ok"} and Content-Type application/json.  Whatever keyward
 * spends above this server's cost on the same machine, in the same run, is
 * keyward's own: routing, JSON, headers, verification, storage.
 *
 * Deliberately minimal: the body is a buffer made once (no JSON library),
 * and only Content-Type is added; keyward also builds its body and adds
 * four more headers (nosniff, frame, referrer, cache-control), which is
 * part of what the ratios show.  With --body-bytes N the body is a JSON
 * object of exactly N bytes ({"status":"ok","pad":"xxx…"}), so a route is
 * compared with a reference that sends as many bytes: a 16-byte hello
 * would flatter a large answer.
 *
 *   kw_bench_hello [--listen HOST:PORT] [--threads N] [--body-bytes N] [--parse-json]
 *
 * With --parse-json the server also does the least any JSON API must do
 * with a request body: it reads the whole body into a buffer and parses it
 * with jansson (the library and flags keyward's SDK routes use), then frees
 * the tree.  For a capture batch that is the ceiling of a server that
 * checks what it accepts, before storing a single event; bench/run reports
 * capture against it next to the plain reference.
 *
 * Prints "kw_bench_hello listening on http://HOST:PORT" once ready (port 0
 * picks a free port) and runs until SIGTERM or SIGINT. */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char SMALL_BODY[] = "{\"status\":\"ok\"}";
static const char *body = SMALL_BODY;
static size_t body_len = sizeof SMALL_BODY - 1;

/* {"status":"ok","pad":"xx…x"} of exactly n bytes (n > 28), or the small
 * body for smaller n. */
static int make_body(long n)
{
    static const char head[] = "{\"status\":\"ok\",\"pad\":\"", tail[] = "\"}";
    size_t fixed = sizeof head - 1 + sizeof tail - 1;
    if (n <= (long)fixed) return 0;
    char *b = malloc((size_t)n);
    if (!b) return -1;
    memcpy(b, head, sizeof head - 1);
    memset(b + sizeof head - 1, 'x', (size_t)n - fixed);
    memcpy(b + n - (sizeof tail - 1), tail, sizeof tail - 1);
    body = b;
    body_len = (size_t)n;
    return 0;
}

static char NO_BODY;  /* con_cls marker, as in server_request.c */

/* --parse-json: each connection's body, read whole before it is parsed. */
static int parse_json;
struct upload {
    char *buf;
    size_t len, cap;
    int bad;  /* too large to keep, or out of memory: answered 413 */
};
#define UPLOAD_MAX ((size_t)1 << 20)

static void upload_append(struct upload *u, const char *data, size_t n)
{
    if (u->bad) return;
    if (u->len + n > UPLOAD_MAX) {
        u->bad = 1;
        return;
    }
    if (u->len + n > u->cap) {
        size_t cap = u->cap ? u->cap : 4096;
        while (cap < u->len + n) cap *= 2;
        char *b = realloc(u->buf, cap);
        if (!b) {
            u->bad = 1;
            return;
        }
        u->buf = b;
        u->cap = cap;
    }
    memcpy(u->buf + u->len, data, n);
    u->len += n;
}

/* 200 with the body, or 400 when the upload is not JSON (the benchmark
 * never sends such a body; the status only keeps the reference honest). */
static unsigned parse_upload(struct upload *u)
{
    if (u->bad) return MHD_HTTP_CONTENT_TOO_LARGE;
    json_error_t err;
    json_t *doc = json_loadb(u->buf ? u->buf : "", u->len, 0, &err);
    if (!doc) return MHD_HTTP_BAD_REQUEST;
    json_decref(doc);
    u->len = 0;
    return MHD_HTTP_OK;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload_data;
    /* Answer once MHD has read the whole request (the second callback), as
     * keyward does: answering on the first one makes MHD close the
     * connection, which would cripple the reference with reconnects. */
    if (*con_cls == NULL) {
        *con_cls = parse_json ? calloc(1, sizeof(struct upload)) : &NO_BODY;
        return *con_cls ? MHD_YES : MHD_NO;
    }
    if (*upload_data_size) {  /* kept with --parse-json, else drained */
        if (parse_json) upload_append(*con_cls, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    unsigned status = parse_json ? parse_upload(*con_cls) : MHD_HTTP_OK;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(body_len, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    if (parse_json && *con_cls) {
        struct upload *u = *con_cls;
        free(u->buf);
        free(u);
    }
    *con_cls = NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: kw_bench_hello [--listen HOST:PORT] [--threads N] [--body-bytes N]\n"
                 "                      [--parse-json]\n"
                 "  defaults: 127.0.0.1:0 (a free port, printed), one thread per CPU,\n"
                 "  the 15-byte body {\"status\":\"ok\"}\n");
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0";
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--body-bytes") == 0 && i + 1 < argc) {
            long n = strtol(argv[++i], NULL, 10);
            if (n < 0 || n > (64L << 20) || make_body(n)) {
                usage(stderr);
                return 2;
            }
        }
        else if (strcmp(argv[i], "--parse-json") == 0)
            parse_json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (threads < 1 || threads > 256) {
        usage(stderr);
        return 2;
    }

    /* IPv4 HOST:PORT only: the benchmark binds loopback. */
    char host[64];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host) {
        usage(stderr);
        return 2;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    if (!host[0] || strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)strtol(colon + 1, NULL, 10));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "kw_bench_hello: invalid listen address '%s'\n", listen);
        return 2;
    }

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Keep in step with kw_server_start() in src/http/server.c. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)2048, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)512, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "kw_bench_hello: cannot listen on %s\n", listen);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("kw_bench_hello listening on http://%s:%u\n", host, info ? info->port : 0);
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    return 0;
}
