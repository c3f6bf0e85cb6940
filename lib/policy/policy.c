/* policy.c — the route table and the one function that applies it.
 *
 * Every HTTP route of keyward is a row below: method, path pattern, which
 * credential kinds may call it, the scope it needs and the membership level
 * it needs inside the project's organization.  The HTTP layer matches a
 * request to a row and calls kw_policy_check before any handler runs;
 * handlers never check credentials themselves.  The table is tested as a
 * table (tests/unit/test_policy.c). */
#include "keyward/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

#define ADMIN (KW_CRED_PERSONAL | KW_CRED_SESSION)
/* Execution routes machines call: a project secret key is welcome too. */
#define EXEC (KW_CRED_SECRET | KW_CRED_PERSONAL | KW_CRED_SESSION)

/* Columns after scope_denied are optional: a row that leaves them out
 * means 0 (C's rule for a partial initializer), so the warning about it is
 * off for this table only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
static const kw_route ROUTES[] = {
    {KW_ROUTE_HEALTH, "GET", "/_health", KW_CRED_NONE, NULL, 0, NULL},
    {KW_ROUTE_ME, "GET", "/api/users/@me", ADMIN, "user:read", 0, NULL},
    {KW_ROUTE_PROJECT_LIST, "GET", "/api/projects", ADMIN, "project:read", 0, NULL},
    {KW_ROUTE_PROJECT_GET, "GET", "/api/projects/:project", ADMIN, "project:read", KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_PROJECT_RESET_TOKEN, "PATCH", "/api/projects/:project/reset_token", ADMIN,
     "project:write", KW_LEVEL_ADMIN, NULL},
    /* PostHog lets a personal key only read itself; keyward also lets it
     * manage personal keys when it holds the keyward-only scope, so a
     * rotation script can run with a key instead of a browser session. */
    {KW_ROUTE_PKEY_LIST, "GET", "/api/personal_api_keys", ADMIN, "personal_api_key:read", 0,
     KW_MSG_PERSONAL_UNSUPPORTED},
    {KW_ROUTE_PKEY_CREATE, "POST", "/api/personal_api_keys", ADMIN, "personal_api_key:write", 0,
     KW_MSG_PERSONAL_UNSUPPORTED},
    {KW_ROUTE_PKEY_CURRENT, "GET", "/api/personal_api_keys/@current", ADMIN, NULL, 0, NULL},
    /* The key report of the caller's personal keys: age, use, and the
     * scopes granted vs used.  A literal segment: it must stay before the
     * :id rows below. */
    {KW_ROUTE_PKEY_REPORT, "GET", "/api/personal_api_keys/report", ADMIN, "personal_api_key:read", 0,
     KW_MSG_PERSONAL_UNSUPPORTED},
    {KW_ROUTE_PKEY_GET, "GET", "/api/personal_api_keys/:id", ADMIN, "personal_api_key:read", 0,
     KW_MSG_PERSONAL_UNSUPPORTED},
    {KW_ROUTE_PKEY_UPDATE, "PATCH", "/api/personal_api_keys/:id", ADMIN, "personal_api_key:write", 0,
     KW_MSG_PERSONAL_UNSUPPORTED},
    {KW_ROUTE_PKEY_DELETE, "DELETE", "/api/personal_api_keys/:id", ADMIN, "personal_api_key:write", 0,
     KW_MSG_PERSONAL_UNSUPPORTED},
    {KW_ROUTE_PKEY_ROLL, "POST", "/api/personal_api_keys/:id/roll", ADMIN, "personal_api_key:write", 0,
     KW_MSG_PERSONAL_UNSUPPORTED},
    /* Flag definitions for local evaluation.  Listed before the
     * feature_flags/:num rows: the first matching row wins.  Flag ids are
     * numbers (:num), so PATCH …/local_evaluation is a 405, not a flag. */
    {KW_ROUTE_FLAG_DEFS_PROJECT, "GET", "/api/projects/:project/feature_flags/local_evaluation", EXEC,
     "feature_flag:read", KW_LEVEL_MEMBER, NULL},
    /* A remote-config flag's payload (posthog-node's getRemoteConfigPayload):
     * an execution route like the definitions.  :id is the flag's key (or
     * id); the trailing literal keeps it clear of the :num rows below. */
    {KW_ROUTE_FLAG_REMOTE_CONFIG, "GET", "/api/projects/:project/feature_flags/:id/remote_config",
     EXEC, "feature_flag:read", KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_FLAG_LIST, "GET", "/api/projects/:project/feature_flags", ADMIN, "feature_flag:read",
     KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_FLAG_CREATE, "POST", "/api/projects/:project/feature_flags", ADMIN, "feature_flag:write",
     KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_FLAG_GET, "GET", "/api/projects/:project/feature_flags/:num", ADMIN, "feature_flag:read",
     KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_FLAG_UPDATE, "PATCH", "/api/projects/:project/feature_flags/:num", ADMIN,
     "feature_flag:write", KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_FLAG_DELETE, "DELETE", "/api/projects/:project/feature_flags/:num", ADMIN,
     "feature_flag:write", KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_ACTIVITY_LIST, "GET", "/api/projects/:project/activity_log", ADMIN, "activity_log:read",
     KW_LEVEL_MEMBER, NULL},
    /* Project secret keys: members may see them, only project admins may
     * create, change, roll or delete one (PostHog's rule). */
    {KW_ROUTE_PSK_LIST, "GET", "/api/projects/:project/project_secret_api_keys", ADMIN,
     "project:read", KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_PSK_CREATE, "POST", "/api/projects/:project/project_secret_api_keys", ADMIN,
     "project:write", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_PSK_GET, "GET", "/api/projects/:project/project_secret_api_keys/:id", ADMIN,
     "project:read", KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_PSK_UPDATE, "PATCH", "/api/projects/:project/project_secret_api_keys/:id", ADMIN,
     "project:write", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_PSK_DELETE, "DELETE", "/api/projects/:project/project_secret_api_keys/:id", ADMIN,
     "project:write", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_PSK_ROLL, "POST", "/api/projects/:project/project_secret_api_keys/:id/roll", ADMIN,
     "project:write", KW_LEVEL_ADMIN, NULL},
    /* The project comes from ?token=phc_… or from the phs_ key; the
     * handler resolves and checks it (h_flag_defs.c). */
    {KW_ROUTE_FLAG_DEFS_LEGACY, "GET", "/api/feature_flag/local_evaluation", EXEC, "feature_flag:read",
     0, NULL},
    {KW_ROUTE_FLAG_DEFS, "GET", "/flags/definitions", EXEC, "feature_flag:read", 0, NULL},
    /* Leak reports come from GitHub or anyone who found a key: no
     * credential, the token itself is the proof (and, when configured,
     * the reporter's signature, checked by the handler: h_leak.c). */
    {KW_ROUTE_LEAK_REPORT, "POST", "/api/secret_scanning/report", KW_CRED_NONE, NULL, 0, NULL},
    /* Asking whether keys are live without revoking them needs a trusted
     * caller: any personal key (no particular scope). */
    {KW_ROUTE_LEAK_VERIFY, "POST", "/api/secret_scanning/verify", ADMIN, NULL, 0, NULL},
    /* Departure: PATCH {"is_active": false}.  PostHog's users endpoint
     * needs user:write.  It names no project or organization, yet needs
     * the admin level: an organization-level route, whose level lib/org/user.c
     * checks in every organization of the target. */
    {KW_ROUTE_USER_UPDATE, "PATCH", "/api/users/:id", ADMIN, "user:write", KW_LEVEL_ADMIN, NULL},
    /* Remote evaluation: only the project token (phc_), read from the JSON
     * body (token, api_key or $token), never from Authorization; dispatch
     * verifies it and the principal carries the project. */
    {KW_ROUTE_FLAGS_EVAL, "POST", "/flags", KW_CRED_PROJECT, NULL, 0, NULL},
    {KW_ROUTE_DECIDE, "POST", "/decide", KW_CRED_PROJECT, NULL, 0, NULL},
    /* Capture: the phc_ token travels in the body (api_key / token /
     * $token / properties.token); dispatch reads it there and nowhere
     * else, so no Authorization header can stand in for it. */
    {KW_ROUTE_CAPTURE_E, "POST", "/e", KW_CRED_PROJECT, NULL, 0, NULL},
    {KW_ROUTE_CAPTURE_I_V0_E, "POST", "/i/v0/e", KW_CRED_PROJECT, NULL, 0, NULL},
    {KW_ROUTE_CAPTURE_BATCH, "POST", "/batch", KW_CRED_PROJECT, NULL, 0, NULL},
    {KW_ROUTE_CAPTURE_CAPTURE, "POST", "/capture", KW_CRED_PROJECT, NULL, 0, NULL},
    {KW_ROUTE_CAPTURE_TRACK, "POST", "/track", KW_CRED_PROJECT, NULL, 0, NULL},
    {KW_ROUTE_CAPTURE_ENGAGE, "POST", "/engage", KW_CRED_PROJECT, NULL, 0, NULL},
    /* Endpoints: named read-only queries over captured events.  Running
     * one is an execution route (a machine's, like the flag definitions):
     * a phs_ key with endpoint:read may call it too. */
    {KW_ROUTE_ENDPOINT_LIST, "GET", "/api/projects/:project/endpoints", ADMIN, "endpoint:read",
     KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_ENDPOINT_CREATE, "POST", "/api/projects/:project/endpoints", ADMIN, "endpoint:write",
     KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_ENDPOINT_GET, "GET", "/api/projects/:project/endpoints/:id", ADMIN, "endpoint:read",
     KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_ENDPOINT_UPDATE, "PATCH", "/api/projects/:project/endpoints/:id", ADMIN,
     "endpoint:write", KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_ENDPOINT_DELETE, "DELETE", "/api/projects/:project/endpoints/:id", ADMIN,
     "endpoint:write", KW_LEVEL_MEMBER, NULL},
    /* Running reads only, so POST (variables in the body) needs :read too. */
    {KW_ROUTE_ENDPOINT_RUN_GET, "GET", "/api/projects/:project/endpoints/:id/run", EXEC,
     "endpoint:read", KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_ENDPOINT_RUN_POST, "POST", "/api/projects/:project/endpoints/:id/run", EXEC,
     "endpoint:read", KW_LEVEL_MEMBER, NULL},
    /* The project's key report (rotation, use, least privilege) — its
     * phs_ keys and the caller's personal keys that reach it. */
    {KW_ROUTE_KEY_REPORT, "GET", "/api/projects/:project/key_report", ADMIN, "project:read",
     KW_LEVEL_MEMBER, NULL},
    /* The web console.  Signing in and accepting an invitation need no
     * credential (the password or the invitation token is the credential,
     * checked by lib/auth/session.c and lib/org/invite.c); the session routes take
     * only a session.  Invitations are an organization admin's act. */
    {KW_ROUTE_LOGIN, "POST", "/api/login", KW_CRED_NONE, NULL, 0, NULL},
    {KW_ROUTE_LOGOUT, "POST", "/api/logout", KW_CRED_SESSION, NULL, 0, NULL},
    {KW_ROUTE_SESSION, "GET", "/api/session", KW_CRED_SESSION, NULL, 0, NULL},
    {KW_ROUTE_INVITE_CREATE, "POST", "/api/organizations/:org/invites", ADMIN,
     "organization_member:write", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_INVITE_LIST, "GET", "/api/organizations/:org/invites", ADMIN,
     "organization_member:read", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_INVITE_DELETE, "DELETE", "/api/organizations/:org/invites/:id", ADMIN,
     "organization_member:write", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_INVITE_ACCEPT, "POST", "/api/invites/accept", KW_CRED_NONE, NULL, 0, NULL},
    {KW_ROUTE_INVITE_GET, "GET", "/api/invites/:id", KW_CRED_NONE, NULL, 0, NULL},
    /* The console's pages and files, embedded in the binary. */
    {KW_ROUTE_CONSOLE, "GET", "/", KW_CRED_NONE, NULL, 0, NULL},
    {KW_ROUTE_CONSOLE_INVITE, "GET", "/invite/:id", KW_CRED_NONE, NULL, 0, NULL},
    {KW_ROUTE_CONSOLE_ASSET, "GET", "/assets/:id", KW_CRED_NONE, NULL, 0, NULL},
    /* Operations.  Readiness, for load balancers: whether this instance
     * reaches its database (503 "degraded" while it does not), read from
     * the verifier's poll, never a query of its own (h_ops.c). */
    {KW_ROUTE_HEALTH_READY, "GET", "/_health/ready", KW_CRED_NONE, NULL, 0, NULL},
    /* Organizations, their projects and members.  Only people (phx_ and
     * sessions) reach them.  The two rows without an :org carry a level
     * so they count as organization-level (keys limited to projects are
     * refused); the listing shows only the caller's organizations, and
     * whoever creates one becomes its owner (lib/org/org.c). */
    {KW_ROUTE_ORG_LIST, "GET", "/api/organizations", ADMIN, "organization:read", KW_LEVEL_MEMBER,
     NULL},
    {KW_ROUTE_ORG_CREATE, "POST", "/api/organizations", ADMIN, "organization:write",
     KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_ORG_GET, "GET", "/api/organizations/:org", ADMIN, "organization:read",
     KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_ORG_UPDATE, "PATCH", "/api/organizations/:org", ADMIN, "organization:write",
     KW_LEVEL_ADMIN, NULL},
    /* Deleting an organization deletes its projects and revokes their
     * keys: owners only. */
    {KW_ROUTE_ORG_DELETE, "DELETE", "/api/organizations/:org", ADMIN, "organization:write",
     KW_LEVEL_OWNER, NULL},
    {KW_ROUTE_ORG_PROJECT_LIST, "GET", "/api/organizations/:org/projects", ADMIN, "project:read",
     KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_ORG_PROJECT_CREATE, "POST", "/api/organizations/:org/projects", ADMIN,
     "project:write", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_MEMBER_LIST, "GET", "/api/organizations/:org/members", ADMIN,
     "organization_member:read", KW_LEVEL_MEMBER, NULL},
    /* :id is the member's user uuid, as PostHog's user__uuid. */
    {KW_ROUTE_MEMBER_UPDATE, "PATCH", "/api/organizations/:org/members/:id", ADMIN,
     "organization_member:write", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_MEMBER_DELETE, "DELETE", "/api/organizations/:org/members/:id", ADMIN,
     "organization_member:write", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_PROJECT_CREATE, "POST", "/api/projects", ADMIN, "project:write", KW_LEVEL_ADMIN,
     NULL, 1},
    {KW_ROUTE_PROJECT_UPDATE, "PATCH", "/api/projects/:project", ADMIN, "project:write",
     KW_LEVEL_ADMIN, NULL},
    /* Deleting a project revokes its phs_ keys and phc_ token. */
    {KW_ROUTE_PROJECT_DELETE, "DELETE", "/api/projects/:project", ADMIN, "project:write",
     KW_LEVEL_ADMIN, NULL},
    /* PostHog's SDKs.  A project's settings (what its remote config
     * serves) are a project admin's, like its token: PATCH of the project
     * (KW_ROUTE_PROJECT_UPDATE above) changes them. */
    /* posthog-js's remote config: the phc_ token is in the path and is all
     * the credential there is (public by design); the handler resolves it
     * and answers an unknown one like an unknown path (h_remote_config.c). */
    {KW_ROUTE_REMOTE_CONFIG, "GET", "/array/:id/config", KW_CRED_NONE, NULL, 0, NULL},
    {KW_ROUTE_REMOTE_CONFIG_JS, "GET", "/array/:id/config.js", KW_CRED_NONE, NULL, 0, NULL},
    /* posthog-js's files (the HTML snippet loads /static/array.js): public,
     * served from memory by exact name (h_static.c). */
    {KW_ROUTE_STATIC_JS, "GET", "/static/:id", KW_CRED_NONE, NULL, 0, NULL},
    /* …and under a version segment (posthog-js's strict_script_versioning,
     * /static/<version>/<name>.js): the same files, the version not read. */
    {KW_ROUTE_STATIC_JS_VERSIONED, "GET", "/static/:any/:id", KW_CRED_NONE, NULL, 0, NULL},
    /* posthog-node 5's capture routes: Capture V1 (the phc_ token as a
     * bearer, the one phc_ route that reads Authorization: dispatch.c) and
     * the AI events' batch (the /batch/ body). */
    {KW_ROUTE_CAPTURE_V1, "POST", "/i/v1/analytics/events", KW_CRED_PROJECT, NULL, 0, NULL},
    {KW_ROUTE_CAPTURE_AI, "POST", "/i/v0/ai/batch", KW_CRED_PROJECT, NULL, 0, NULL},
    /* Group types: learned from capture; members list them and set their
     * display names (PostHog's groups_types routes and scopes). */
    {KW_ROUTE_GROUP_TYPES_LIST, "GET", "/api/projects/:project/groups_types", ADMIN, "group:read",
     KW_LEVEL_MEMBER, NULL},
    {KW_ROUTE_GROUP_TYPES_RENAME, "PATCH", "/api/projects/:project/groups_types/update_metadata",
     ADMIN, "group:write", KW_LEVEL_MEMBER, NULL},
    /* Webhooks: an organization's admins' (PostHog's webhook scopes).  A
     * webhook's URL and delivery log say where the organization's key
     * events go, so reading them needs the admin level too. */
    {KW_ROUTE_WEBHOOK_LIST, "GET", "/api/organizations/:org/webhooks", ADMIN, "webhook:read",
     KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_WEBHOOK_CREATE, "POST", "/api/organizations/:org/webhooks", ADMIN, "webhook:write",
     KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_WEBHOOK_GET, "GET", "/api/organizations/:org/webhooks/:id", ADMIN, "webhook:read",
     KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_WEBHOOK_UPDATE, "PATCH", "/api/organizations/:org/webhooks/:id", ADMIN,
     "webhook:write", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_WEBHOOK_DELETE, "DELETE", "/api/organizations/:org/webhooks/:id", ADMIN,
     "webhook:write", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_WEBHOOK_DELIVERIES, "GET", "/api/organizations/:org/webhooks/:id/deliveries", ADMIN,
     "webhook:read", KW_LEVEL_ADMIN, NULL},
    {KW_ROUTE_WEBHOOK_TEST, "POST", "/api/organizations/:org/webhooks/:id/test", ADMIN,
     "webhook:write", KW_LEVEL_ADMIN, NULL},
    /* The API's description, as PostHog serves its own: public, like the
     * source it is generated from. */
    {KW_ROUTE_SCHEMA, "GET", "/api/schema", KW_CRED_NONE, NULL, 0, NULL},
};
#pragma GCC diagnostic pop
_Static_assert(sizeof ROUTES / sizeof ROUTES[0] == KW_ROUTE_COUNT, "one row per route id");

