/* fuzz_http.c — keyward's HTTP server, in process, over loopback TCP.
 *
 * LLVMFuzzerInitialize bootstraps a temp SQLite database (kw_bootstrap: a
 * user, organization, project and a phx_ key with scope "*"), adds a
 * second key and a flag, and starts the real server (kw_server_start, the
 * MHD thread pool of `keyward serve`) on 127.0.0.1 port 0.
 * Input: byte 0 bit 0 clear → the rest is sent as raw bytes (request
 * line, headers, body: everything fuzzed).  Bit 0 set → a request built
 * from the route table (kw_policy_routes), so every route is reached the
 * way an attacker reaches it:
 *   byte 0 bits 1-3: the credential, one of every kind: none, the phx_
 *     key (Authorization), a phs_ key, the project's phc_ token (in the
 *     JSON body, as the SDKs send it), a console session (cookie + CSRF);
 *     bit 4: ":project" as @current; bit 5: send the body (Content-Length);
 *   byte 1: the route (index into the table; every pattern parameter is
 *     filled with a real id: project, organization, key, flag, user);
 *   bytes 2-3: n, the length of the query section (little-endian); those
 *     n bytes become query parameters, the rest of the input the body.
 * A query parameter is [sel][len lo][len hi][mode] then its bytes: sel
 * names it (a name some handler reads, or p<sel>), len is the value's
 * length (up to 65535: long values are one mutation away), and mode says
 * how the value is made: 0 = len copies of one byte, 1 = input bytes, each
 * percent-encoded (NUL → %00), 2 = input bytes as they come (a stray % is
 * sent as is), 3 = no value at all ("?name"); mode bit 2 sends the
 * parameter twice.
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
 * After each structured input the database is put back (created rows
 * removed, the bootstrap key and the flag restored, the phs_ key and the
 * session made again when a request revoked them); DELETE of a project or
 * an organization is sent to a spare one, made again once deleted, since a
 * deletion takes the flags and keys with it. */
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
#include "keyward/narrow.h"
#include "keyward/service.h"
#include "keyward/session.h"

static kw_store *store;
static kw_app app;
static kw_server *server;
static unsigned port;
static char boot_value[KW_KEY_LEN + 1];
static kw_pkey boot_key, other_key;
static kw_flag flag;
static kw_project project;
static kw_user user;
static kw_psk psk;
static char psk_value[KW_KEY_LEN + 1];
static kw_login login;
static const kw_route *table;
static size_t table_len;
static char cleanup_sql[1024];
/* DELETE /api/projects/:project and DELETE /api/organizations/:org go to
 * these, never to the project and organization every other route works
 * on: a deletion takes their flags and keys with it, which restore_state
 * could not put back.  Each is made again once deleted. */
static int64_t spare_project_id;
static char spare_org_id[KW_ID_LEN + 1];

static void make_spare_org(void)
{
    kw_org org;
    memset(&org, 0, sizeof org);
    snprintf(org.name, sizeof org.name, "spare org");
    FZ_CHECK(kw_store_org_create(store, &org) == KW_OK &&
             kw_store_membership_set(store, user.id, org.id, KW_LEVEL_OWNER) == KW_OK, "spare org");
    snprintf(spare_org_id, sizeof spare_org_id, "%s", org.id);
}

static void make_spare_project(void)
{
    kw_project spare;
    memset(&spare, 0, sizeof spare);
    snprintf(spare.org_id, sizeof spare.org_id, "%s", project.org_id);
    snprintf(spare.name, sizeof spare.name, "spare");
    FZ_CHECK(kw_key_generate(KW_KEY_PROJECT, spare.api_token) == KW_OK, "spare token");
    FZ_CHECK(kw_store_project_create(store, &spare) == KW_OK, "spare project");
    spare_project_id = spare.id;
}

#define PASSWORD "fuzz-password-Long-enough-1"
/* Names some handler reads (kw_req_query), plus the credential's. */
static const char *const PARAMS[] = {"compression", "cursor", "item_id", "limit", "offset",
                                     "ordering", "page", "page_size", "personal_api_key",
                                     "rotation_days", "scope", "scopes", "token", "user", "v",
                                     "variables"};
