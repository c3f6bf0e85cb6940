/* openapi.c — the OpenAPI 3.1 description of the HTTP API, served at
 * GET /api/schema/ (as PostHog serves its own) and printed by
 * `keyward schema`.
 *
 * It is generated from the route table, so it cannot drift from what the
 * server does: every row of lib/policy/policy.c becomes one operation, its
 * path and method as the server matches them, its `security` from the
 * credentials the row accepts, `x-required-scope` and `x-required-level`
 * from the row, and the error answers the dispatcher gives on that row
 * (401 without a usable credential, 403 for a missing scope or level,
 * 404 for an object out of reach, 429 for a key's rate limit, 503 while
 * the database is unreachable), all in the one error shape.  What only a
 * handler knows — the success status and the shape of its body — is the
 * switch in success_of, which has no default: a new route the switch does
 * not name is a compiler warning (an error in every checked build).
 *
 * The document is built once per process (the public URL, when set, is
 * its server) and kept; the route answers it with an ETag. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/strbuf.h"

struct success {
    int status;
    const char *schema;  /* a component name; NULL: no body (204) */
    const char *media;   /* NULL: application/json */
};

#define JS "text/javascript"
#define HTML "text/html"

/* -Wswitch made an error here, in every build: a route the switch does
 * not name does not compile (tests/check_handler_table.sh checks it). */
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Wswitch"
static struct success success_of(kw_route_id id)
{
    switch (id) {
    case KW_ROUTE_HEALTH: return (struct success){200, "Health", NULL};
    case KW_ROUTE_HEALTH_READY: return (struct success){200, "Readiness", NULL};
    case KW_ROUTE_SCHEMA: return (struct success){200, "Object", NULL};
    case KW_ROUTE_ME: return (struct success){200, "User", NULL};
    case KW_ROUTE_USER_UPDATE: return (struct success){200, "User", NULL};
    case KW_ROUTE_PROJECT_LIST: return (struct success){200, "ProjectPage", NULL};
    case KW_ROUTE_ORG_PROJECT_LIST: return (struct success){200, "ProjectPage", NULL};
    case KW_ROUTE_PROJECT_GET: return (struct success){200, "Project", NULL};
    case KW_ROUTE_PROJECT_UPDATE: return (struct success){200, "Project", NULL};
    case KW_ROUTE_PROJECT_RESET_TOKEN: return (struct success){200, "Project", NULL};
    case KW_ROUTE_PROJECT_CREATE: return (struct success){201, "Project", NULL};
    case KW_ROUTE_ORG_PROJECT_CREATE: return (struct success){201, "Project", NULL};
    case KW_ROUTE_PROJECT_DELETE: return (struct success){204, NULL, NULL};
    case KW_ROUTE_PKEY_LIST: return (struct success){200, "PersonalAPIKeyList", NULL};
    case KW_ROUTE_PKEY_CREATE: return (struct success){201, "PersonalAPIKey", NULL};
    case KW_ROUTE_PKEY_CURRENT: return (struct success){200, "PersonalAPIKey", NULL};
    case KW_ROUTE_PKEY_GET: return (struct success){200, "PersonalAPIKey", NULL};
    case KW_ROUTE_PKEY_UPDATE: return (struct success){200, "PersonalAPIKey", NULL};
    case KW_ROUTE_PKEY_ROLL: return (struct success){200, "PersonalAPIKey", NULL};
    case KW_ROUTE_PKEY_DELETE: return (struct success){204, NULL, NULL};
    case KW_ROUTE_PKEY_REPORT: return (struct success){200, "Object", NULL};
    case KW_ROUTE_KEY_REPORT: return (struct success){200, "Object", NULL};
    case KW_ROUTE_PSK_LIST: return (struct success){200, "ProjectSecretAPIKeyPage", NULL};
    case KW_ROUTE_PSK_CREATE: return (struct success){201, "ProjectSecretAPIKey", NULL};
    case KW_ROUTE_PSK_GET: return (struct success){200, "ProjectSecretAPIKey", NULL};
    case KW_ROUTE_PSK_UPDATE: return (struct success){200, "ProjectSecretAPIKey", NULL};
    case KW_ROUTE_PSK_ROLL: return (struct success){200, "ProjectSecretAPIKey", NULL};
    case KW_ROUTE_PSK_DELETE: return (struct success){204, NULL, NULL};
    case KW_ROUTE_FLAG_DEFS_PROJECT: return (struct success){200, "FlagDefinitions", NULL};
    case KW_ROUTE_FLAG_DEFS_LEGACY: return (struct success){200, "FlagDefinitions", NULL};
    case KW_ROUTE_FLAG_DEFS: return (struct success){200, "FlagDefinitions", NULL};
    case KW_ROUTE_FLAG_REMOTE_CONFIG: return (struct success){200, "Any", NULL};
    case KW_ROUTE_FLAG_LIST: return (struct success){200, "FeatureFlagPage", NULL};
    case KW_ROUTE_FLAG_CREATE: return (struct success){201, "FeatureFlag", NULL};
    case KW_ROUTE_FLAG_GET: return (struct success){200, "FeatureFlag", NULL};
    case KW_ROUTE_FLAG_UPDATE: return (struct success){200, "FeatureFlag", NULL};
    case KW_ROUTE_FLAG_DELETE: return (struct success){204, NULL, NULL};
    case KW_ROUTE_ACTIVITY_LIST: return (struct success){200, "Page", NULL};
    case KW_ROUTE_LEAK_REPORT: return (struct success){200, "Any", NULL};
    case KW_ROUTE_LEAK_VERIFY: return (struct success){200, "Any", NULL};
    case KW_ROUTE_FLAGS_EVAL: return (struct success){200, "FlagsAnswer", NULL};
    case KW_ROUTE_DECIDE: return (struct success){200, "Object", NULL};
    case KW_ROUTE_CAPTURE_E: return (struct success){200, "CaptureAnswer", NULL};
    case KW_ROUTE_CAPTURE_I_V0_E: return (struct success){200, "CaptureAnswer", NULL};
    case KW_ROUTE_CAPTURE_BATCH: return (struct success){200, "CaptureAnswer", NULL};
    case KW_ROUTE_CAPTURE_CAPTURE: return (struct success){200, "CaptureAnswer", NULL};
    case KW_ROUTE_CAPTURE_TRACK: return (struct success){200, "CaptureAnswer", NULL};
    case KW_ROUTE_CAPTURE_ENGAGE: return (struct success){200, "CaptureAnswer", NULL};
    case KW_ROUTE_CAPTURE_AI: return (struct success){200, "CaptureAnswer", NULL};
    case KW_ROUTE_CAPTURE_V1: return (struct success){200, "CaptureV1Answer", NULL};
    case KW_ROUTE_ENDPOINT_LIST: return (struct success){200, "Page", NULL};
    case KW_ROUTE_ENDPOINT_CREATE: return (struct success){201, "Object", NULL};
    case KW_ROUTE_ENDPOINT_GET: return (struct success){200, "Object", NULL};
    case KW_ROUTE_ENDPOINT_UPDATE: return (struct success){200, "Object", NULL};
    case KW_ROUTE_ENDPOINT_DELETE: return (struct success){204, NULL, NULL};
    case KW_ROUTE_ENDPOINT_RUN_GET: return (struct success){200, "Object", NULL};
    case KW_ROUTE_ENDPOINT_RUN_POST: return (struct success){200, "Object", NULL};
    case KW_ROUTE_LOGIN: return (struct success){200, "Object", NULL};
    case KW_ROUTE_LOGOUT: return (struct success){204, NULL, NULL};
    case KW_ROUTE_SESSION: return (struct success){200, "Object", NULL};
    case KW_ROUTE_INVITE_CREATE: return (struct success){201, "Object", NULL};
    case KW_ROUTE_INVITE_LIST: return (struct success){200, "Page", NULL};
    case KW_ROUTE_INVITE_DELETE: return (struct success){204, NULL, NULL};
    case KW_ROUTE_INVITE_ACCEPT: return (struct success){201, "Object", NULL};
    case KW_ROUTE_INVITE_GET: return (struct success){200, "Object", NULL};
    case KW_ROUTE_CONSOLE: return (struct success){200, "Text", HTML};
    case KW_ROUTE_CONSOLE_INVITE: return (struct success){200, "Text", HTML};
    case KW_ROUTE_CONSOLE_ASSET: return (struct success){200, "Text", "*/*"};
    case KW_ROUTE_ORG_LIST: return (struct success){200, "OrganizationPage", NULL};
    case KW_ROUTE_ORG_CREATE: return (struct success){201, "Organization", NULL};
    case KW_ROUTE_ORG_GET: return (struct success){200, "Organization", NULL};
    case KW_ROUTE_ORG_UPDATE: return (struct success){200, "Organization", NULL};
    case KW_ROUTE_ORG_DELETE: return (struct success){204, NULL, NULL};
    case KW_ROUTE_MEMBER_LIST: return (struct success){200, "Page", NULL};
    case KW_ROUTE_MEMBER_UPDATE: return (struct success){200, "Object", NULL};
    case KW_ROUTE_MEMBER_DELETE: return (struct success){204, NULL, NULL};
    case KW_ROUTE_REMOTE_CONFIG: return (struct success){200, "Object", NULL};
    case KW_ROUTE_REMOTE_CONFIG_JS: return (struct success){200, "Text", JS};
    case KW_ROUTE_STATIC_JS: return (struct success){200, "Text", JS};
    case KW_ROUTE_STATIC_JS_VERSIONED: return (struct success){200, "Text", JS};
    case KW_ROUTE_GROUP_TYPES_LIST: return (struct success){200, "Any", NULL};
    case KW_ROUTE_GROUP_TYPES_RENAME: return (struct success){200, "Any", NULL};
    case KW_ROUTE_WEBHOOK_LIST: return (struct success){200, "WebhookPage", NULL};
    case KW_ROUTE_WEBHOOK_CREATE: return (struct success){201, "Webhook", NULL};
    case KW_ROUTE_WEBHOOK_GET: return (struct success){200, "Webhook", NULL};
    case KW_ROUTE_WEBHOOK_UPDATE: return (struct success){200, "Webhook", NULL};
    case KW_ROUTE_WEBHOOK_DELETE: return (struct success){204, NULL, NULL};
    case KW_ROUTE_WEBHOOK_DELIVERIES: return (struct success){200, "Page", NULL};
    case KW_ROUTE_WEBHOOK_TEST: return (struct success){202, "Object", NULL};
    case KW_ROUTE_COUNT: break;
    }
    return (struct success){0, NULL, NULL};
}
#pragma GCC diagnostic pop

