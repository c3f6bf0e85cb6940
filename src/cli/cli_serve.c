/* cli_serve.c — `keyward serve`: open the store, start the HTTP server,
 * wait for SIGTERM/SIGINT, then stop accepting, finish in-flight requests
 * (kw_server_stop joins its threads) and flush pending writes. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "cli/cli_config.h"
#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/leak.h"
#include "keyward/webhook.h"
#include "logger.h"
#include "webhook_send.h"

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
            "                     [--max-connections N] [--capture-ack-window EVENTS]\n"
            "                     [--public-url URL] [--js-dir DIR]\n"
            "                     [--metrics-listen HOST:PORT] [--log-format text|json]\n"
            "                     [--webhook-retry-base SECONDS] [--webhook-allow-private]\n"
            "                     [--webhook-expiring-days DAYS] [--endpoint-timeout SECONDS]\n"
            "                     [--config FILE]\n\n"
            "  --listen   address to bind (default $KEYWARD_LISTEN or 127.0.0.1:8000;\n"
            "             port 0 picks a free port, printed on stdout)\n"
            "  --db       SQLite file or PostgreSQL URL (default $KEYWARD_DATABASE_URL or keyward.db)\n"
            "  --threads  HTTP worker threads, 1-256 (default: one per CPU)\n"
            "  --public-url URL\n"
            "             the address clients reach this server at (http[s]://host[:port][/prefix],\n"
            "             default $KEYWARD_PUBLIC_URL): pagination links are built on it; without\n"
            "             it they are relative.  Never taken from the request's Host header\n"
            "  --js-dir DIR\n"
            "             posthog-js's dist/ folder, served at /static/ for the HTML snippet\n"
            "             (array.js, array.full.js and the bundles they load; default\n"
            "             $KEYWARD_JS_DIR, else the copy scripts/deps installs in the build tree\n"
            "             when present); read once at start; \"\" serves none\n"
            "  --degraded-grace SECONDS\n"
            "             while the database is unreachable, keys and flag definitions\n"
            "             verified before keep being served from memory this long (default 30);\n"
            "             after it requests get 503 until the database is back\n"
            "  --max-connections N\n"
            "             connections served at once (default 1024, 1-65536); a request on a\n"
            "             connection opened beyond them is answered 503 with Retry-After and\n"
            "             the connection closed, so excess load is refused at once instead\n"
            "             of slowing every client; at most 512 per client address\n"
            "  --capture-ack-window EVENTS\n"
            "             answer a capture before its events are stored while fewer than\n"
            "             EVENTS events so answered wait to be stored (default 0, 0-1000000).\n"
            "             0: every capture is answered once its events are committed.  A\n"
            "             crash or kill -9 loses up to EVENTS acknowledged events; past the\n"
            "             window, and while the database refuses them, captures wait again\n"
            "  --endpoint-timeout SECONDS\n"
            "             wall time an endpoint run may take from its arrival, its wait for\n"
            "             the query thread included (default 10, 0.05-3600); past it the\n"
            "             query is stopped and the run answered 504 query_timeout\n"
            "  --conn-timeout SECONDS\n"
            "             close a connection idle (or stalled mid-request) this long\n"
            "             (default 30, 1-3600)\n"
            "  --leak-report-keys FILE\n"
            "             accept leak reports (POST /api/secret_scanning/report/) only when\n"
            "             signed with one of these ECDSA P-256 public keys (PEM blocks each\n"
            "             after a 'key_identifier: ID' line, or GitHub's JSON document)\n"
            "  --secure-cookies  mark the console's session cookie Secure (set it when\n"
            "             keyward is reached over HTTPS, e.g. behind a TLS proxy;\n"
            "             also $KEYWARD_SECURE_COOKIES=1)\n"
            "  --metrics-listen HOST:PORT\n"
            "             serve Prometheus metrics at GET /metrics on this separate address\n"
            "             (default $KEYWARD_METRICS_LISTEN; none: no metrics are served).\n"
            "             Bind it to loopback or an internal network: it has no credential\n"
            "  --log-format text|json\n"
            "             stderr as free text (default, $KEYWARD_LOG_FORMAT) or as one JSON\n"
            "             object per line: an access line per request (route pattern, status,\n"
            "             latency, credential kind and key id, never a key) and every event\n"
            "  --webhook-retry-base SECONDS\n"
            "             first retry of a failed webhook delivery after this long, doubling\n"
            "             per attempt up to an hour; none after 24 h (default 5, 0.05-3600)\n"
            "  --webhook-allow-private\n"
            "             deliver webhooks to loopback and private addresses too (refused by\n"
            "             default: an organization admin chooses the URL, keyward connects\n"
            "             from inside your network)\n"
            "  --webhook-expiring-days DAYS\n"
            "             send key.expiring_soon this long before a key expires (default 7,\n"
            "             0-365; 0: only key.expired)\n\n"
            "  --config FILE\n"
            "             read settings from FILE (default $KEYWARD_CONFIG, else\n"
            "             " KW_DEFAULT_CONFIG " when it exists): one 'key = value'\n"
            "             per line, the key a long option's name (listen = 127.0.0.1:8000,\n"
            "             db = /var/lib/keyward/keyward.db, secure-cookies = true, ...);\n"
            "             lines starting with # or ; are comments.  An unknown key, a key\n"
            "             set twice or a bad value stops the start (exit status 2)\n\n"
            "Each option is also an environment variable: KEYWARD_ and its name in\n"
            "capitals with _ for - (KEYWARD_THREADS, KEYWARD_CONN_TIMEOUT, ...), except\n"
            "--db: KEYWARD_DATABASE_URL.  An option given on the command line wins over\n"
            "the variable, which wins over the file, which wins over the default.\n\n"
            "The web console is served at / (sign in with a password set by\n"
            "'keyward user set-password EMAIL').\n");
}

static int serve(const kw_setting *set);

/* Frees what serve made, in reverse order; the servers are stopped first
 * by the caller.  Any member may be NULL. */