#define N_PARAMS (sizeof PARAMS / sizeof PARAMS[0])

static int find_boot(void *ctx, const kw_pkey *k)
{
    (void)ctx;
    if (strcmp(k->label, "keyward init") == 0) boot_key = *k;
    return 0;
}

/* The bootstrap user signed in: what the harness acts as to restore state. */
static void signed_in_admin(kw_principal *admin)
{
    kw_narrow_person(admin, NULL);
    admin->user_id = user.id;
}

/* A console session for the session credential (again after a request
 * signed it out, deactivated the user or changed the password). */
static void sign_in(void)
{
    kw_principal pr;
    if (login.token[0] && kw_session_resolve(app.sessions, login.token, &pr) == KW_VERIFY_OK) return;
    kw_principal admin;
    signed_in_admin(&admin);
    kw_call c = {.store = store, .actor = &admin};
    kw_problem p;
    FZ_CHECK(kw_user_set_password(&c, user.id, PASSWORD, &p) == 0, "password: %s", p.detail);
    json_t *body = json_pack("{s:s, s:s}", "email", user.email, "password", PASSWORD);
    int retry = 0;
    FZ_CHECK(kw_session_login(app.sessions, "127.0.0.1", body, &login, &retry, &p) == 0,
             "login: %s", p.detail);
    json_decref(body);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    store = kw_fz_temp_store();
    kw_problem p;
    FZ_CHECK(kw_bootstrap(store, "fuzz@example.com", "Fuzz org", "Fuzz project", &user, &project,
                          boot_value, &p) == 0, "bootstrap: %s", p.detail);
    FZ_CHECK(kw_store_pkey_list(store, user.id, find_boot, NULL) == KW_OK && boot_key.id[0], "boot key");
    make_spare_project();
    make_spare_org();
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

    body = json_pack("{s:s, s:[s,s]}", "label", "fuzz psk", "scopes", "feature_flag:read",
                     "endpoint:read");
    FZ_CHECK(kw_psk_create(&c, &project, body, &psk, psk_value, &p) == 0, "psk: %s", p.detail);
    json_decref(body);
    FZ_CHECK(kw_user_set_password(&c, user.id, PASSWORD, &p) == 0, "password: %s", p.detail);
    table = kw_policy_routes(&table_len);
    snprintf(cleanup_sql, sizeof cleanup_sql,
             "DELETE FROM activity_log; DELETE FROM feature_flags WHERE id <> %lld; "
             "DELETE FROM personal_api_keys WHERE id NOT IN ('%s', '%s'); "
             "DELETE FROM endpoints; DELETE FROM invites; DELETE FROM login_attempts; "
             "UPDATE users SET is_active = 1;",
             (long long)flag.id, boot_key.id, other_key.id);

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
    FZ_CHECK(kw_sessions_new(store, &app.sessions) == KW_OK, "sessions");
    /* as `keyward serve` sets it up (a short TTL: restore_state writes
     * the flag back behind the cache's back) */
    FZ_CHECK(kw_flagcache_new(store, 64, 1000, &app.flags) == KW_OK, "flag cache");
    sign_in();
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
    kw_project spare;
    if (kw_store_project_get(store, spare_project_id, &spare) == KW_ERR_NOTFOUND) make_spare_project();
    kw_org spare_org;
    if (kw_store_org_get(store, spare_org_id, &spare_org) == KW_ERR_NOTFOUND) make_spare_org();
    FZ_CHECK(kw_store_pkey_update(store, &boot_key) == KW_OK, "restore boot key");
    kw_flag copy = flag;
    copy.filters = strdup(flag.filters);
    FZ_CHECK(copy.filters && kw_store_flag_update(store, &copy) == KW_OK, "restore flag");
    kw_flag_clear(&copy);
    /* The phs_ key: deleted or rolled by a request → a new one. */
    kw_psk now;
    if (kw_store_psk_get(store, project.id, psk.id, &now) != KW_OK ||
        strcmp(now.secure_value, psk.secure_value) != 0) {
        kw_fz_sql("DELETE FROM project_secret_api_keys;");
        kw_principal admin;
        signed_in_admin(&admin);
        kw_call c = {.store = store, .actor = &admin};
        kw_problem p;
        json_t *body = json_pack("{s:s, s:[s]}", "label", "fuzz psk", "scopes", "feature_flag:read");
        FZ_CHECK(kw_psk_create(&c, &project, body, &psk, psk_value, &p) == 0, "psk: %s", p.detail);
        json_decref(body);
    }
    /* reset_token gives the project a new phc_ token: use that one. */
    FZ_CHECK(kw_store_project_get(store, project.id, &project) == KW_OK, "project");
    sign_in();
}

