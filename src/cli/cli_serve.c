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

static void usage(FILE *out)
{
    fprintf(out,
            "usage: keyward serve [--listen HOST:PORT] [--db FILE|postgresql://…] [--threads N]\n"
            "                     [--secure-cookies]\n\n"
            "  --listen   address to bind (default $KEYWARD_LISTEN or 127.0.0.1:8000;\n"
            "             port 0 picks a free port, printed on stdout)\n"
            "  --db       SQLite file or PostgreSQL URL (default $KEYWARD_DATABASE_URL or keyward.db)\n"
            "  --threads  HTTP worker threads (default: one per CPU)\n"
            "  --secure-cookies  mark the console's session cookie Secure (set it when\n"
            "             keyward is reached over HTTPS, e.g. behind a TLS proxy;\n"
            "             also $KEYWARD_SECURE_COOKIES=1)\n\n"
            "The web console is served at / (sign in with a password set by\n"
            "'keyward user set-password EMAIL').\n");
}

int kw_cli_serve(int argc, char **argv)
{
    const char *listen = getenv("KEYWARD_LISTEN");
    const char *db = NULL;
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    const char *secure_env = getenv("KEYWARD_SECURE_COOKIES");
    int secure_cookies = secure_env && strcmp(secure_env, "1") == 0;
    static const struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                         {"db", required_argument, 0, 'd'},
                                         {"threads", required_argument, 0, 't'},
                                         {"secure-cookies", no_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'd': db = optarg; break;
        case 't': threads = strtol(optarg, NULL, 10); break;
        case 's': secure_cookies = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || threads < 1 || threads > 256) {
        usage(stderr);
        return 2;
    }
    if (!listen || !*listen) listen = "127.0.0.1:8000";

    /* Block the stop signals before any thread starts, so every thread
     * inherits the mask and sigwait below is the only receiver. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    kw_store *store = kw_cli_open_store(db);
    if (!store) return 1;
    kw_app app = {store, NULL, KW_MAX_BODY, NULL, secure_cookies};
    int rc = kw_verifier_new(store, &app.verifier);
    if (!rc) rc = kw_sessions_new(store, &app.sessions);
    if (rc) {
        kw_verifier_free(app.verifier);
        fprintf(stderr, "keyward serve: %s\n", kw_strerror(rc));
        kw_store_close(store);
        return 1;
    }
    kw_server *server;
    char err[256];
    if (kw_server_start(&app, listen, (unsigned)threads, &server, err, sizeof err)) {
        fprintf(stderr, "keyward serve: %s\n", err);
        kw_sessions_free(app.sessions);
        kw_verifier_free(app.verifier);
        kw_store_close(store);
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
    kw_sessions_free(app.sessions);
    kw_verifier_free(app.verifier);
    kw_store_close(store);
    return 0;
}