static void teardown(kw_app *app, kw_leak_keys *leak_keys)
{
    kw_leak_guard_free(app->leak_guard);
    kw_sessions_free(app->sessions);
    kw_verifier_free(app->verifier);  /* joins the thread that runs the poll hook */
    kw_flagcache_free(app->flags);
    kw_directory_free(app->directory);
    kw_store_close(app->store);
    kw_leak_keys_free(leak_keys);
    kw_jsfiles_free((kw_jsfiles *)app->js);
}

/* The verifier's poll (every 200 ms, and when PostgreSQL notifies a flag
 * write): flag writes and directory writes by other processes. */
/* Keys refused for their rate limit since the last poll: key.rate_limited
 * webhooks, at most once a minute per key (the verifier notes only a
 * key's first refusal in each minute).  A notice still in memory when the
 * process dies is not sent: at most one poll's worth. */
static void announce_rate_limited(kw_app *app)
{
    kw_rate_notice notices[32];
    uint64_t dropped = 0;
    static _Atomic uint64_t dropped_told;  /* the poll runs on two threads */
    size_t n;
    kw_call c = {.store = app->store, .verifier = app->verifier, .flags = app->flags};
    while ((n = kw_verifier_rate_notices(app->verifier, notices, 32, &dropped)) > 0)
        for (size_t i = 0; i < n; i++)
            if (kw_webhook_rate_limited(&c, &notices[i]))
                kw_log_event(KW_LOG_WARN, "rate_limited_notice", NULL,
                             "could not queue key.rate_limited for key %s", notices[i].key_id);
    uint64_t told = atomic_exchange(&dropped_told, dropped);
    if (dropped > told)
        kw_log_event(KW_LOG_WARN, "rate_limited_notice", NULL,
                     "%llu rate-limit notices dropped (more keys throttled at once than the "
                     "verifier keeps)", (unsigned long long)(dropped - told));
}

static void poll_caches(void *ctx)
{
    kw_app *app = ctx;
    kw_flagcache_poll(app->flags);
    kw_directory_poll(app->directory);
    announce_rate_limited(app);
}

/* The database went away or came back (the verifier's poll saw it). */
static void db_state_changed(void *ctx, int reachable, int64_t since)
{
    (void)ctx;
    if (!reachable) {
        /* Called on the thread whose poll failed, right after: the store's
         * last error on this thread is that failure. */
        const char *why = kw_store_last_error();
        kw_log_event(KW_LOG_WARN, "db_unreachable", json_pack("{s:s}", "error", why),
                     "database unreachable (%s): keys verified before keep being served from "
                     "memory for the degraded grace, writes answer 503", why);
        return;
    }
    double down = (double)(kw_now() - since) / 1e6;
    kw_log_event(KW_LOG_INFO, "db_recovered", json_pack("{s:f}", "down_seconds", down),
                 "database reachable again after %.1f s", down);
}