const kw_route *kw_policy_routes(size_t *count)
{
    *count = sizeof ROUTES / sizeof ROUTES[0];
    return ROUTES;
}

void kw_policy_invalid_personal(kw_cred_source source, kw_problem *problem)
{
    static const char *const WHERE[] = {"Authorization header", "body", "query string"};
    kw_problem_set(problem, KW_P_AUTH_FAILED, NULL, NULL,
                   "Personal API key found in request %s is invalid.", WHERE[source]);
}

int kw_policy_refuse_kind(const kw_route *route, kw_key_kind kind, kw_cred_source source,
                          kw_problem *problem)
{
    switch (kind) {
    case KW_KEY_PERSONAL:
        if (route->credentials & KW_CRED_PERSONAL) return 0;
        kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL, KW_MSG_PERSONAL_UNSUPPORTED);
        return 1;
    case KW_KEY_SECRET:
        if (route->credentials & KW_CRED_SECRET) return 0;
        kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL, KW_MSG_SECRET_UNSUPPORTED);
        return 1;
    case KW_KEY_PROJECT:
        if (route->credentials & KW_CRED_PROJECT) return 0;
        /* PostHog reads any bearer token on /api/ as a personal key. */
        kw_policy_invalid_personal(source, problem);
        return 1;
    default:
        kw_policy_invalid_personal(source, problem);
        return 1;
    }
}