/* Appends one query parameter built from the input (see the header). */
static size_t add_param(kw_fz_buf *q, const uint8_t *d, size_t n)
{
    if (n < 4) return n;
    unsigned sel = d[0], len = d[1] | (unsigned)d[2] << 8, mode = d[3];
    d += 4;
    n -= 4;
    size_t used = 4;
    char name[16];
    if (sel < 0xf0)
        snprintf(name, sizeof name, "%s", PARAMS[sel % N_PARAMS]);
    else
        snprintf(name, sizeof name, "p%u", sel & 15);
    kw_fz_buf value = {0};
    switch (mode & 3) {
    case 0: {
        char c = n ? (char)d[0] : 'A';
        if (c == ' ' || c == '\r' || c == '\n' || c == '#' || c == '&' || c == '%' || c == 0) c = 'A';
        if (n) used++;
        for (unsigned i = 0; i < len; i++) kw_fz_buf_append(&value, &c, 1);
        break;
    }
    case 1:
    case 2: {
        size_t take = len < n ? len : n;
        for (size_t i = 0; i < take; i++) {
            unsigned char c = d[i];
            int keep = (mode & 3) == 2 && c > 0x20 && c < 0x7f && c != '#' && c != '&';
            if (keep) {
                kw_fz_buf_append(&value, &c, 1);
            } else {
                char esc[4];
                snprintf(esc, sizeof esc, "%%%02X", c);
                kw_fz_buf_append(&value, esc, 3);
            }
        }
        used += take;
        break;
    }
    default:
        break;
    }
    for (int times = (mode & 4) ? 2 : 1; times > 0; times--) {
        kw_fz_buf_append(q, q->len ? "&" : "?", 1);
        kw_fz_buf_append(q, name, strlen(name));
        if ((mode & 3) != 3) {
            kw_fz_buf_append(q, "=", 1);
            if (value.len) kw_fz_buf_append(q, value.data, value.len);
        }
    }
    kw_fz_buf_free(&value);
    return used;
}

/* The route's path with every parameter filled with a real id. */
static void fill_path(kw_fz_buf *out, const kw_route *r, int current)
{
    char id[160];
    const char *pat = r->pattern;
    if (strstr(pat, "/personal_api_keys/:id"))
        snprintf(id, sizeof id, "%s", other_key.id);
    else if (strstr(pat, "/project_secret_api_keys/:id"))
        snprintf(id, sizeof id, "%s", psk.id);
    else if (strstr(pat, "/users/:id"))
        snprintf(id, sizeof id, "%lld", (long long)user.id);
    else if (strstr(pat, "/feature_flags/:id"))
        snprintf(id, sizeof id, "%s", flag.key);
    else
        snprintf(id, sizeof id, "x");
    for (const char *c = pat; *c;) {
        char val[160];
        const char *param = NULL;
        size_t plen = 0;
        if (strncmp(c, ":project", 8) == 0) {
            if (r->id == KW_ROUTE_PROJECT_DELETE)
                snprintf(val, sizeof val, "%lld", (long long)spare_project_id);
            else if (current)
                snprintf(val, sizeof val, "@current");
            else
                snprintf(val, sizeof val, "%lld", (long long)project.id);
            param = val, plen = 8;
        } else if (strncmp(c, ":org", 4) == 0) {
            snprintf(val, sizeof val, "%s", r->id == KW_ROUTE_ORG_DELETE ? spare_org_id : project.org_id);
            param = val, plen = 4;
        } else if (strncmp(c, ":num", 4) == 0) {
            snprintf(val, sizeof val, "%lld", (long long)flag.id);
            param = val, plen = 4;
        } else if (strncmp(c, ":id", 3) == 0) {
            param = id, plen = 3;
        }
        if (param) {
            kw_fz_buf_append(out, param, strlen(param));
            c += plen;
        } else {
            kw_fz_buf_append(out, c, 1);
            c++;
        }
    }
    if (strcmp(pat, "/") != 0) kw_fz_buf_append(out, "/", 1);
}

