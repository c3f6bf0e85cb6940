/* cli_serve.c — `keyward serve`: open the store, start the HTTP server,
 * wait for SIGTERM/SIGINT, then stop accepting, finish in-flight requests
 * (MHD_stop_daemon joins its threads) and flush pending writes. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/leak.h"

/* Projects whose flag definitions are kept in memory (more share slots),
 * and how long a set lives without any write (a safety net: writes are
 * noticed through the flags generation within 200 ms). */
#define FLAGCACHE_PROJECTS 4096
#define FLAGCACHE_TTL_US ((int64_t)300 * 1000000)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keyward serve [--listen HOST:PORT] [--db FILE|postgresql://…] [--threads N]\n"
            "                     [--leak-report-keys FILE] [--secure-cookies]\n"
            "                     [--degraded-grace SECONDS] [--conn-timeout SECONDS]\n"
            "                     [--public-url URL]\n\n"
            "  --listen   address to bind (default $KEYWARD_LISTEN or 127.0.0.1:8000;\n"
            "             port 0 picks a free port, printed on stdout)\n"
            "  --db       SQLite file or PostgreSQL URL (default $KEYWARD_DATABASE_URL or keyward.db)\n"
            "  --threads  HTTP worker threads (default: one per CPU)\n"
            "  --public-url URL\n"
            "             the address clients reach this server at (http[s]://host[:port][/prefix],\n"
            "             default $KEYWARD_PUBLIC_URL): pagination links are built on it; without\n"
            "             it they are relative.  Never taken from the request's Host header\n"
            "  --degraded-grace SECONDS\n"
            "             while the database is unreachable, keys and flag definitions\n"
            "             verified before keep being served from memory this long (default 30);\n"
            "             after it requests get 503 until the database is back\n"
            "  --conn-timeout SECONDS\n"
            "             close a connection idle (or stalled mid-request) this long\n"
            "             (default 30, 1-3600)\n"
            "  --leak-report-keys FILE\n"
            "             accept leak reports (POST /api/secret_scanning/report/) only when\n"
            "             signed with one of these ECDSA P-256 public keys (PEM blocks each\n"
            "             after a 'key_identifier: ID' line, or GitHub's JSON document)\n"
            "  --secure-cookies  mark the console's session cookie Secure (set it when\n"
            "             keyward is reached over HTTPS, e.g. behind a TLS proxy;\n"
            "             also $KEYWARD_SECURE_COOKIES=1)\n\n"
            "The web console is served at / (sign in with a password set by\n"
            "'keyward user set-password EMAIL').\n");
}