struct first_project {
    const kw_principal *principal;
    kw_project *out;
    int found;
};

static int pick_first_project(void *ctx, const kw_project *p)
{
    struct first_project *fp = ctx;
    if (!kw_principal_team_allowed(fp->principal, p->id) ||
        !kw_principal_org_allowed(fp->principal, p->org_id))
        return 0;
    *fp->out = *p;
    fp->found = 1;
    return 1;  /* stop */
}

/* After "@current" was resolved from the person's memberships as stored
 * (not through the directory's kept reads): re-reading the generation
 * makes whatever that read saw — a departure — stale every older kept
 * membership on every thread before the request is answered, so a request
 * refused here is never followed by one let in from memory. */
static void current_read(kw_directory *dir) { kw_directory_refresh(dir); }

/* Resolves the :project segment to a stored project, or a 404. */
static int resolve_project(kw_store *store, kw_directory *dir, const char *ref,
                           const kw_principal *pr, kw_project *project, kw_problem *problem)
{
    int rc;
    if (strcmp(ref, "@current") == 0) {
        if (pr->kind == KW_KEY_SECRET || pr->kind == KW_KEY_PROJECT) {
            rc = kw_directory_project(dir, store, pr->project_id, project);
        } else {
            struct first_project fp = {pr, project, 0};
            rc = kw_store_user_projects(store, pr->user_id, pick_first_project, &fp);
            if (rc == 1) rc = KW_OK;
            if (!rc && !fp.found) rc = KW_ERR_NOTFOUND;
            current_read(dir);
        }
    } else {
        errno = 0;
        long long id = strtoll(ref, NULL, 10);
        rc = errno ? KW_ERR_NOTFOUND : kw_directory_project(dir, store, id, project);
    }
    return kw_problem_from_store(problem, rc);
}