/* The phc_ token goes into a JSON object body; any other body is sent as
 * it came (the route then answers the missing token). */
static void add_project_token(kw_fz_buf *body, const uint8_t *d, size_t n)
{
    json_t *j = json_loadb((const char *)d, n, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
        json_object_set_new(j, "event", json_string("fuzz"));
    }
    json_object_set_new(j, "api_key", json_string(project.api_token));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text) kw_fz_buf_append(body, text, strlen(text));
    free(text);
}

/* A request from the route table (byte 0 bit 0 set; see the header). */
static void build_request(kw_fz_buf *req, const uint8_t *data, size_t size)
{
    unsigned mode = data[0];
    unsigned cred = (mode >> 1) & 7;
    const kw_route *r = &table[(size > 1 ? data[1] : 0) % table_len];
    size_t qlen = size > 3 ? (size_t)(data[2] | data[3] << 8) : 0;
    const uint8_t *rest = data + (size > 4 ? 4 : size);
    size_t rest_len = size > 4 ? size - 4 : 0;
    if (qlen > rest_len) qlen = rest_len;
    kw_fz_buf path = {0}, query = {0}, body = {0};
    fill_path(&path, r, mode & 0x10);
    for (size_t off = 0, items = 0; off < qlen && items < 80; items++)
        off += add_param(&query, rest + off, qlen - off);
    rest += qlen;
    rest_len -= qlen;
    if (cred % 5 == 3)
        add_project_token(&body, rest, rest_len);
    else if (rest_len)
        kw_fz_buf_append(&body, rest, rest_len);

    kw_fz_buf_append(req, r->method, strlen(r->method));
    kw_fz_buf_append(req, " ", 1);
    kw_fz_buf_append(req, path.data, path.len);
    if (query.len) kw_fz_buf_append(req, query.data, query.len);
    char head[512];
    int n = snprintf(head, sizeof head, " HTTP/1.1\r\nHost: localhost\r\n");
    kw_fz_buf_append(req, head, (size_t)n);
    switch (cred % 5) {
    case 1:
        n = snprintf(head, sizeof head, "Authorization: Bearer %s\r\n", boot_value);
        break;
    case 2:
        n = snprintf(head, sizeof head, "Authorization: Bearer %s\r\n", psk_value);
        break;
    case 4:
        n = snprintf(head, sizeof head, "Cookie: %s=%s\r\nX-CSRFToken: %s\r\n", KW_SESSION_COOKIE,
                     login.token, login.csrf);
        break;
    default:
        n = 0;
    }
    if (n > 0) kw_fz_buf_append(req, head, (size_t)n);
    if ((mode & 0x20) || cred % 5 == 3) {
        n = snprintf(head, sizeof head, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                     body.len);
        kw_fz_buf_append(req, head, (size_t)n);
    }
    kw_fz_buf_append(req, "Connection: close\r\n\r\n", 21);
    if (((mode & 0x20) || cred % 5 == 3) && body.len) kw_fz_buf_append(req, body.data, body.len);
    kw_fz_buf_free(&path);
    kw_fz_buf_free(&query);
    kw_fz_buf_free(&body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    kw_fz_buf req = {0};
    int structured = data[0] & 1;
    if (structured)
        build_request(&req, data, size);
    else
        kw_fz_buf_append(&req, data + 1, size - 1);

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
    if (structured) restore_state();
    kw_fz_buf_free(&in);
    kw_fz_buf_free(&req);
    return 0;
}