/* ":project" → "{project_id}" and so on; PostHog's API paths end in "/",
 * which is the form listed (the server takes both). */
static void openapi_path(const char *pattern, char *out, size_t size)
{
    static const struct {
        const char *segment, *name;
    } PARAMS[] = {{":project", "{project_id}"}, {":org", "{organization_id}"}, {":id", "{id}"},
                  {":num", "{id}"},             {":any", "{version}"}};
    kw_strbuf sb;
    kw_sb_init(&sb, out, size);
    const char *p = pattern;
    while (*p) {
        size_t n = strcspn(p + 1, "/") + 1;
        const char *name = NULL;
        if (p[1] == ':')
            for (size_t i = 0; i < sizeof PARAMS / sizeof PARAMS[0]; i++)
                if (strlen(PARAMS[i].segment) == n - 1 && !strncmp(p + 1, PARAMS[i].segment, n - 1))
                    name = PARAMS[i].name;
        if (name) {
            KW_SB_LIT(&sb, "/");
            kw_sb_append(&sb, name);
        } else {
            kw_sb_appendn(&sb, p, n);
        }
        p += n;
    }
    /* Files and the console's pages are named without the slash. */
    static const char *const FILES[] = {"/assets/", "/static/", "/array/", "/invite/"};
    int file = strcmp(pattern, "/") == 0;
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++)
        file |= strncmp(pattern, FILES[i], strlen(FILES[i])) == 0;
    if (!file) KW_SB_LIT(&sb, "/");
}