int kw_cli_serve(int argc, char **argv)
{
    const char *listen = getenv("KEYWARD_LISTEN");
    const char *db = NULL, *leak_keys_path = NULL;
    const char *public_url = getenv("KEYWARD_PUBLIC_URL");
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    const char *secure_env = getenv("KEYWARD_SECURE_COOKIES");
    int secure_cookies = secure_env && strcmp(secure_env, "1") == 0;
    double grace_s = 30;
    long conn_timeout = 30;
    static const struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                         {"db", required_argument, 0, 'd'},
                                         {"threads", required_argument, 0, 't'},
                                         {"leak-report-keys", required_argument, 0, 'k'},
                                         {"secure-cookies", no_argument, 0, 's'},
                                         {"degraded-grace", required_argument, 0, 'g'},
                                         {"conn-timeout", required_argument, 0, 'c'},
                                         {"public-url", required_argument, 0, 'u'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'd': db = optarg; break;
        case 't': threads = strtol(optarg, NULL, 10); break;
        case 'k': leak_keys_path = optarg; break;
        case 's': secure_cookies = 1; break;
        case 'g': {
            char *end;
            grace_s = strtod(optarg, &end);
            if (end == optarg || *end || !(grace_s >= 0 && grace_s <= 86400)) grace_s = -1;
            break;
        }
        case 'c': conn_timeout = strtol(optarg, NULL, 10); break;
        case 'u': public_url = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || threads < 1 || threads > 256 || grace_s < 0 || conn_timeout < 1 ||
        conn_timeout > 3600) {
        usage(stderr);
        return 2;
    }
    if (!listen || !*listen) listen = "127.0.0.1:8000";
    char public_base[KW_PUBLIC_URL_MAX + 1] = "";
    if (public_url && *public_url &&
        kw_http_public_url(public_url, public_base, sizeof public_base)) {
        fprintf(stderr, "keyward serve: --public-url must be http:// or https:// followed by a "
                        "host, without query or fragment, at most %d characters\n",
                KW_PUBLIC_URL_MAX);
        return 2;
    }

    /* Block the stop signals before any thread starts, so every thread
     * inherits the mask and sigwait below is the only receiver. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    kw_leak_keys *leak_keys = NULL;
    if (leak_keys_path) {
        char err[320];
        if (kw_leak_keys_load(leak_keys_path, &leak_keys, err, sizeof err)) {
            fprintf(stderr, "keyward serve: --leak-report-keys %s\n", err);
            return 1;
        }
    }
    kw_store *store = kw_cli_open_store(db);
    if (!store) {
        kw_leak_keys_free(leak_keys);
        return 1;
    }
    kw_app app = {.store = store, .max_body = KW_MAX_BODY, .leak_keys = leak_keys,
                  .secure_cookies = secure_cookies, .conn_timeout = (unsigned)conn_timeout,
                  .public_url = public_base[0] ? public_base : NULL};
    int rc = kw_flagcache_new(store, FLAGCACHE_PROJECTS, FLAGCACHE_TTL_US, &app.flags);
    if (!rc) rc = kw_verifier_new(store, &app.verifier);
    if (!rc) rc = kw_sessions_new(store, &app.sessions);
    if (!rc) rc = kw_leak_guard_new(&app.leak_guard);
    if (rc) {
        fprintf(stderr, "keyward serve: %s\n", kw_strerror(rc));
        kw_leak_guard_free(app.leak_guard);
        kw_sessions_free(app.sessions);
        kw_verifier_free(app.verifier);
        kw_flagcache_free(app.flags);
        kw_store_close(store);
        kw_leak_keys_free(leak_keys);
        return 1;
    }
    /* Flag writes by other processes are noticed at the verifier's poll. */
    kw_flagcache_poll(app.flags);
    kw_verifier_set_grace(app.verifier, (int64_t)(grace_s * 1e6));
    kw_flagcache_set_grace(app.flags, (int64_t)(grace_s * 1e6));
    kw_verifier_on_poll(app.verifier, kw_flagcache_poll, app.flags);
    kw_server *server;
    char err[256];
    if (kw_server_start(&app, listen, (unsigned)threads, &server, err, sizeof err)) {
        fprintf(stderr, "keyward serve: %s\n", err);
        kw_leak_guard_free(app.leak_guard);
        kw_sessions_free(app.sessions);
        kw_verifier_free(app.verifier);
        kw_flagcache_free(app.flags);
        kw_store_close(store);
        kw_leak_keys_free(leak_keys);
        return 1;
    }
    char host[128];
    snprintf(host, sizeof host, "%.*s", (int)(strrchr(listen, ':') - listen), listen);
    printf("keyward %s listening on http://%s:%u (%s store)\n", KW_VERSION, host[0] ? host : "127.0.0.1",
           kw_server_port(server), kw_store_backend(store));
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "keyward serve: %s received, shutting down\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    kw_server_stop(server);
    kw_leak_guard_free(app.leak_guard);
    kw_sessions_free(app.sessions);
    kw_verifier_free(app.verifier);  /* joins the thread that runs the poll hook */
    kw_flagcache_free(app.flags);
    kw_store_close(store);
    kw_leak_keys_free(leak_keys);
    return 0;
}