int kw_policy_org_level(const kw_route *route)
{
    if (strstr(route->pattern, "/:project")) return 0;
    return strstr(route->pattern, "/:org") != NULL || route->min_level > 0 || route->in_current_org;
}

struct first_org {
    const kw_principal *principal;
    char *out;
};

static int pick_first_org(void *ctx, const kw_org *org, int level)
{
    (void)level;
    struct first_org *fo = ctx;
    if (!kw_principal_org_allowed(fo->principal, org->id)) return 0;
    strcpy(fo->out, org->id);
    return 1;  /* stop */
}

int kw_policy_current_org(kw_store *store, const kw_principal *pr, char org_id[KW_ID_LEN + 1])
{
    org_id[0] = '\0';
    if (pr->kind == KW_KEY_SECRET || pr->kind == KW_KEY_PROJECT) return KW_ERR_NOTFOUND;
    if (pr->kind != KW_KEY_PERSONAL && !pr->session) return KW_ERR_NOTFOUND;
    struct first_org fo = {pr, org_id};
    int rc = kw_store_user_orgs(store, pr->user_id, pick_first_org, &fo);
    if (rc < 0) return rc;
    return org_id[0] ? KW_OK : KW_ERR_NOTFOUND;
}

/* An organization route: the same membership, narrowing and level rules
 * as a project route, in the organization itself.  Only people reach here
 * (organization routes take no phs_/phc_). */