static json_t *ref(const char *name)
{
    char text[128];
    snprintf(text, sizeof text, "#/components/schemas/%s", name);
    return json_pack("{s:s}", "$ref", text);
}

static json_t *error_response(const char *description)
{
    return json_pack("{s:s, s:{s:{s:o}}}", "description", description, "content",
                     "application/json", "schema", ref("Error"));
}

static json_t *operation(const kw_route *r, const char *path)
{
    struct success ok = success_of(r->id);
    json_t *responses = json_object();
    char status[8];
    snprintf(status, sizeof status, "%d", ok.status);
    json_object_set_new(responses, status,
                        ok.schema ? json_pack("{s:s, s:{s:{s:o}}}", "description", "Success",
                                              "content", ok.media ? ok.media : "application/json",
                                              "schema", ref(ok.schema))
                                  : json_pack("{s:s}", "description", "Done; no body"));
    int anonymous = r->credentials & KW_CRED_NONE;
    int has_body = !strcmp(r->method, "POST") || !strcmp(r->method, "PATCH");
    /* Every route can meet every refusal the dispatcher gives (the query
     * string and body checks run on all of them; a legacy key's check, a
     * sign-in or a leak report have budgets of their own), so each lists
     * them all, in the one error shape. */
    static const struct {
        const char *status, *description;
    } ERRORS[] = {
        {"400", "Bad input (body, query string); nothing changed"},
        {"401", "No usable credential, or a refused one"},
        {"403", "A scope, level or organization the caller lacks"},
        {"404", "Not found, or out of the caller's reach"},
        {"413", "The body is too large"},
        {"415", "A body in an encoding the route does not take"},
        {"429", "Throttled: a key's rate limit or a budget (Retry-After)"},
        {"500", "A server error"},
        {"503", "The database is unreachable, or the server is at its limits (Retry-After)"},
    };
    for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++)
        json_object_set_new(responses, ERRORS[i].status, error_response(ERRORS[i].description));
    if (r->id == KW_ROUTE_ENDPOINT_RUN_GET || r->id == KW_ROUTE_ENDPOINT_RUN_POST)
        json_object_set_new(responses, "504",
                            error_response("The query ran past the time limit for endpoint runs "
                                           "(query_timeout)"));
    if (r->id == KW_ROUTE_HEALTH_READY)  /* degraded: its own body, not a problem */
        json_object_set_new(responses, "503",
                            json_pack("{s:s, s:{s:{s:o}}}", "description", "Degraded", "content",
                                      "application/json", "schema", ref("Readiness")));
    if (!strcmp(r->method, "GET"))
        json_object_set_new(responses, "304",
                            json_pack("{s:s}", "description", "Not modified (If-None-Match)"));

    json_t *security = json_array();
    static const struct {
        unsigned bit;
        const char *scheme;
    } SCHEMES[] = {{KW_CRED_PERSONAL, "PersonalAPIKey"}, {KW_CRED_SESSION, "Session"},
                   {KW_CRED_SECRET, "ProjectSecretKey"}, {KW_CRED_PROJECT, "ProjectToken"}};
    for (size_t i = 0; i < sizeof SCHEMES / sizeof SCHEMES[0]; i++)
        if (r->credentials & SCHEMES[i].bit)
            json_array_append_new(security, json_pack("{s:[]}", SCHEMES[i].scheme));
    if (anonymous && json_array_size(security)) json_array_append_new(security, json_object());

    char op_id[256];
    kw_strbuf sb;
    kw_sb_init(&sb, op_id, sizeof op_id);
    for (const char *m = r->method; *m; m++) kw_sb_appendn(&sb, &(char){(char)(*m | 0x20)}, 1);
    for (const char *p = path; *p; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')) kw_sb_appendn(&sb, p, 1);
        else if (sb.len && sb.data[sb.len - 1] != '_') KW_SB_LIT(&sb, "_");
    while (sb.len && sb.data[sb.len - 1] == '_') sb.data[--sb.len] = '\0';

    json_t *op = json_pack("{s:s, s:o, s:o}", "operationId", op_id, "responses", responses,
                           "security", security);
    if (r->scope) json_object_set_new(op, "x-required-scope", json_string(r->scope));
    if (r->min_level) json_object_set_new(op, "x-required-level", json_integer(r->min_level));
    json_t *params = json_array();
    for (const char *p = strchr(path, '{'); p; p = strchr(p + 1, '{')) {
        char name[64];
        size_t n = strcspn(p + 1, "}");
        if (n >= sizeof name) continue;
        memcpy(name, p + 1, n);
        name[n] = '\0';
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", name, "in",
                                                "path", "required", 1, "schema", "type", "string"));
    }
    if (json_array_size(params)) json_object_set_new(op, "parameters", params);
    else json_decref(params);
    if (has_body)
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:{s:{s:o}}}", "required", 0, "content",
                                      "application/json", "schema", ref("Any")));
    return op;
}