/* posthog-js's files: from the folder named (--js-dir, else
 * $KEYWARD_JS_DIR; "" for none), where a failure stops the start, or from
 * the build tree's copy (scripts/deps) when it is there. */
static int load_js(const char *dir, kw_jsfiles **out)
{
    char err[512];
    *out = NULL;
    if (dir && !*dir) return 0;
    if (dir) {
        if (!kw_jsfiles_load(dir, out, err, sizeof err)) return 0;
        fprintf(stderr, "keyward serve: --js-dir %s\n", err);
        return 1;
    }
#ifdef KW_DEFAULT_JS_DIR
    if (access(KW_DEFAULT_JS_DIR "/array.js", F_OK) == 0 &&
        kw_jsfiles_load(KW_DEFAULT_JS_DIR, out, err, sizeof err)) {
        fprintf(stderr, "keyward serve: posthog-js copy: %s\n", err);
        return 1;
    }
#endif
    return 0;
}

/* Checks of the settings' values (cli_config.h): NULL, or what it must be. */
static int long_in(const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < lo || n > hi) return 0;
    if (out) *out = n;
    return 1;
}
static const char *check_threads(const char *v)
{
    return long_in(v, 1, 256, NULL) ? NULL : "an integer 1-256";
}
static const char *check_conn_timeout(const char *v)
{
    return long_in(v, 1, 3600, NULL) ? NULL : "an integer 1-3600 (seconds)";
}
static const char *check_max_connections(const char *v)
{
    return long_in(v, 1, 65536, NULL) ? NULL : "an integer 1-65536";
}
static const char *check_ack_window(const char *v)
{
    return long_in(v, 0, 1000000, NULL) ? NULL : "an integer 0-1000000 (events)";
}
static const char *check_grace(const char *v)
{
    char *end;
    double d = strtod(v, &end);
    return end != v && !*end && d >= 0 && d <= 86400 ? NULL : "a number of seconds 0-86400";
}
static const char *check_log_format(const char *v)
{
    return strcmp(v, "text") == 0 || strcmp(v, "json") == 0 ? NULL : "text or json";
}
static const char *check_public_url(const char *v)
{
    char out[KW_PUBLIC_URL_MAX + 1];
    return !*v || !kw_http_public_url(v, out, sizeof out)
               ? NULL
               : "http:// or https:// followed by a host, without query or fragment, at most 512 "
                 "characters";
}

/* serve's settings: each is a flag (--KEY), a variable and a key of the
 * configuration file; flag > variable > file > default. */
enum { S_LISTEN, S_DB, S_THREADS, S_LEAK_KEYS, S_SECURE, S_GRACE, S_CONN_TIMEOUT, S_PUBLIC_URL,
       S_JS_DIR, S_METRICS, S_LOG_FORMAT, S_WEBHOOK_RETRY, S_WEBHOOK_PRIVATE, S_WEBHOOK_EXPIRING,
       S_MAX_CONNECTIONS, S_CAPTURE_ACK_WINDOW, S_ENDPOINT_TIMEOUT,
       S_COUNT };

/* A number in [lo, hi] (seconds or days), as the webhook settings take. */
static int double_in(const char *v, double lo, double hi, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= lo && d <= hi)) return 0;
    if (out) *out = d;
    return 1;
}
static const char *check_webhook_retry(const char *v)
{
    return double_in(v, 0.05, 3600, NULL) ? NULL : "a number of seconds 0.05-3600";
}
static const char *check_endpoint_timeout(const char *v)
{
    return double_in(v, 0.05, 3600, NULL) ? NULL : "a number of seconds 0.05-3600";
}
static const char *check_webhook_expiring(const char *v)
{
    return double_in(v, 0, 365, NULL) ? NULL : "a number of days 0-365";
}