static int check_org(kw_store *store, kw_directory *dir, kw_route_match *m,
                     const kw_principal *pr, int *level, kw_problem *problem)
{
    int rc = KW_OK;
    if (strcmp(m->org, "@current") == 0) {
        char current[KW_ID_LEN + 1];
        rc = kw_policy_current_org(store, pr, current);
        current_read(dir);
        if (!rc) snprintf(m->org, sizeof m->org, "%s", current);
    }
    if (!rc)
        rc = pr->kind == KW_KEY_SECRET || pr->kind == KW_KEY_PROJECT
                 ? KW_ERR_NOTFOUND
                 : kw_directory_membership_level(dir, store, pr->user_id, m->org, level);
    /* Not a member: "Not found.", so other tenants' ids are not confirmed. */
    if (kw_problem_from_store(problem, rc)) return 1;
    if (!kw_principal_org_allowed(pr, m->org)) {
        kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL,
                       "API key does not have access to the requested organization: ID %s.", m->org);
        return 1;
    }
    if (*level < m->route->min_level) {
        kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL,
                       "You don't have sufficient permissions in the organization.");
        return 1;
    }
    return 0;
}

int kw_policy_check(kw_store *store, kw_directory *dir, kw_route_match *m,
                    const kw_principal *pr, kw_project *project, int *level, kw_problem *problem)
{
    const kw_route *route = m->route;
    *level = 0;
    if (route->credentials & KW_CRED_NONE) return 0;
    if (pr->kind == KW_KEY_NONE && !pr->session) {
        kw_problem_set(problem, KW_P_NOT_AUTHENTICATED, NULL, NULL, KW_MSG_NOT_AUTHENTICATED);
        return 1;
    }
    if (route->scope && !pr->session) {
        int object;
        kw_scope_action action;
        if (kw_policy_route_scope(route, &object, &action) ||
            !kw_scopes_allow(&pr->scopes, object, action)) {
            if (route->scope_denied && pr->kind == KW_KEY_PERSONAL)
                kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL, "%s", route->scope_denied);
            else
                kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL,
                               "API key missing required scope '%s'", route->scope);
            return 1;
        }
    }
    /* A key limited to projects acts in those projects only, never on
     * what spans an organization (its members, invitations, settings, a
     * person's account), whatever its scopes say. */
    if (!pr->session && pr->n_scoped_teams >= 0 && kw_policy_org_level(route)) {
        kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL, KW_MSG_PROJECT_LIMITED);
        return 1;
    }
    if (route->in_current_org && !m->org[0]) snprintf(m->org, sizeof m->org, "@current");
    if (m->org[0]) return check_org(store, dir, m, pr, level, problem);
    if (!m->project[0]) return 0;
    /* A project key reaches its own project only: any other id is refused
     * before it is looked up, the same whether it exists or not, so the
     * answer never confirms another tenant's project ids. */
    if ((pr->kind == KW_KEY_SECRET || pr->kind == KW_KEY_PROJECT) &&
        strcmp(m->project, "@current") != 0) {
        char *end;
        errno = 0;
        long long id = strtoll(m->project, &end, 10);
        if (errno || *end || id != pr->project_id) {
            kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL,
                           "API key does not have access to the requested project: ID %s.",
                           m->project);
            return 1;
        }
    }
    if (resolve_project(store, dir, m->project, pr, project, problem)) return 1;
    if (pr->kind == KW_KEY_SECRET || pr->kind == KW_KEY_PROJECT) {
        if (project->id != pr->project_id) {
            kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL,
                           "API key does not have access to the requested project: ID %lld.",
                           (long long)project->id);
            return 1;
        }
        return 0;
    }
    /* A person reaches only projects of their organizations; anything else
     * is "Not found." so ids of other tenants are not confirmed. */
    if (kw_problem_from_store(problem, kw_directory_membership_level(dir, store, pr->user_id,
                                                                     project->org_id, level)))
        return 1;
    if (!kw_principal_team_allowed(pr, project->id)) {
        kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL,
                       "API key does not have access to the requested project: ID %lld.",
                       (long long)project->id);
        return 1;
    }
    if (!kw_principal_org_allowed(pr, project->org_id)) {
        kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL,
                       "API key does not have access to the requested organization: ID %s.",
                       project->org_id);
        return 1;
    }
    if (*level < route->min_level) {
        kw_problem_set(problem, KW_P_PERMISSION, NULL, NULL, KW_MSG_INSUFFICIENT_LEVEL);
        return 1;
    }
    return 0;
}