/* The shapes of the answers and the credential schemes, written as JSON
 * in src/http/openapi/components.json and embedded at build time
 * (cmake/embed_text.cmake).  Fields every answer carries are required;
 * more are allowed (PostHog adds fields over time, and so do we). */
extern const char kw_openapi_components[];

json_t *kw_openapi_document(const char *public_url)
{
    json_t *paths = json_object();
    size_t n;
    const kw_route *routes = kw_policy_routes(&n);
    for (size_t i = 0; i < n; i++) {
        char path[512], method[16];
        openapi_path(routes[i].pattern, path, sizeof path);
        size_t m = strlen(routes[i].method);
        if (m >= sizeof method) continue;
        for (size_t k = 0; k <= m; k++) method[k] = (char)(routes[i].method[k] | (k < m ? 0x20 : 0));
        json_t *item = json_object_get(paths, path);
        if (!item) json_object_set_new(paths, path, item = json_object());
        json_object_set_new(item, method, operation(&routes[i], path));
    }
    json_t *comp = json_loads(kw_openapi_components, 0, NULL);
    json_t *doc = json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:[{s:s}], s:o, s:o}", "openapi", "3.1.0", "info", "title",
        "keyward", "version", KW_VERSION, "description",
        "Self-hosted API keys, wire-compatible with PostHog's key API. Generated from keyward's "
        "route table: every route the server serves, with the credentials, scope and level it "
        "needs.",
        "servers", "url", public_url && *public_url ? public_url : "/", "paths", paths,
        "components", comp ? comp : json_object());
    return doc;
}

/* ---- GET /api/schema/ ---------------------------------------------------- */

static struct {
    pthread_once_t once;
    char *text;
    size_t len;
    char etag[KW_ETAG_MAX];
} served = {PTHREAD_ONCE_INIT, NULL, 0, ""};
static const char *served_url;

static void build_served(void)
{
    json_t *doc = kw_openapi_document(served_url);
    served.text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    if (!served.text) return;
    served.len = strlen(served.text);
    kw_etag_of(served.text, served.len, served.etag);
}

int kw_h_schema(kw_http_req *req, kw_http_resp *resp)
{
    served_url = req->app->public_url;  /* the same for every request of a process */
    pthread_once(&served.once, build_served);
    if (!served.text) return KW_ERR_NOMEM;
    kw_resp_header(resp, "Access-Control-Allow-Origin", "*");
    kw_resp_cacheable(req, resp, "application/json", served.text, served.len, served.etag,
                      "public, max-age=300", NULL, NULL);
    return KW_OK;
}
