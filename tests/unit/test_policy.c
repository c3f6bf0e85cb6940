/* test_policy.c — the route table, tested as a table: matching, key kinds,
 * scopes, membership, narrowing and levels against a real SQLite store. */
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyward/keyward.h"
#include "keyward/policy.h"

static void test_match_table(void **state)
{
    (void)state;
    static const struct {
        const char *method, *path;
        kw_match_result result;
        kw_route_id id;
        const char *project, *item;
    } CASES[] = {
        {"GET", "/_health", KW_MATCH_OK, KW_ROUTE_HEALTH, "", ""},
        {"GET", "/_health/", KW_MATCH_OK, KW_ROUTE_HEALTH, "", ""},
        {"POST", "/_health", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"HEAD", "/_health", KW_MATCH_OK, KW_ROUTE_HEALTH, "", ""},
        {"GET", "/_health/ready", KW_MATCH_OK, KW_ROUTE_HEALTH_READY, "", ""},
        {"GET", "/_health/ready/", KW_MATCH_OK, KW_ROUTE_HEALTH_READY, "", ""},
        {"POST", "/_health/ready", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/_health/other", KW_MATCH_NO_ROUTE, 0, "", ""},
        {"GET", "/api/users/@me/", KW_MATCH_OK, KW_ROUTE_ME, "", ""},
        {"GET", "/api/projects", KW_MATCH_OK, KW_ROUTE_PROJECT_LIST, "", ""},
        {"GET", "/api/projects/12/", KW_MATCH_OK, KW_ROUTE_PROJECT_GET, "12", ""},
        {"GET", "/api/environments/12/", KW_MATCH_OK, KW_ROUTE_PROJECT_GET, "12", ""},
        {"GET", "/api/projects/@current", KW_MATCH_OK, KW_ROUTE_PROJECT_GET, "@current", ""},
        {"GET", "/api/projects/abc/", KW_MATCH_NO_ROUTE, 0, "", ""},
        {"PATCH", "/api/projects/3/reset_token/", KW_MATCH_OK, KW_ROUTE_PROJECT_RESET_TOKEN, "3", ""},
        {"GET", "/api/projects/3/reset_token/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/api/personal_api_keys/", KW_MATCH_OK, KW_ROUTE_PKEY_LIST, "", ""},
        {"POST", "/api/personal_api_keys", KW_MATCH_OK, KW_ROUTE_PKEY_CREATE, "", ""},
        {"GET", "/api/personal_api_keys/@current/", KW_MATCH_OK, KW_ROUTE_PKEY_CURRENT, "", ""},
        {"GET", "/api/personal_api_keys/k1/", KW_MATCH_OK, KW_ROUTE_PKEY_GET, "", "k1"},
        {"PATCH", "/api/personal_api_keys/k1", KW_MATCH_OK, KW_ROUTE_PKEY_UPDATE, "", "k1"},
        {"DELETE", "/api/personal_api_keys/k1/", KW_MATCH_OK, KW_ROUTE_PKEY_DELETE, "", "k1"},
        {"POST", "/api/personal_api_keys/k1/roll/", KW_MATCH_OK, KW_ROUTE_PKEY_ROLL, "", "k1"},
        {"PUT", "/api/personal_api_keys/k1/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/api/environments/7/feature_flags/", KW_MATCH_OK, KW_ROUTE_FLAG_LIST, "7", ""},
        {"POST", "/api/projects/7/feature_flags", KW_MATCH_OK, KW_ROUTE_FLAG_CREATE, "7", ""},
        {"PATCH", "/api/projects/7/feature_flags/9/", KW_MATCH_OK, KW_ROUTE_FLAG_UPDATE, "7", "9"},
        {"GET", "/api/projects/7/activity_log", KW_MATCH_OK, KW_ROUTE_ACTIVITY_LIST, "7", ""},
        {"GET", "/api/environmentsx/7/activity_log", KW_MATCH_NO_ROUTE, 0, "", ""},
        {"GET", "/api/projects/7/feature_flags/9/extra", KW_MATCH_NO_ROUTE, 0, "", ""},
        {"GET", "/api/projects/7/project_secret_api_keys/", KW_MATCH_OK, KW_ROUTE_PSK_LIST, "7", ""},
        {"POST", "/api/environments/7/project_secret_api_keys", KW_MATCH_OK, KW_ROUTE_PSK_CREATE, "7", ""},
        {"GET", "/api/projects/7/project_secret_api_keys/s1/", KW_MATCH_OK, KW_ROUTE_PSK_GET, "7", "s1"},
        {"PATCH", "/api/projects/7/project_secret_api_keys/s1", KW_MATCH_OK, KW_ROUTE_PSK_UPDATE, "7", "s1"},
        {"DELETE", "/api/projects/7/project_secret_api_keys/s1/", KW_MATCH_OK, KW_ROUTE_PSK_DELETE, "7", "s1"},
        {"POST", "/api/projects/7/project_secret_api_keys/s1/roll/", KW_MATCH_OK, KW_ROUTE_PSK_ROLL, "7", "s1"},
        {"PUT", "/api/projects/7/project_secret_api_keys/s1/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/api/projects/7/feature_flags/local_evaluation/", KW_MATCH_OK,
         KW_ROUTE_FLAG_DEFS_PROJECT, "7", ""},
        {"GET", "/api/environments/7/feature_flags/local_evaluation", KW_MATCH_OK,
         KW_ROUTE_FLAG_DEFS_PROJECT, "7", ""},
        {"GET", "/api/projects/7/feature_flags/9/", KW_MATCH_OK, KW_ROUTE_FLAG_GET, "7", "9"},
        /* flag ids are numbers: the definitions path is no flag */
        {"PATCH", "/api/projects/7/feature_flags/local_evaluation", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/api/projects/7/feature_flags/abc/", KW_MATCH_NO_ROUTE, 0, "", ""},
        /* remote config: the flag's key (or id), under @current too */
        {"GET", "/api/projects/@current/feature_flags/my-flag/remote_config", KW_MATCH_OK,
         KW_ROUTE_FLAG_REMOTE_CONFIG, "@current", "my-flag"},
        {"GET", "/api/environments/7/feature_flags/9/remote_config/", KW_MATCH_OK,
         KW_ROUTE_FLAG_REMOTE_CONFIG, "7", "9"},
        {"POST", "/api/projects/7/feature_flags/my-flag/remote_config", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"POST", "/flags/", KW_MATCH_OK, KW_ROUTE_FLAGS_EVAL, "", ""},
        {"POST", "/decide", KW_MATCH_OK, KW_ROUTE_DECIDE, "", ""},
        {"GET", "/decide/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/api/feature_flag/local_evaluation/", KW_MATCH_OK, KW_ROUTE_FLAG_DEFS_LEGACY, "", ""},
        {"GET", "/flags/definitions", KW_MATCH_OK, KW_ROUTE_FLAG_DEFS, "", ""},
        {"HEAD", "/flags/definitions/", KW_MATCH_OK, KW_ROUTE_FLAG_DEFS, "", ""},
        {"POST", "/flags/definitions", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"POST", "/api/secret_scanning/report/", KW_MATCH_OK, KW_ROUTE_LEAK_REPORT, "", ""},
        {"GET", "/api/secret_scanning/report/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"POST", "/api/secret_scanning/verify", KW_MATCH_OK, KW_ROUTE_LEAK_VERIFY, "", ""},
        {"PATCH", "/api/users/12/", KW_MATCH_OK, KW_ROUTE_USER_UPDATE, "", "12"},
        {"GET", "/api/users/@me", KW_MATCH_OK, KW_ROUTE_ME, "", ""},
        {"GET", "/api/users/12/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/", KW_MATCH_OK, KW_ROUTE_CONSOLE, "", ""},
        {"POST", "/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/invite/tok/", KW_MATCH_OK, KW_ROUTE_CONSOLE_INVITE, "", "tok"},
        {"GET", "/assets/app.js", KW_MATCH_OK, KW_ROUTE_CONSOLE_ASSET, "", "app.js"},
        {"GET", "/assets/", KW_MATCH_NO_ROUTE, 0, "", ""},
        {"POST", "/api/login/", KW_MATCH_OK, KW_ROUTE_LOGIN, "", ""},
        {"GET", "/api/login/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"POST", "/api/logout", KW_MATCH_OK, KW_ROUTE_LOGOUT, "", ""},
        {"GET", "/api/session/", KW_MATCH_OK, KW_ROUTE_SESSION, "", ""},
        {"POST", "/api/invites/accept/", KW_MATCH_OK, KW_ROUTE_INVITE_ACCEPT, "", ""},
        {"GET", "/api/invites/tok", KW_MATCH_OK, KW_ROUTE_INVITE_GET, "", "tok"},
        {"POST", "/api/organizations/0b6e/invites/", KW_MATCH_OK, KW_ROUTE_INVITE_CREATE, "", ""},
        /* PostHog's SDKs: project settings, posthog-js's remote config */
        {"PATCH", "/api/projects/1/", KW_MATCH_OK, KW_ROUTE_PROJECT_UPDATE, "1", ""},
        {"PATCH", "/api/environments/@current", KW_MATCH_OK, KW_ROUTE_PROJECT_UPDATE, "@current", ""},
        {"PUT", "/api/projects/1/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/array/phc_x/config", KW_MATCH_OK, KW_ROUTE_REMOTE_CONFIG, "", "phc_x"},
        {"GET", "/array/phc_x/config.js/", KW_MATCH_OK, KW_ROUTE_REMOTE_CONFIG_JS, "", "phc_x"},
        {"POST", "/array/phc_x/config.js", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/array/phc_x/config.json", KW_MATCH_NO_ROUTE, 0, "", ""},
        {"GET", "/array/config", KW_MATCH_NO_ROUTE, 0, "", ""},
        {"GET", "/static/array.js", KW_MATCH_OK, KW_ROUTE_STATIC_JS, "", "array.js"},
        {"GET", "/static/../kw.db", KW_MATCH_NO_ROUTE, 0, "", ""},
        {"GET", "/static/1.2.3/array.js", KW_MATCH_OK, KW_ROUTE_STATIC_JS_VERSIONED, "", "array.js"},
        {"GET", "/static/1.2.3/x/array.js", KW_MATCH_NO_ROUTE, 0, "", ""},
        {"POST", "/static/array.js", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"POST", "/i/v1/analytics/events", KW_MATCH_OK, KW_ROUTE_CAPTURE_V1, "", ""},
        {"POST", "/i/v0/ai/batch/", KW_MATCH_OK, KW_ROUTE_CAPTURE_AI, "", ""},
        {"GET", "/i/v1/analytics/events", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/api/projects/1/groups_types/", KW_MATCH_OK, KW_ROUTE_GROUP_TYPES_LIST, "1", ""},
        {"PATCH", "/api/environments/@current/groups_types/update_metadata", KW_MATCH_OK,
         KW_ROUTE_GROUP_TYPES_RENAME, "@current", ""},
        {"POST", "/api/projects/1/groups_types/", KW_MATCH_BAD_METHOD, 0, "", ""},
        /* an organization's webhooks */
        {"GET", "/api/organizations/0b6e/webhooks/", KW_MATCH_OK, KW_ROUTE_WEBHOOK_LIST, "", ""},
        {"POST", "/api/organizations/0b6e/webhooks", KW_MATCH_OK, KW_ROUTE_WEBHOOK_CREATE, "", ""},
        {"GET", "/api/organizations/0b6e/webhooks/w1/", KW_MATCH_OK, KW_ROUTE_WEBHOOK_GET, "", "w1"},
        {"PATCH", "/api/organizations/0b6e/webhooks/w1", KW_MATCH_OK, KW_ROUTE_WEBHOOK_UPDATE, "", "w1"},
        {"DELETE", "/api/organizations/0b6e/webhooks/w1/", KW_MATCH_OK, KW_ROUTE_WEBHOOK_DELETE, "",
         "w1"},
        {"GET", "/api/organizations/0b6e/webhooks/w1/deliveries/", KW_MATCH_OK,
         KW_ROUTE_WEBHOOK_DELIVERIES, "", "w1"},
        {"POST", "/api/organizations/0b6e/webhooks/w1/test/", KW_MATCH_OK, KW_ROUTE_WEBHOOK_TEST, "",
         "w1"},
        {"PUT", "/api/organizations/0b6e/webhooks/w1/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"POST", "/api/organizations/0b6e/webhooks/w1/deliveries/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/api/organizations/0b6e/webhooks/w1/test/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/environments/7/", KW_MATCH_NO_ROUTE, 0, "", ""},
        {"GET", "/api/organizations/", KW_MATCH_OK, KW_ROUTE_ORG_LIST, "", ""},
        {"POST", "/api/organizations", KW_MATCH_OK, KW_ROUTE_ORG_CREATE, "", ""},
        {"GET", "/api/organizations/@current/", KW_MATCH_OK, KW_ROUTE_ORG_GET, "", ""},
        {"PATCH", "/api/organizations/0b6e", KW_MATCH_OK, KW_ROUTE_ORG_UPDATE, "", ""},
        {"DELETE", "/api/organizations/0b6e/", KW_MATCH_OK, KW_ROUTE_ORG_DELETE, "", ""},
        {"PUT", "/api/organizations/0b6e/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"GET", "/api/organizations/0b6e/projects/", KW_MATCH_OK, KW_ROUTE_ORG_PROJECT_LIST, "", ""},
        {"POST", "/api/organizations/0b6e/projects", KW_MATCH_OK, KW_ROUTE_ORG_PROJECT_CREATE, "", ""},
        {"GET", "/api/organizations/0b6e/members/", KW_MATCH_OK, KW_ROUTE_MEMBER_LIST, "", ""},
        {"PATCH", "/api/organizations/0b6e/members/u-1/", KW_MATCH_OK, KW_ROUTE_MEMBER_UPDATE, "", "u-1"},
        {"DELETE", "/api/organizations/0b6e/members/u-1", KW_MATCH_OK, KW_ROUTE_MEMBER_DELETE, "", "u-1"},
        {"GET", "/api/organizations/0b6e/members/u-1/", KW_MATCH_BAD_METHOD, 0, "", ""},
        {"POST", "/api/projects/", KW_MATCH_OK, KW_ROUTE_PROJECT_CREATE, "", ""},
        {"POST", "/api/environments", KW_MATCH_OK, KW_ROUTE_PROJECT_CREATE, "", ""},
        {"PATCH", "/api/projects/4/", KW_MATCH_OK, KW_ROUTE_PROJECT_UPDATE, "4", ""},
        {"DELETE", "/api/environments/4", KW_MATCH_OK, KW_ROUTE_PROJECT_DELETE, "4", ""},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        kw_route_match m;
        kw_match_result r = kw_policy_match(CASES[i].method, CASES[i].path, &m);
        if (r != CASES[i].result) fail_msg("%s %s: got %d", CASES[i].method, CASES[i].path, r);
        if (r != KW_MATCH_OK) continue;
        assert_int_equal(m.route->id, CASES[i].id);
        assert_string_equal(m.project, CASES[i].project);
        assert_string_equal(m.id, CASES[i].item);
        if (strstr(CASES[i].path, "/0b6e")) assert_string_equal(m.org, "0b6e");
    }
}

/* Every route declares who may call it; admin routes never take phs_/phc_:
 * under /api/ only the execution routes (flag definitions, endpoint run)
 * accept phs_, each with the one read scope a phs_ key may hold for it, and
 * only the leak report needs no credential (the reporter presents the
 * leaked token itself; see h_leak.c). */
static void test_table_invariants(void **state)
{
    (void)state;
    size_t n;
    const kw_route *routes = kw_policy_routes(&n);
    assert_int_equal(n, KW_ROUTE_COUNT);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(routes[i].id, (kw_route_id)i);
        assert_true(routes[i].credentials != 0);
        int flag_defs = routes[i].id == KW_ROUTE_FLAG_DEFS_PROJECT ||
                        routes[i].id == KW_ROUTE_FLAG_DEFS_LEGACY || routes[i].id == KW_ROUTE_FLAG_DEFS ||
                        routes[i].id == KW_ROUTE_FLAG_REMOTE_CONFIG;
        int endpoint_run = routes[i].id == KW_ROUTE_ENDPOINT_RUN_GET ||
                           routes[i].id == KW_ROUTE_ENDPOINT_RUN_POST;
        int execution = flag_defs || endpoint_run;
        /* The console's sign-in routes carry their own credential (a
         * password, an invitation token) and, with the leak report (the
         * reporter presents the leaked token) and the API's description
         * (generated from this table, as public as the source), are the
         * only public /api/ ones. */
        int sign_in = routes[i].id == KW_ROUTE_LOGIN || routes[i].id == KW_ROUTE_INVITE_ACCEPT ||
                      routes[i].id == KW_ROUTE_INVITE_GET;
        if (strncmp(routes[i].pattern, "/api/", 5) == 0) {
            assert_false(routes[i].credentials & KW_CRED_PROJECT);
            if (!sign_in && routes[i].id != KW_ROUTE_LEAK_REPORT && routes[i].id != KW_ROUTE_SCHEMA)
                assert_false(routes[i].credentials & KW_CRED_NONE);
            if (sign_in) assert_int_equal(routes[i].credentials, KW_CRED_NONE);
            if (!execution) assert_false(routes[i].credentials & KW_CRED_SECRET);
        }
        if (routes[i].credentials & KW_CRED_SECRET) {
            assert_true(execution);
            if (flag_defs) {
                assert_string_equal(routes[i].method, "GET");
                assert_string_equal(routes[i].scope, "feature_flag:read");
            } else {
                assert_string_equal(routes[i].scope, "endpoint:read");
            }
        }
        /* phc_ routes (capture) take nothing else: the token is in the body. */
        if (routes[i].credentials & KW_CRED_PROJECT) {
            assert_int_equal(routes[i].credentials, KW_CRED_PROJECT);
            assert_null(routes[i].scope);
        }
        if (routes[i].scope) {
            int obj;
            kw_scope_action act;
            assert_int_equal(kw_scope_parse(routes[i].scope, &obj, &act), KW_OK);
            /* Reads need :read, writes need :write (running an endpoint
             * by POST only reads). */
            int reads = strcmp(routes[i].method, "GET") == 0 || endpoint_run;
            assert_int_equal(act, reads ? KW_SCOPE_READ : KW_SCOPE_WRITE);
            /* The scope the policy and the usage counter use, parsed once
             * at start-up, is the row's own. */
            int pre_obj = -1;
            kw_scope_action pre_act = KW_SCOPE_READ;
            assert_int_equal(kw_policy_route_scope(&routes[i], &pre_obj, &pre_act), KW_OK);
            assert_int_equal(pre_obj, obj);
            assert_int_equal(pre_act, act);
        } else {
            int obj;
            kw_scope_action act;
            assert_int_equal(kw_policy_route_scope(&routes[i], &obj, &act), KW_ERR_INVALID);
        }
    }
    /* A route outside the table (same id, other row) is parsed as given,
     * never answered from the table's row of that id. */
    kw_route other = routes[KW_ROUTE_FLAG_DEFS];
    other.scope = "project:write";
    int obj;
    kw_scope_action act;
    assert_int_equal(kw_policy_route_scope(&other, &obj, &act), KW_OK);
    assert_int_equal(obj, kw_scope_object_index("project", 7));
    assert_int_equal(act, KW_SCOPE_WRITE);
    other.scope = "project:own";
    assert_int_equal(kw_policy_route_scope(&other, &obj, &act), KW_ERR_INVALID);
    /* Every row is reachable: its own pattern, parameters filled in,
     * matches it or an earlier row of the same method (the first match
     * wins), never nothing (a pattern too deep to prepare would). */
    for (size_t i = 0; i < n; i++) {
        char path[256] = "";
        const char *p = routes[i].pattern;
        while (*p) {
            const char *e = strchr(p + 1, '/');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char seg[64];
            snprintf(seg, sizeof seg, "%.*s", (int)len, p);
            const char *param = strcmp(seg, "/:project") == 0 ? "/1"
                                : strcmp(seg, "/:num") == 0   ? "/7"
                                : strncmp(seg, "/:", 2) == 0  ? "/x"
                                                              : seg;
            strncat(path, param, sizeof path - strlen(path) - 1);
            p += len;
        }
        kw_route_match rm;
        if (kw_policy_match(routes[i].method, path, &rm) != KW_MATCH_OK)
            fail_msg("row %zu (%s %s): %s matches no row", i, routes[i].method, routes[i].pattern, path);
        assert_true(rm.route <= &routes[i]);
        assert_string_equal(rm.route->method, routes[i].method);
    }
    /* Deeper than any pattern: no route, whatever the segments say. */
    kw_route_match m;
    assert_int_equal(kw_policy_match("GET", "/a/b/c/d/e/f/g/h/i/j", &m), KW_MATCH_NO_ROUTE);
    assert_null(m.route);
}

/* Allow (for OPTIONS and 405): the methods the table serves on a path. */
static void test_allow(void **state)
{
    (void)state;
    char allow[64];
    assert_int_equal(kw_policy_allow("/flags/definitions/", allow, sizeof allow), 1);
    assert_string_equal(allow, "GET, HEAD, OPTIONS");
    kw_policy_allow("/api/projects/3/feature_flags/local_evaluation", allow, sizeof allow);
    assert_string_equal(allow, "GET, HEAD, OPTIONS");
    kw_policy_allow("/flags", allow, sizeof allow);
    assert_string_equal(allow, "POST, OPTIONS");
    kw_policy_allow("/api/projects/3/feature_flags/12/", allow, sizeof allow);
    assert_string_equal(allow, "GET, HEAD, PATCH, DELETE, OPTIONS");
    assert_int_equal(kw_policy_allow("/nowhere", allow, sizeof allow), 0);
    assert_string_equal(allow, "");
}

static void test_refuse_kind(void **state)
{
    (void)state;
    kw_route_match m;
    kw_problem p;
    kw_policy_match("GET", "/api/projects/", &m);
    assert_false(kw_policy_refuse_kind(m.route, KW_KEY_PERSONAL, KW_SRC_HEADER, &p));
    assert_true(kw_policy_refuse_kind(m.route, KW_KEY_SECRET, KW_SRC_HEADER, &p));
    assert_int_equal(p.status, 403);
    assert_string_equal(p.detail, "This action does not support project secret API key access");
    /* phs_ never manages keys, not even its own project's. */
    static const char *const ADMIN_ONLY[][2] = {
        {"GET", "/api/projects/1/project_secret_api_keys/"},
        {"POST", "/api/projects/1/project_secret_api_keys/"},
        {"POST", "/api/projects/1/project_secret_api_keys/s/roll/"},
        {"DELETE", "/api/projects/1/project_secret_api_keys/s/"},
        {"GET", "/api/projects/1/feature_flags/"},
        {"GET", "/api/personal_api_keys/"},
    };
    for (size_t i = 0; i < sizeof ADMIN_ONLY / sizeof ADMIN_ONLY[0]; i++) {
        kw_route_match am;
        assert_int_equal(kw_policy_match(ADMIN_ONLY[i][0], ADMIN_ONLY[i][1], &am), KW_MATCH_OK);
        assert_true(kw_policy_refuse_kind(am.route, KW_KEY_SECRET, KW_SRC_HEADER, &p));
        assert_int_equal(p.status, 403);
        assert_string_equal(p.detail, "This action does not support project secret API key access");
    }
    assert_true(kw_policy_refuse_kind(m.route, KW_KEY_PROJECT, KW_SRC_HEADER, &p));
    assert_int_equal(p.status, 401);
    assert_string_equal(p.detail, "Personal API key found in request Authorization header is invalid.");
    assert_true(kw_policy_refuse_kind(m.route, KW_KEY_NONE, KW_SRC_QUERY, &p));
    assert_string_equal(p.detail, "Personal API key found in request query string is invalid.");
    kw_policy_invalid_personal(KW_SRC_BODY, &p);
    assert_string_equal(p.detail, "Personal API key found in request body is invalid.");
}

struct fixture {
    char path[64];
    kw_store *store;
    kw_directory *directory;  /* the server's cached reads of projects and memberships */
    kw_user alice, bob, carol;
    kw_project p1, p2, p3;  /* p1, p3 in org A; p2 in org B */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/kw_policy_%d.db", (int)getpid());
    unlink(f->path);
    assert_int_equal(kw_store_open(f->path, &f->store), KW_OK);
    kw_org a = {0}, b = {0};
    strcpy(a.name, "A");
    strcpy(b.name, "B");
    kw_store_org_create(f->store, &a);
    kw_store_org_create(f->store, &b);
    kw_user *users[] = {&f->alice, &f->bob, &f->carol};
    const char *emails[] = {"alice@a", "bob@b", "carol@a"};
    for (int i = 0; i < 3; i++) {
        strcpy(users[i]->email, emails[i]);
        users[i]->is_active = 1;
        assert_int_equal(kw_store_user_create(f->store, users[i]), KW_OK);
    }
    kw_store_membership_set(f->store, f->alice.id, a.id, KW_LEVEL_OWNER);
    kw_store_membership_set(f->store, f->bob.id, b.id, KW_LEVEL_OWNER);
    kw_store_membership_set(f->store, f->carol.id, a.id, KW_LEVEL_MEMBER);
    kw_project *projects[] = {&f->p1, &f->p2, &f->p3};
    const char *orgs[] = {a.id, b.id, a.id};
    for (int i = 0; i < 3; i++) {
        strcpy(projects[i]->org_id, orgs[i]);
        strcpy(projects[i]->name, "P");
        kw_key_generate(KW_KEY_PROJECT, projects[i]->api_token);
        assert_int_equal(kw_store_project_create(f->store, projects[i]), KW_OK);
    }
    assert_int_equal(kw_directory_new(f->store, &f->directory), KW_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    kw_directory_free(f->directory);
    kw_store_close(f->store);
    unlink(f->path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", f->path);
    unlink(wal);
    free(f);
    return 0;
}

static kw_principal personal(int64_t user_id, const char *scopes, const char *teams)
{
    kw_principal p;
    memset(&p, 0, sizeof p);
    p.kind = KW_KEY_PERSONAL;
    p.user_id = user_id;
    kw_principal_load_scopes(&p, scopes, teams, NULL);
    return p;
}

static int verdict_through(struct fixture *f, kw_directory *dir, const char *method,
                           const char *path, const kw_principal *pr, char *detail, int *level)
{
    kw_route_match m;
    assert_int_equal(kw_policy_match(method, path, &m), KW_MATCH_OK);
    kw_project project;
    kw_problem p;
    *level = -1;
    detail[0] = '\0';
    if (!kw_policy_check(f->store, dir, &m, pr, &project, level, &p)) return 200;
    strcpy(detail, p.detail);
    return p.status;
}

/* status of `method path` for principal (200 = allowed by the policy).
 * Every verdict is reached three ways — reading the store, then through
 * the directory's per-thread reads twice (a miss, then a hit) — and the
 * three must agree in status, detail and level: the cache may change the
 * cost of a decision, never the decision. */
static int verdict(struct fixture *f, const char *method, const char *path, const kw_principal *pr,
                   char *detail)
{
    char d_store[512], d_miss[512], d_hit[512];
    int l_store, l_miss, l_hit;
    /* The fixture writes to the store directly; the server re-reads the
     * generation after each commit (kw_txn_end) and at every poll. */
    assert_int_equal(kw_directory_refresh(f->directory), KW_OK);
    int s_store = verdict_through(f, NULL, method, path, pr, d_store, &l_store);
    int s_miss = verdict_through(f, f->directory, method, path, pr, d_miss, &l_miss);
    int s_hit = verdict_through(f, f->directory, method, path, pr, d_hit, &l_hit);
    assert_int_equal(s_miss, s_store);
    assert_int_equal(s_hit, s_store);
    assert_string_equal(d_miss, d_store);
    assert_string_equal(d_hit, d_store);
    assert_int_equal(l_miss, l_store);
    assert_int_equal(l_hit, l_store);
    if (detail) strcpy(detail, d_store);
    return s_store;
}

static void test_check_table(void **state)
{
    struct fixture *f = *state;
    char path[128], detail[512];
    kw_principal anon;
    memset(&anon, 0, sizeof anon);
    kw_principal alice_all = personal(f->alice.id, "[\"*\"]", NULL);
    kw_principal alice_flags = personal(f->alice.id, "[\"feature_flag:read\"]", NULL);
    kw_principal alice_p1 = personal(f->alice.id, "[\"*\"]", "[1]");
    kw_principal bob_all = personal(f->bob.id, "[\"*\"]", NULL);
    kw_principal carol_all = personal(f->carol.id, "[\"*\"]", NULL);
    kw_principal nothing = personal(f->alice.id, NULL, NULL);

    assert_int_equal(verdict(f, "GET", "/_health", &anon, NULL), 200);
    assert_int_equal(verdict(f, "GET", "/api/projects/", &anon, detail), 401);
    assert_string_equal(detail, "Authentication credentials were not provided.");
    assert_int_equal(verdict(f, "GET", "/api/projects/", &alice_all, NULL), 200);
    assert_int_equal(verdict(f, "GET", "/api/projects/", &nothing, detail), 403);
    assert_string_equal(detail, "API key missing required scope 'project:read'");

    snprintf(path, sizeof path, "/api/projects/%lld/feature_flags/", (long long)f->p1.id);
    assert_int_equal(verdict(f, "GET", path, &alice_flags, NULL), 200);
    assert_int_equal(verdict(f, "POST", path, &alice_flags, detail), 403);
    assert_string_equal(detail, "API key missing required scope 'feature_flag:write'");
    /* Another organization's project: not found, never confirmed. */
    assert_int_equal(verdict(f, "GET", path, &bob_all, detail), 404);
    assert_string_equal(detail, "Not found.");
    /* A project that does not exist at all: the same answer. */
    assert_int_equal(verdict(f, "GET", "/api/projects/999999/feature_flags/", &alice_all, NULL), 404);
    /* scoped_teams narrows within the user's own organization. */
    snprintf(path, sizeof path, "/api/projects/%lld/", (long long)f->p3.id);
    assert_int_equal(verdict(f, "GET", path, &alice_all, NULL), 200);
    assert_int_equal(verdict(f, "GET", path, &alice_p1, detail), 403);
    char want[128];
    snprintf(want, sizeof want, "API key does not have access to the requested project: ID %lld.",
             (long long)f->p3.id);
    assert_string_equal(detail, want);
    /* Level: members may read, only admins reset the token. */
    snprintf(path, sizeof path, "/api/projects/%lld/reset_token/", (long long)f->p1.id);
    assert_int_equal(verdict(f, "PATCH", path, &carol_all, detail), 403);
    assert_string_equal(detail, "You don't have sufficient permissions in the project.");
    assert_int_equal(verdict(f, "PATCH", path, &alice_all, NULL), 200);
    /* Personal keys: the keyward scope, with PostHog's refusal text. */
    assert_int_equal(verdict(f, "GET", "/api/personal_api_keys/", &alice_flags, detail), 403);
    assert_string_equal(detail, "This action does not support Personal API Key access");
    assert_int_equal(verdict(f, "GET", "/api/personal_api_keys/@current/", &alice_flags, NULL), 200);
    /* Project secret keys: members read, project admins write. */
    snprintf(path, sizeof path, "/api/projects/%lld/project_secret_api_keys/", (long long)f->p1.id);
    assert_int_equal(verdict(f, "GET", path, &carol_all, NULL), 200);
    assert_int_equal(verdict(f, "POST", path, &carol_all, detail), 403);
    assert_string_equal(detail, "You don't have sufficient permissions in the project.");
    assert_int_equal(verdict(f, "POST", path, &alice_all, NULL), 200);
    assert_int_equal(verdict(f, "POST", path, &alice_flags, detail), 403);
    assert_string_equal(detail, "API key missing required scope 'project:write'");
    assert_int_equal(verdict(f, "GET", path, &bob_all, NULL), 404);
    snprintf(path, sizeof path, "/api/projects/%lld/project_secret_api_keys/x/roll/",
             (long long)f->p1.id);
    assert_int_equal(verdict(f, "POST", path, &carol_all, NULL), 403);
    /* @current resolves to a project the key may reach. */
    assert_int_equal(verdict(f, "GET", "/api/projects/@current/", &alice_p1, NULL), 200);
}

/* Organization routes (invitations) apply membership and level in the
 * organization itself; a console session acts with the user's rights:
 * no scope check, but the same membership and level checks. */
static void test_org_routes_and_sessions(void **state)
{
    struct fixture *f = *state;
    char path[160], detail[512];
    kw_project p1;
    assert_int_equal(kw_store_project_get(f->store, f->p1.id, &p1), KW_OK);
    snprintf(path, sizeof path, "/api/organizations/%s/invites/", p1.org_id);
    kw_principal alice_all = personal(f->alice.id, "[\"*\"]", NULL);
    kw_principal alice_flags = personal(f->alice.id, "[\"feature_flag:read\"]", NULL);
    kw_principal bob_all = personal(f->bob.id, "[\"*\"]", NULL);
    kw_principal carol_all = personal(f->carol.id, "[\"*\"]", NULL);
    kw_principal carol_session, alice_session;
    memset(&carol_session, 0, sizeof carol_session);
    carol_session.session = 1;
    carol_session.user_id = f->carol.id;
    carol_session.n_scoped_teams = carol_session.n_scoped_orgs = -1;
    alice_session = carol_session;
    alice_session.user_id = f->alice.id;

    assert_int_equal(verdict(f, "POST", path, &alice_all, NULL), 200);
    assert_int_equal(verdict(f, "POST", path, &alice_session, NULL), 200);
    assert_int_equal(verdict(f, "POST", path, &alice_flags, detail), 403);
    assert_string_equal(detail, "API key missing required scope 'organization_member:write'");
    assert_int_equal(verdict(f, "POST", path, &carol_all, detail), 403);
    assert_string_equal(detail, "You don't have sufficient permissions in the organization.");
    assert_int_equal(verdict(f, "POST", path, &carol_session, NULL), 403);
    /* Not a member (or no such organization): not found. */
    assert_int_equal(verdict(f, "POST", path, &bob_all, detail), 404);
    assert_int_equal(verdict(f, "POST", "/api/organizations/nope/invites/", &alice_all, NULL), 404);
    /* Sessions skip scopes but not levels or membership. */
    snprintf(path, sizeof path, "/api/projects/%lld/reset_token/", (long long)f->p1.id);
    assert_int_equal(verdict(f, "PATCH", path, &carol_session, NULL), 403);
    assert_int_equal(verdict(f, "PATCH", path, &alice_session, NULL), 200);
    snprintf(path, sizeof path, "/api/projects/%lld/", (long long)f->p2.id);
    assert_int_equal(verdict(f, "GET", path, &alice_session, NULL), 404);
    /* Session-only routes refuse keys by kind. */
    kw_route_match m;
    kw_problem p;
    assert_int_equal(kw_policy_match("GET", "/api/session/", &m), KW_MATCH_OK);
    assert_true(kw_policy_refuse_kind(m.route, KW_KEY_PERSONAL, KW_SRC_HEADER, &p));
    assert_int_equal(p.status, 403);
    assert_int_equal(verdict(f, "GET", "/api/session/", &alice_session, NULL), 200);
    kw_principal anon;
    memset(&anon, 0, sizeof anon);
    assert_int_equal(verdict(f, "GET", "/api/session/", &anon, NULL), 401);
    assert_int_equal(verdict(f, "POST", "/api/login/", &anon, NULL), 200);
    assert_int_equal(verdict(f, "GET", "/", &anon, NULL), 200);
}

static void test_secret_key_execution_routes(void **state)
{
    struct fixture *f = *state;
    kw_principal secret, endpoint_only, anon;
    memset(&secret, 0, sizeof secret);
    secret.kind = KW_KEY_SECRET;
    secret.project_id = f->p1.id;
    secret.n_scoped_teams = secret.n_scoped_orgs = -1;
    endpoint_only = secret;
    kw_scopes_add(&secret.scopes, "feature_flag:read");
    kw_scopes_add(&endpoint_only.scopes, "endpoint:read");
    memset(&anon, 0, sizeof anon);
    char path[128], detail[512];
    kw_route_match m;
    kw_problem p;
    assert_int_equal(kw_policy_match("GET", "/flags/definitions", &m), KW_MATCH_OK);
    assert_false(kw_policy_refuse_kind(m.route, KW_KEY_SECRET, KW_SRC_HEADER, &p));
    assert_false(kw_policy_refuse_kind(m.route, KW_KEY_PERSONAL, KW_SRC_HEADER, &p));
    assert_true(kw_policy_refuse_kind(m.route, KW_KEY_PROJECT, KW_SRC_HEADER, &p));
    assert_int_equal(verdict(f, "GET", "/flags/definitions", &secret, NULL), 200);
    assert_int_equal(verdict(f, "GET", "/api/feature_flag/local_evaluation", &secret, NULL), 200);
    assert_int_equal(verdict(f, "GET", "/flags/definitions", &anon, detail), 401);
    assert_string_equal(detail, "Authentication credentials were not provided.");
    assert_int_equal(verdict(f, "GET", "/flags/definitions", &endpoint_only, detail), 403);
    assert_string_equal(detail, "API key missing required scope 'feature_flag:read'");
    snprintf(path, sizeof path, "/api/projects/%lld/feature_flags/local_evaluation/",
             (long long)f->p1.id);
    assert_int_equal(verdict(f, "GET", path, &secret, NULL), 200);
    /* another project's definitions on the project route: refused */
    snprintf(path, sizeof path, "/api/projects/%lld/feature_flags/local_evaluation/",
             (long long)f->p2.id);
    assert_int_equal(verdict(f, "GET", path, &secret, NULL), 403);
}

static void test_secret_key_project_binding(void **state)
{
    struct fixture *f = *state;
    kw_principal secret;
    memset(&secret, 0, sizeof secret);
    secret.kind = KW_KEY_SECRET;
    secret.project_id = f->p1.id;
    secret.n_scoped_teams = secret.n_scoped_orgs = -1;
    kw_scopes_add(&secret.scopes, "feature_flag:read");
    char path[128], detail[512];
    snprintf(path, sizeof path, "/api/projects/%lld/feature_flags/", (long long)f->p2.id);
    assert_int_equal(verdict(f, "GET", path, &secret, detail), 403);
    char want[128];
    snprintf(want, sizeof want, "API key does not have access to the requested project: ID %lld.",
             (long long)f->p2.id);
    assert_string_equal(detail, want);
}

/* Project-limited means project-limited, tested over the whole table: a
 * key narrowed to projects (scoped_teams) is refused on every
 * organization-level route, whatever its scopes, by the policy itself;
 * the same key is never refused that way on a route inside a project.
 * Which routes are organization-level is derived from the rows (no
 * :project, and an :org or a membership level), never listed by hand. */
static void test_team_limited_keys_stay_out_of_org_routes(void **state)
{
    struct fixture *f = *state;
    kw_project p1;
    assert_int_equal(kw_store_project_get(f->store, f->p1.id, &p1), KW_OK);
    char teams[32];
    snprintf(teams, sizeof teams, "[%lld]", (long long)f->p1.id);
    kw_principal limited = personal(f->alice.id, "[\"*\"]", teams);
    kw_principal whole = personal(f->alice.id, "[\"*\"]", NULL);
    kw_principal session;
    memset(&session, 0, sizeof session);
    session.session = 1;
    session.user_id = f->alice.id;
    session.n_scoped_teams = session.n_scoped_orgs = -1;
    size_t n, org_routes = 0;
    const kw_route *routes = kw_policy_routes(&n);
    for (size_t i = 0; i < n; i++) {
        const kw_route *r = &routes[i];
        int org_level = kw_policy_org_level(r);
        /* the derivation, restated as properties of the row */
        if (strstr(r->pattern, ":org")) assert_true(org_level);
        if (strstr(r->pattern, ":project")) assert_false(org_level);
        if (!strstr(r->pattern, ":project") && r->min_level > 0) assert_true(org_level);
        if (!(r->credentials & KW_CRED_PERSONAL)) continue;
        /* a concrete path for the row */
        char path[256] = "";
        const char *s = r->pattern;
        while (*s) {
            char seg[64];
            if (strncmp(s, ":project", 8) == 0) {
                snprintf(seg, sizeof seg, "%lld", (long long)f->p1.id);
                s += 8;
            } else if (strncmp(s, ":org", 4) == 0) {
                snprintf(seg, sizeof seg, "%s", p1.org_id);
                s += 4;
            } else if (strncmp(s, ":num", 4) == 0) {
                snprintf(seg, sizeof seg, "1");
                s += 4;
            } else if (strncmp(s, ":id", 3) == 0) {
                snprintf(seg, sizeof seg, "%lld", (long long)f->carol.id);
                s += 3;
            } else {
                snprintf(seg, sizeof seg, "%c", *s++);
            }
            assert_true(strlen(path) + strlen(seg) < sizeof path);
            strcat(path, seg);
        }
        char detail[512] = "";
        int st = verdict(f, r->method, path, &limited, detail);
        if (org_level) {
            org_routes++;
            if (st != 403 || strcmp(detail, KW_MSG_PROJECT_LIMITED) != 0)
                fail_msg("%s %s: a project-limited key got %d %s", r->method, r->pattern, st, detail);
            /* the same person's unlimited key and session are not refused so */
            detail[0] = '\0';
            verdict(f, r->method, path, &whole, detail);
            assert_string_not_equal(detail, KW_MSG_PROJECT_LIMITED);
            detail[0] = '\0';
            verdict(f, r->method, path, &session, detail);
            assert_string_not_equal(detail, KW_MSG_PROJECT_LIMITED);
        } else if (st != 200) {
            assert_string_not_equal(detail, KW_MSG_PROJECT_LIMITED);
        }
    }
    /* invitations and user activation are among them */
    kw_route_match m;
    assert_int_equal(kw_policy_match("POST", "/api/organizations/x/invites/", &m), KW_MATCH_OK);
    assert_true(kw_policy_org_level(m.route));
    assert_int_equal(kw_policy_match("PATCH", "/api/users/7/", &m), KW_MATCH_OK);
    assert_true(kw_policy_org_level(m.route));
    assert_int_equal(kw_policy_match("POST", "/api/personal_api_keys/", &m), KW_MATCH_OK);
    assert_false(kw_policy_org_level(m.route));
    assert_true(org_routes >= 2);
}

/* A concrete path for a row: :project = `project`, :org = `org`, any
 * other parameter a placeholder. */
static void concrete_path(const kw_route *r, int64_t project, const char *org, char *out, size_t size)
{
    out[0] = '\0';
    const char *s = r->pattern;
    while (*s) {
        char seg[64];
        if (strncmp(s, ":project", 8) == 0) {
            snprintf(seg, sizeof seg, "%lld", (long long)project);
            s += 8;
        } else if (strncmp(s, ":org", 4) == 0) {
            snprintf(seg, sizeof seg, "%s", org);
            s += 4;
        } else if (strncmp(s, ":num", 4) == 0 || strncmp(s, ":id", 3) == 0) {
            snprintf(seg, sizeof seg, "1");
            s += s[1] == 'n' ? 4 : 3;
        } else {
            snprintf(seg, sizeof seg, "%c", *s++);
        }
        assert_true(strlen(out) + strlen(seg) < size);
        strcat(out, seg);
    }
}

/* Organization-limited and cross-organization, over the whole table: on
 * every row that names an organization or a project of org A (or acts in
 * the caller's current organization), a key of A's owner narrowed to org
 * B is refused with the organization text (or the project's), and B's
 * owner gets "Not found." — whatever the scopes, for every such row,
 * without a list of routes. */
static void test_org_limited_and_cross_org_over_the_table(void **state)
{
    struct fixture *f = *state;
    kw_project p1, p2;
    assert_int_equal(kw_store_project_get(f->store, f->p1.id, &p1), KW_OK);
    assert_int_equal(kw_store_project_get(f->store, f->p2.id, &p2), KW_OK);
    char orgs[80];
    snprintf(orgs, sizeof orgs, "[\"%s\"]", p2.org_id);
    kw_principal elsewhere = personal(f->alice.id, "[\"*\"]", NULL);
    kw_principal_load_scopes(&elsewhere, "[\"*\"]", NULL, orgs);
    kw_principal bob_all = personal(f->bob.id, "[\"*\"]", NULL);
    size_t n, swept = 0;
    const kw_route *routes = kw_policy_routes(&n);
    for (size_t i = 0; i < n; i++) {
        const kw_route *r = &routes[i];
        int names_org = strstr(r->pattern, ":org") != NULL || r->in_current_org;
        int names_project = strstr(r->pattern, ":project") != NULL;
        if (!(r->credentials & KW_CRED_PERSONAL) || (!names_org && !names_project)) continue;
        char path[256], detail[512] = "";
        concrete_path(r, f->p1.id, p1.org_id, path, sizeof path);
        int st = verdict(f, r->method, path, &elsewhere, detail);
        if (r->in_current_org) {
            /* alice's only organization is not admitted: none is current */
            if (st != 404) fail_msg("%s %s: %d %s", r->method, r->pattern, st, detail);
        } else if (st != 403 || !strstr(detail, "does not have access to the requested")) {
            fail_msg("%s %s: an org-limited key got %d %s", r->method, r->pattern, st, detail);
        }
        if (!r->in_current_org) {
            st = verdict(f, r->method, path, &bob_all, detail);
            if (st != 404) fail_msg("%s %s: another org's owner got %d %s", r->method, r->pattern, st,
                                    detail);
        }
        swept++;
    }
    assert_true(swept >= 25);
}

/* @current: the first organization the key admits; the row's :org is
 * replaced by its id so handlers see a real id. */
static void test_current_org(void **state)
{
    struct fixture *f = *state;
    kw_project p1;
    assert_int_equal(kw_store_project_get(f->store, f->p1.id, &p1), KW_OK);
    kw_principal alice_all = personal(f->alice.id, "[\"*\"]", NULL);
    kw_route_match m;
    kw_project project;
    kw_problem p;
    int level;
    assert_int_equal(kw_policy_match("GET", "/api/organizations/@current/", &m), KW_MATCH_OK);
    assert_int_equal(kw_policy_check(f->store, NULL, &m, &alice_all, &project, &level, &p), 0);
    assert_string_equal(m.org, p1.org_id);
    assert_int_equal(level, KW_LEVEL_OWNER);
    assert_int_equal(kw_policy_match("POST", "/api/projects/", &m), KW_MATCH_OK);
    assert_int_equal(kw_policy_check(f->store, NULL, &m, &alice_all, &project, &level, &p), 0);
    assert_string_equal(m.org, p1.org_id);
    kw_principal carol_all = personal(f->carol.id, "[\"*\"]", NULL);
    assert_int_equal(kw_policy_match("POST", "/api/projects/", &m), KW_MATCH_OK);
    assert_int_equal(kw_policy_check(f->store, NULL, &m, &carol_all, &project, &level, &p), 1);
    assert_int_equal(p.status, 403);
    char org[KW_ID_LEN + 1];
    kw_principal secret;
    memset(&secret, 0, sizeof secret);
    secret.kind = KW_KEY_SECRET;
    secret.project_id = f->p1.id;
    assert_int_equal(kw_policy_current_org(f->store, &secret, org), KW_ERR_NOTFOUND);
}

/* The tests below ask one thing again and again: carol (a member of org
 * A, every scope) reading p1's flag list. */
static void p1_flags_path(const struct fixture *f, char *path, size_t size)
{
    snprintf(path, size, "/api/projects/%lld/feature_flags/", (long long)f->p1.id);
}

/* carol's GET `path` through the directory's kept reads: the status, and
 * her level when the policy reached it. */
static int carol_gets(struct fixture *f, const char *path, int *level)
{
    char detail[512];
    int ignored;
    kw_principal carol = personal(f->carol.id, "[\"*\"]", NULL);
    return verdict_through(f, f->directory, "GET", path, &carol, detail, level ? level : &ignored);
}

/* The same, reached all three ways verdict() compares. */
/* carol's level on the path at time `at` (the clock set there), asserting
 * she is let in. */
static int carol_level_at(struct fixture *f, const char *path, int64_t at)
{
    int level = -1;
    kw_clock_set(at);
    assert_int_equal(carol_gets(f, path, &level), 200);
    return level;
}

static int carol_verdict(struct fixture *f, const char *path)
{
    kw_principal carol = personal(f->carol.id, "[\"*\"]", NULL);
    return verdict(f, "GET", path, &carol, NULL);
}

/* The membership and the project are this thread's reads at the last
 * generation read: a change written outside this process (here straight
 * to the store, as another instance, the command line or SQL would) stands
 * until the generation is re-read — after a commit of this process, at
 * every poll — and a membership for at most a second even if it never is. */
static void test_directory_reads_follow_the_generation(void **state)
{
    struct fixture *f = *state;
    char path[128];
    int level;
    p1_flags_path(f, path, sizeof path);
    assert_int_equal(carol_verdict(f, path), 200);
    /* carol leaves org A: refused as soon as the generation is re-read */
    assert_int_equal(kw_store_membership_delete(f->store, f->carol.id, f->p1.org_id), KW_OK);
    assert_int_equal(carol_gets(f, path, &level), 200);
    assert_int_equal(kw_directory_refresh(f->directory), KW_OK);
    assert_int_equal(carol_gets(f, path, &level), 404);
    /* back as admin: the new level once re-read */
    assert_int_equal(kw_store_membership_set(f->store, f->carol.id, f->p1.org_id, KW_LEVEL_ADMIN),
                     KW_OK);
    assert_int_equal(kw_directory_refresh(f->directory), KW_OK);
    assert_int_equal(carol_gets(f, path, &level), 200);
    assert_int_equal(level, KW_LEVEL_ADMIN);
    /* demoted, and the generation never re-read (polls failing): the kept
     * level lasts under a second, then the database decides */
    int64_t t0 = kw_now() + 2000000;  /* past the entry read above: read again at t0 */
    kw_clock_set(t0);
    assert_int_equal(carol_gets(f, path, &level), 200);
    assert_int_equal(kw_store_membership_set(f->store, f->carol.id, f->p1.org_id, KW_LEVEL_MEMBER),
                     KW_OK);
    assert_int_equal(carol_level_at(f, path, t0 + 999999), KW_LEVEL_ADMIN);
    assert_int_equal(carol_level_at(f, path, t0 + 1000000), KW_LEVEL_MEMBER);
    /* removed the same way: refused once the second is over */
    assert_int_equal(kw_store_membership_delete(f->store, f->carol.id, f->p1.org_id), KW_OK);
    kw_clock_set(t0 + 2000000);
    assert_int_equal(carol_gets(f, path, &level), 404);
    kw_clock_set(0);
    assert_int_equal(kw_store_membership_set(f->store, f->carol.id, f->p1.org_id, KW_LEVEL_MEMBER),
                     KW_OK);
    assert_int_equal(kw_directory_refresh(f->directory), KW_OK);
    assert_int_equal(carol_gets(f, path, &level), 200);
    /* the project is deleted: this thread's entry stands until the
     * generation is re-read, then it is gone */
    assert_int_equal(kw_store_project_delete(f->store, f->p1.id), KW_OK);
    assert_int_equal(carol_gets(f, path, &level), 200);
    assert_int_equal(kw_directory_refresh(f->directory), KW_OK);
    assert_int_equal(carol_gets(f, path, &level), 404);
    assert_int_equal(carol_verdict(f, path), 404);
}

struct other_thread {
    struct fixture *f;
    int64_t user_id;
    int rc, level;
};

static void *membership_on_other_thread(void *arg)
{
    struct other_thread *o = arg;
    o->rc = kw_directory_membership_level(o->f->directory, o->f->store, o->user_id,
                                          o->f->p1.org_id, &o->level);
    return NULL;
}

/* Entries are per thread; a departure one thread has read (its miss reads
 * the row and the generation in one statement) makes the older entries of
 * every other thread stale before that thread answers: no request is let
 * in after one was refused. */
static void test_departure_seen_by_one_thread_is_seen_by_all(void **state)
{
    struct fixture *f = *state;
    char path[128];
    p1_flags_path(f, path, sizeof path);
    assert_int_equal(carol_verdict(f, path), 200);  /* this thread's entry */
    /* removed by someone else: this process has not re-read the generation */
    assert_int_equal(kw_store_membership_delete(f->store, f->carol.id, f->p1.org_id), KW_OK);
    assert_int_equal(carol_gets(f, path, NULL), 200);
    /* another thread has no entry: it reads, and is refused */
    struct other_thread o = {f, f->carol.id, -1, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, membership_on_other_thread, &o), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(o.rc, KW_ERR_NOTFOUND);
    /* ... and from then on this thread's older entry is not used either */
    assert_int_equal(carol_gets(f, path, NULL), 404);
}

/* "@current" is resolved from the memberships as stored: when that read
 * sees a departure (the person has no organization left), no kept entry
 * may let the person into the organization they left afterwards. */
static void test_current_refusal_makes_kept_memberships_stale(void **state)
{
    struct fixture *f = *state;
    char path[128];
    p1_flags_path(f, path, sizeof path);
    const char *routes[] = {"/api/projects/@current/feature_flags/", "/api/organizations/@current/"};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        assert_int_equal(kw_store_membership_set(f->store, f->carol.id, f->p1.org_id,
                                                 KW_LEVEL_MEMBER),
                         KW_OK);
        assert_int_equal(carol_verdict(f, path), 200);  /* kept */
        assert_int_equal(kw_store_membership_delete(f->store, f->carol.id, f->p1.org_id), KW_OK);
        assert_int_equal(carol_gets(f, path, NULL), 200);  /* nothing re-read yet */
        assert_int_equal(carol_gets(f, routes[i], NULL), 404);
        assert_int_equal(carol_gets(f, path, NULL), 404);
    }
}

/* A restored database's counter can be below what this process read
 * before; the poll takes that as "everything may have changed": every
 * kept read is dropped, and later writes are seen again. */
static void test_restored_database_drops_kept_reads(void **state)
{
    struct fixture *f = *state;
    char path[128];
    p1_flags_path(f, path, sizeof path);
    assert_int_equal(carol_verdict(f, path), 200);  /* kept */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE kw_meta SET value = value - 50 "
                                      "WHERE name = 'directory_generation'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    int64_t before = kw_directory_generation(f->directory);
    /* the departure's bump leaves the counter far below what was read */
    assert_int_equal(kw_store_membership_delete(f->store, f->carol.id, f->p1.org_id), KW_OK);
    kw_directory_poll(f->directory);
    assert_true(kw_directory_generation(f->directory) < before);
    assert_int_equal(carol_gets(f, path, NULL), 404);
    /* and the counter counts on from there: a return is seen at the next poll */
    assert_int_equal(kw_store_membership_set(f->store, f->carol.id, f->p1.org_id, KW_LEVEL_MEMBER),
                     KW_OK);
    kw_directory_poll(f->directory);
    assert_int_equal(carol_gets(f, path, NULL), 200);
}

/* Sets the database's directory counter, behind the store's back. */
static void set_directory_counter(struct fixture *f, int64_t value)
{
    sqlite3 *db;
    char sql[128];
    snprintf(sql, sizeof sql,
             "UPDATE kw_meta SET value = %lld WHERE name = 'directory_generation'",
             (long long)value);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* carol made an admin of p1's organization, seen (generation in *held)
 * and kept by this thread at the returned time, later than every entry
 * read so far. */
static int64_t carol_kept_as_admin(struct fixture *f, const char *path, int64_t *held)
{
    assert_int_equal(kw_store_membership_set(f->store, f->carol.id, f->p1.org_id, KW_LEVEL_ADMIN),
                     KW_OK);
    assert_int_equal(kw_directory_refresh(f->directory), KW_OK);
    *held = kw_directory_generation(f->directory);
    int64_t t0 = kw_now() + 2000000;
    assert_int_equal(carol_level_at(f, path, t0), KW_LEVEL_ADMIN);
    return t0;
}

/* carol's level changed with the generation's bump undone: a write no
 * poll can see, to tell whether a kept entry is read again. */
static void set_level_unseen(struct fixture *f, int level, int64_t held)
{
    assert_int_equal(kw_store_membership_set(f->store, f->carol.id, f->p1.org_id, level), KW_OK);
    set_directory_counter(f, held);
}

/* A poll that reads the generation unchanged proves the kept reads at it
 * current as of the poll's start: while polls succeed, a kept membership
 * is not read again (no round trip on the request thread once a second),
 * and once they stop it lasts a second from the last confirmation.  To
 * see whether an entry is read again, the level is changed with the
 * generation's bump undone, a write this process could not see. */
static void test_polls_confirm_kept_reads(void **state)
{
    struct fixture *f = *state;
    char path[128];
    p1_flags_path(f, path, sizeof path);
    int64_t held, t0 = carol_kept_as_admin(f, path, &held);
    set_level_unseen(f, KW_LEVEL_MEMBER, held);
    for (int64_t at = 400000; at <= 2800000; at += 400000) {  /* polls 0.4 s apart */
        kw_clock_set(t0 + at);
        kw_directory_poll(f->directory);
        assert_int_equal(kw_directory_generation(f->directory), held);
        /* kept: confirmed 0.3 s ago */
        assert_int_equal(carol_level_at(f, path, t0 + at + 300000), KW_LEVEL_ADMIN);
    }
    /* polls stop (t0 + 2.8 s was the last): kept until a second after it */
    assert_int_equal(carol_level_at(f, path, t0 + 3799999), KW_LEVEL_ADMIN);
    assert_int_equal(carol_level_at(f, path, t0 + 3800000), KW_LEVEL_MEMBER);
    /* the clock set back: a read or confirmation ahead of it is not
     * trusted (else an hour's step back would keep entries for an hour) */
    set_level_unseen(f, KW_LEVEL_ADMIN, held);
    kw_clock_set(t0 + 10000000);
    kw_directory_poll(f->directory);  /* confirms at t0 + 10 s what was read at t0 + 3.8 s */
    assert_int_equal(carol_level_at(f, path, t0 + 5000000), KW_LEVEL_ADMIN);
    kw_clock_set(0);
}

/* Confirmations do not keep an entry forever: ten seconds after it was
 * read it is read again, which bounds a write the triggers never saw
 * (TRUNCATE, triggers disabled) even while every poll succeeds. */
static void test_confirmed_reads_are_read_again_after_ten_seconds(void **state)
{
    struct fixture *f = *state;
    char path[128];
    p1_flags_path(f, path, sizeof path);
    int64_t held, t0 = carol_kept_as_admin(f, path, &held);
    set_level_unseen(f, KW_LEVEL_MEMBER, held);
    for (int64_t at = 500000; at < 10000000; at += 500000) {
        kw_clock_set(t0 + at);
        kw_directory_poll(f->directory);
        assert_int_equal(carol_level_at(f, path, t0 + at + 400000), KW_LEVEL_ADMIN);  /* ≤ 9.9 s */
    }
    kw_clock_set(t0 + 10000000);
    kw_directory_poll(f->directory);
    assert_int_equal(carol_level_at(f, path, t0 + 10000000), KW_LEVEL_MEMBER);
    kw_clock_set(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_table_invariants),
        cmocka_unit_test(test_refuse_kind),
        cmocka_unit_test(test_allow),
        cmocka_unit_test_setup_teardown(test_check_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_project_binding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_execution_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_org_routes_and_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_team_limited_keys_stay_out_of_org_routes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_org_limited_and_cross_org_over_the_table, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_current_org, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_reads_follow_the_generation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_departure_seen_by_one_thread_is_seen_by_all, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_current_refusal_makes_kept_memberships_stale, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_restored_database_drops_kept_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_polls_confirm_kept_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_confirmed_reads_are_read_again_after_ten_seconds, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