int kw_cli_serve(int argc, char **argv)
{
    kw_setting set[S_COUNT] = {
        [S_LISTEN] = {.key = "listen", .env = "KEYWARD_LISTEN", .check = kw_config_check_hostport},
        [S_DB] = {.key = "db", .env = "KEYWARD_DATABASE_URL", .check = kw_config_check_nonempty},
        [S_THREADS] = {.key = "threads", .env = "KEYWARD_THREADS", .check = check_threads},
        [S_LEAK_KEYS] = {.key = "leak-report-keys", .env = "KEYWARD_LEAK_REPORT_KEYS",
                         .check = kw_config_check_nonempty},
        [S_SECURE] = {.key = "secure-cookies", .env = "KEYWARD_SECURE_COOKIES",
                      .check = kw_config_check_bool},
        [S_GRACE] = {.key = "degraded-grace", .env = "KEYWARD_DEGRADED_GRACE",
                     .check = check_grace},
        [S_CONN_TIMEOUT] = {.key = "conn-timeout", .env = "KEYWARD_CONN_TIMEOUT",
                            .check = check_conn_timeout},
        [S_MAX_CONNECTIONS] = {.key = "max-connections", .env = "KEYWARD_MAX_CONNECTIONS",
                               .check = check_max_connections},
        [S_CAPTURE_ACK_WINDOW] = {.key = "capture-ack-window", .env = "KEYWARD_CAPTURE_ACK_WINDOW",
                                  .check = check_ack_window},
        [S_ENDPOINT_TIMEOUT] = {.key = "endpoint-timeout", .env = "KEYWARD_ENDPOINT_TIMEOUT",
                                .check = check_endpoint_timeout},
        [S_PUBLIC_URL] = {.key = "public-url", .env = "KEYWARD_PUBLIC_URL",
                          .check = check_public_url},
        [S_JS_DIR] = {.key = "js-dir", .env = "KEYWARD_JS_DIR", .check = NULL, .empty_ok = 1},
        [S_METRICS] = {.key = "metrics-listen", .env = "KEYWARD_METRICS_LISTEN",
                       .check = kw_config_check_hostport},
        [S_LOG_FORMAT] = {.key = "log-format", .env = "KEYWARD_LOG_FORMAT",
                          .check = check_log_format},
        [S_WEBHOOK_RETRY] = {.key = "webhook-retry-base", .env = "KEYWARD_WEBHOOK_RETRY_BASE",
                             .check = check_webhook_retry},
        [S_WEBHOOK_PRIVATE] = {.key = "webhook-allow-private", .env = "KEYWARD_WEBHOOK_ALLOW_PRIVATE",
                               .check = kw_config_check_bool},
        [S_WEBHOOK_EXPIRING] = {.key = "webhook-expiring-days", .env = "KEYWARD_WEBHOOK_EXPIRING_DAYS",
                                .check = check_webhook_expiring},
    };
    /* getopt's value for each flag is the setting's index; these are not settings */
    enum { O_CONFIG = 256, O_HELP };
    static const struct option opts[] = {{"listen", required_argument, 0, S_LISTEN},
                                         {"db", required_argument, 0, S_DB},
                                         {"threads", required_argument, 0, S_THREADS},
                                         {"leak-report-keys", required_argument, 0, S_LEAK_KEYS},
                                         {"secure-cookies", no_argument, 0, S_SECURE},
                                         {"degraded-grace", required_argument, 0, S_GRACE},
                                         {"conn-timeout", required_argument, 0, S_CONN_TIMEOUT},
                                         {"max-connections", required_argument, 0, S_MAX_CONNECTIONS},
                                         {"capture-ack-window", required_argument, 0,
                                          S_CAPTURE_ACK_WINDOW},
                                         {"public-url", required_argument, 0, S_PUBLIC_URL},
                                         {"endpoint-timeout", required_argument, 0,
                                          S_ENDPOINT_TIMEOUT},
                                         /* operations */
                                         {"metrics-listen", required_argument, 0, S_METRICS},
                                         {"log-format", required_argument, 0, S_LOG_FORMAT},
                                         {"js-dir", required_argument, 0, S_JS_DIR},
                                         {"webhook-retry-base", required_argument, 0, S_WEBHOOK_RETRY},
                                         {"webhook-allow-private", no_argument, 0, S_WEBHOOK_PRIVATE},
                                         {"webhook-expiring-days", required_argument, 0,
                                          S_WEBHOOK_EXPIRING},
                                         {"config", required_argument, 0, O_CONFIG},
                                         {"help", no_argument, 0, O_HELP},
                                         {0, 0, 0, 0}};
    const char *config = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == O_HELP || c == 'h') {
            usage(stdout);
            return 0;
        }
        if (c == O_CONFIG) {
            config = optarg;
            continue;
        }
        if (c < 0 || c >= S_COUNT) {
            usage(stderr);
            return 2;
        }
        int bool_flag = c == S_SECURE || c == S_WEBHOOK_PRIVATE;
        if (kw_config_flag("serve", &set[c], bool_flag ? "true" : optarg)) return KW_CONFIG_EXIT;
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (!config) {
        config = getenv("KEYWARD_CONFIG");
        if (config && !*config) config = NULL;
    }
    if (kw_config_resolve("serve", set, S_COUNT, config, KW_DEFAULT_CONFIG)) {
        kw_config_free(set, S_COUNT);
        return KW_CONFIG_EXIT;
    }
    int rc = serve(set);
    kw_config_free(set, S_COUNT);
    return rc;
}

