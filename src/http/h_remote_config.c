/* h_remote_config.c — what posthog-js loads at init besides flags: the
 * project's remote config, GET /array/<phc_token>/config (JSON) and
 * /array/<phc_token>/config.js (a script that sets
 * window._POSTHOG_REMOTE_CONFIG[token] = {config, siteApps}), and the
 * admin's switches it is built from (PATCH /api/projects/:id/).
 *
 * The config has PostHog's RemoteConfig fields, camelCase as PostHog
 * serves them.  What keyward does not have is switched off (session
 * recording, surveys, dead clicks, exception autocapture, site apps), so
 * posthog-js never calls a route that is not there; what it has
 * (autocapture, network timing, heatmaps: plain events; gzip bodies) is
 * the project admin's setting.
 *
 * The token in the path is the only credential, and it is public: an
 * unknown or malformed one is "Not found." like an unknown path (with the
 * CORS header, which dispatch.c adds on this route before the handler
 * runs, so a page's script can read the refusal), and the answer names
 * only the token's own project.  Tokens are resolved through the
 * verification cache and the settings and flags come from the project's
 * cached flag set, so a page load costs no query.  The answer is
 * cacheable too: an ETag
 * over the exact bytes (a changed setting changes it) and revalidation on
 * every use ("no-cache"), answered by a 304 when nothing changed. */
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "keyward/keyward.h"
#include "keyward/strbuf.h"

int kw_json_project_settings(kw_store *store, int64_t project_id, json_t *obj)
{
    kw_project_settings s;
    int rc = kw_store_project_settings_get(store, project_id, &s);
    if (rc) return rc;
    kw_project_settings_json(&s, obj);
    return KW_OK;
}

/* Live flags decide hasFeatureFlags (PostHog counts active, non-deleted
 * ones; the cached set holds only non-deleted ones). */
static int has_active_flags(const kw_flagset *set)
{
    size_t i;
    const json_t *flag;
    json_array_foreach(set->flags, i, flag)
        if (json_is_true(json_object_get(flag, "active"))) return 1;
    return 0;
}

static json_t *config_json(const char *token, const kw_project_settings *s, int has_flags)
{
    json_t *perf = s->capture_performance_opt_in
                       ? json_pack("{s:b, s:b, s:n}", "network_timing", 1, "web_vitals", 0,
                                   "web_vitals_allowed_metrics")
                       : json_false();
    return json_pack("{s:s, s:[s,s], s:b, s:b, s:o, s:b, s:b, s:{s:s}, s:b, s:{s:b, s:[]},"
                     " s:b, s:b, s:b, s:b}",
                     "token", token, "supportedCompression", "gzip", "gzip-js",
                     "hasFeatureFlags", has_flags, "captureDeadClicks", 0,
                     "capturePerformance", perf, "autocapture_opt_out", s->autocapture_opt_out,
                     "autocaptureExceptions", 0, "analytics", "endpoint", "/i/v0/e/",
                     "elementsChainAsString", 1, "errorTracking", "autocaptureExceptions", 0,
                     "suppressionRules", "sessionRecording", 0, "heatmaps", s->heatmaps_opt_in,
                     "surveys", 0, "defaultIdentifiedOnly", 1);
}

/* JSON that is also safe inside a script: ASCII only (no U+2028/2029,
 * which end a JavaScript line in older engines) and "\/" for "/" (no
 * "</script>"). */
#define JS_SAFE (JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH | JSON_ENCODE_ANY)

static char *script(const char *token, const char *config)
{
    json_t *t = json_string(token);
    char *quoted = t ? json_dumps(t, JS_SAFE) : NULL;
    json_decref(t);
    if (!quoted) return NULL;
    kw_strbuf sb;
    size_t size = strlen(config) + 2 * strlen(quoted) + 256;
    char *out = malloc(size);
    if (out) {
        kw_sb_init(&sb, out, size);
        kw_sb_appendf(&sb,
                      "(function() {\n"
                      "    window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {};\n"
                      "    window._POSTHOG_REMOTE_CONFIG[%s] = {\n"
                      "        config: %s,\n"
                      "        siteApps: []\n"
                      "    }\n"
                      "})();\n",
                      quoted, config);
        if (!kw_sb_ok(&sb)) {
            free(out);
            out = NULL;
        }
    }
    free(quoted);
    return out;
}

int kw_h_remote_config(kw_http_req *req, kw_http_resp *resp)
{
    const char *token = req->match.id;
    size_t len = strlen(token);
    kw_principal tp;
    kw_verify_result r = KW_VERIFY_INVALID;
    if (len <= KW_KEY_MAX_LEN) r = kw_verify_project(req->app->verifier, token, len, &tp);
    if (r == KW_VERIFY_UNAVAILABLE) return KW_ERR_UNAVAILABLE;
    if (r != KW_VERIFY_OK) {
        kw_resp_error(resp, KW_P_NOT_FOUND, NULL, KW_MSG_NOT_FOUND);
        return KW_OK;
    }
    /* Settings and flags from the project's cached set: no query while
     * it is fresh (a settings or flag write makes it stale). */
    const kw_flagset *set;
    int rc = kw_flagcache_get(req->app->flags, tp.project_id, &set);
    if (rc) return rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc;
    json_t *config = config_json(token, &set->settings, has_active_flags(set));
    kw_flagset_release(set);
    char *body = config ? json_dumps(config, JS_SAFE) : NULL;
    json_decref(config);
    if (body && req->match.route->id == KW_ROUTE_REMOTE_CONFIG_JS) {
        char *js = script(token, body);
        free(body);
        body = js;
    }
    if (!body) return KW_ERR_NOMEM;
    int js = req->match.route->id == KW_ROUTE_REMOTE_CONFIG_JS;
    char etag[KW_ETAG_MAX];
    size_t n = strlen(body);
    kw_etag_of(body, n, etag);
    kw_resp_cacheable(req, resp, js ? "application/javascript; charset=utf-8" : "application/json",
                      body, n, etag, "public, no-cache", free, body);
    return KW_OK;
}