/* Runs the server with the resolved settings until SIGTERM/SIGINT. */
static int serve(const kw_setting *set)
{
    const char *listen = set[S_LISTEN].value;
    const char *leak_keys_path = set[S_LEAK_KEYS].value;
    const char *public_url = set[S_PUBLIC_URL].value;
    const char *js_dir = set[S_JS_DIR].value;
    const char *metrics_listen = set[S_METRICS].value;
    const char *log_format = set[S_LOG_FORMAT].value;
    int secure_cookies = set[S_SECURE].value && kw_config_bool(set[S_SECURE].value);
    double retry_s = 5, expiring_days = 7;
    if (set[S_WEBHOOK_RETRY].value) double_in(set[S_WEBHOOK_RETRY].value, 0.05, 3600, &retry_s);
    if (set[S_WEBHOOK_EXPIRING].value)
        double_in(set[S_WEBHOOK_EXPIRING].value, 0, 365, &expiring_days);
    kw_webhook_sender_opts webhook_opts = {
        (int64_t)(retry_s * 1e6),
        set[S_WEBHOOK_PRIVATE].value && kw_config_bool(set[S_WEBHOOK_PRIVATE].value),
        (int64_t)(expiring_days * 86400e6)};
    long threads = sysconf(_SC_NPROCESSORS_ONLN), conn_timeout = 30;
    if (set[S_THREADS].value) long_in(set[S_THREADS].value, 1, 256, &threads);
    if (threads < 1) threads = 1; /* sysconf failed */
    if (threads > 256) threads = 256;
    if (set[S_CONN_TIMEOUT].value) long_in(set[S_CONN_TIMEOUT].value, 1, 3600, &conn_timeout);
    long max_connections = 1024;
    if (set[S_MAX_CONNECTIONS].value)
        long_in(set[S_MAX_CONNECTIONS].value, 1, 65536, &max_connections);
    long ack_window = 0;
    if (set[S_CAPTURE_ACK_WINDOW].value)
        long_in(set[S_CAPTURE_ACK_WINDOW].value, 0, 1000000, &ack_window);
    double endpoint_s = KW_ENDPOINT_TIMEOUT_MS_DEFAULT / 1000.0;
    if (set[S_ENDPOINT_TIMEOUT].value)
        double_in(set[S_ENDPOINT_TIMEOUT].value, 0.05, 3600, &endpoint_s);
    double grace_s = set[S_GRACE].value ? strtod(set[S_GRACE].value, NULL) : 30;
    if (log_format && *log_format && kw_log_set_format(log_format)) {
        fprintf(stderr, "keyward serve: --log-format must be text or json\n");
        return 2;
    }
    if (!listen || !*listen) listen = "127.0.0.1:8000";
    char public_base[KW_PUBLIC_URL_MAX + 1] = "";
    if (public_url && *public_url &&
        kw_http_public_url(public_url, public_base, sizeof public_base)) {
        kw_log_event(KW_LOG_ERROR, "config", NULL,
                     "--public-url must be http:// or https:// followed by a host, without query "
                     "or fragment, at most %d characters", KW_PUBLIC_URL_MAX);
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

    kw_jsfiles *js = NULL;
    if (load_js(js_dir, &js)) return 1;
    kw_leak_keys *leak_keys = NULL;
    if (leak_keys_path) {
        char err[320];
        if (kw_leak_keys_load(leak_keys_path, &leak_keys, err, sizeof err)) {
            kw_log_event(KW_LOG_ERROR, "config", NULL, "--leak-report-keys %s", err);
            kw_jsfiles_free(js);
            return 1;
        }
    }
    const char *url = kw_cli_db_url(set[S_DB].value);
    kw_store *store = NULL;
    int open_rc = kw_store_open(url, &store);
    if (open_rc) {
        /* Never echo a postgresql:// URL: it may carry a password. */
        kw_log_event(KW_LOG_ERROR, "start_failed", NULL, "cannot open database %s: %s",
                     strncmp(url, "postgres", 8) == 0 ? "(PostgreSQL URL)" : url,
                     kw_strerror(open_rc));
        kw_leak_keys_free(leak_keys);
        kw_jsfiles_free(js);
        return 1;
    }
    kw_app app = {.store = store, .max_body = KW_MAX_BODY, .leak_keys = leak_keys,
                  .secure_cookies = secure_cookies, .conn_timeout = (unsigned)conn_timeout,
                  .max_connections = (unsigned)max_connections,
                  .capture_ack_window = (unsigned)ack_window,
                  .endpoint_timeout_ms = (int64_t)(endpoint_s * 1000 + 0.5),
                  .public_url = public_base[0] ? public_base : NULL, .js = js};
    int rc = kw_flagcache_new(store, FLAGCACHE_PROJECTS, FLAGCACHE_TTL_US, &app.flags);
    if (!rc) rc = kw_directory_new(store, &app.directory);
    if (!rc) rc = kw_verifier_new(store, &app.verifier);
    if (!rc) rc = kw_sessions_new(store, &app.sessions);
    if (!rc) rc = kw_leak_guard_new(&app.leak_guard);
    if (rc) {
        kw_log_event(KW_LOG_ERROR, "start_failed", NULL, "%s", kw_strerror(rc));
        teardown(&app, leak_keys);
        return 1;
    }
    /* Flag and directory writes by other processes are noticed at the
     * verifier's poll. */
    kw_flagcache_poll(app.flags);
    kw_verifier_set_grace(app.verifier, (int64_t)(grace_s * 1e6));
    kw_flagcache_set_grace(app.flags, (int64_t)(grace_s * 1e6));
    kw_verifier_on_poll(app.verifier, poll_caches, &app);
    static const kw_db_watch DB_WATCH = {db_state_changed, NULL};
    kw_verifier_watch_db(app.verifier, &DB_WATCH);
    kw_server *server;
    char err[256];
    if (kw_server_start(&app, listen, (unsigned)threads, &server, err, sizeof err)) {
        kw_log_event(KW_LOG_ERROR, "start_failed", NULL, "%s", err);
        teardown(&app, leak_keys);
        return 1;
    }
    kw_server *metrics = NULL;
    if (metrics_listen && *metrics_listen &&
        kw_metrics_server_start(&app, metrics_listen, &metrics, err, sizeof err)) {
        kw_log_event(KW_LOG_ERROR, "start_failed", NULL, "--metrics-listen: %s", err);
        kw_server_stop(server);
        teardown(&app, leak_keys);
        return 1;
    }
    kw_webhook_sender *sender = NULL;
    rc = kw_webhook_sender_start(store, &webhook_opts, &sender);
    if (rc) {
        kw_log_event(KW_LOG_ERROR, "start_failed", NULL, "webhook sender: %s", kw_strerror(rc));
        kw_server_stop(metrics);
        kw_server_stop(server);
        teardown(&app, leak_keys);
        return 1;
    }
    /* The start line goes out before the listening line: once a client has
     * read the port it may send requests, and their access lines must follow it. */
    kw_log_event(KW_LOG_INFO, "start",
                 json_pack("{s:s, s:s, s:i, s:s, s:i, s:f}", "version", KW_VERSION, "listen",
                           listen, "port", (int)kw_server_port(server), "backend",
                           kw_store_backend(store), "metrics_port",
                           metrics ? (int)kw_server_port(metrics) : 0, "degraded_grace_seconds",
                           grace_s),
                 NULL);
    char host[128];
    snprintf(host, sizeof host, "%.*s", (int)(strrchr(listen, ':') - listen), listen);
    printf("keyward %s listening on http://%s:%u (%s store)\n", KW_VERSION, host[0] ? host : "127.0.0.1",
           kw_server_port(server), kw_store_backend(store));
    if (metrics) {
        int hl = (int)(strrchr(metrics_listen, ':') - metrics_listen);
        printf("keyward metrics on http://%.*s:%u/metrics\n", hl ? hl : 9,
               hl ? metrics_listen : "127.0.0.1", kw_server_port(metrics));
    }
    fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    kw_log_event(KW_LOG_INFO, "stop", json_pack("{s:s}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
                 "%s received, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    kw_server_stop(metrics);
    kw_server_stop(server);
    kw_webhook_sender_stop(sender);
    teardown(&app, leak_keys);
    kw_log_event(KW_LOG_INFO, "stopped", NULL, NULL);
    return 0;
}
