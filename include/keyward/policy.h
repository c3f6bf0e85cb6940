/* policy.h — which credential may call which route, declared as one table.
 *
 * As in PostHog, every route states the key types it accepts, the scope it
 * needs and whether it acts inside a project; kw_policy_check applies that
 * declaration in one place, so no handler repeats (or forgets) a check.
 * Routes are matched on a normalized path: no trailing slash, and
 * /api/environments/:id/… is read as /api/projects/:id/…. */
#ifndef KEYWARD_POLICY_H
#define KEYWARD_POLICY_H

#include <stddef.h>

#include "keyward/auth.h"
#include "keyward/directory.h"
#include "keyward/problem.h"
#include "keyward/store.h"

/* Who may call (bitmask). */
enum {
    KW_CRED_NONE = 1 << 0,      /* no credential needed */
    KW_CRED_PERSONAL = 1 << 1,  /* phx_ */
    KW_CRED_SECRET = 1 << 2,    /* phs_ */
    KW_CRED_PROJECT = 1 << 3,   /* phc_ */
    KW_CRED_SESSION = 1 << 4    /* console session */
};

typedef enum kw_route_id {
    KW_ROUTE_HEALTH,
    KW_ROUTE_ME,
    KW_ROUTE_PROJECT_LIST,
    KW_ROUTE_PROJECT_GET,
    KW_ROUTE_PROJECT_RESET_TOKEN,
    KW_ROUTE_PKEY_LIST,
    KW_ROUTE_PKEY_CREATE,
    KW_ROUTE_PKEY_CURRENT,
    KW_ROUTE_PKEY_REPORT,    /* literal: before PKEY_GET's :id */
    KW_ROUTE_PKEY_GET,
    KW_ROUTE_PKEY_UPDATE,
    KW_ROUTE_PKEY_DELETE,
    KW_ROUTE_PKEY_ROLL,
    KW_ROUTE_FLAG_DEFS_PROJECT,
    KW_ROUTE_FLAG_REMOTE_CONFIG,
    KW_ROUTE_FLAG_LIST,
    KW_ROUTE_FLAG_CREATE,
    KW_ROUTE_FLAG_GET,
    KW_ROUTE_FLAG_UPDATE,
    KW_ROUTE_FLAG_DELETE,
    KW_ROUTE_ACTIVITY_LIST,
    KW_ROUTE_PSK_LIST,
    KW_ROUTE_PSK_CREATE,
    KW_ROUTE_PSK_GET,
    KW_ROUTE_PSK_UPDATE,
    KW_ROUTE_PSK_DELETE,
    KW_ROUTE_PSK_ROLL,
    KW_ROUTE_FLAG_DEFS_LEGACY,
    KW_ROUTE_FLAG_DEFS,
    /* leak reports, user departure, remote flag evaluation */
    KW_ROUTE_LEAK_REPORT,
    KW_ROUTE_LEAK_VERIFY,
    KW_ROUTE_USER_UPDATE,
    KW_ROUTE_FLAGS_EVAL,
    KW_ROUTE_DECIDE,
    /* capture (phc_ in the body) and endpoints (named queries over events) */
    KW_ROUTE_CAPTURE_E,
    KW_ROUTE_CAPTURE_I_V0_E,
    KW_ROUTE_CAPTURE_BATCH,
    KW_ROUTE_CAPTURE_CAPTURE,
    KW_ROUTE_CAPTURE_TRACK,
    KW_ROUTE_CAPTURE_ENGAGE,
    KW_ROUTE_ENDPOINT_LIST,
    KW_ROUTE_ENDPOINT_CREATE,
    KW_ROUTE_ENDPOINT_GET,
    KW_ROUTE_ENDPOINT_UPDATE,
    KW_ROUTE_ENDPOINT_DELETE,
    KW_ROUTE_ENDPOINT_RUN_GET,
    KW_ROUTE_ENDPOINT_RUN_POST,
    /* the project's key report */
    KW_ROUTE_KEY_REPORT,
    /* web console: sign-in, invitations, the embedded pages */
    KW_ROUTE_LOGIN,
    KW_ROUTE_LOGOUT,
    KW_ROUTE_SESSION,
    KW_ROUTE_INVITE_CREATE,
    KW_ROUTE_INVITE_LIST,
    KW_ROUTE_INVITE_DELETE,
    KW_ROUTE_INVITE_ACCEPT,
    KW_ROUTE_INVITE_GET,
    KW_ROUTE_CONSOLE,
    KW_ROUTE_CONSOLE_INVITE,
    KW_ROUTE_CONSOLE_ASSET,
    /* operations: readiness (liveness is KW_ROUTE_HEALTH) */
    KW_ROUTE_HEALTH_READY,
    /* organizations, their projects and members */
    KW_ROUTE_ORG_LIST,
    KW_ROUTE_ORG_CREATE,
    KW_ROUTE_ORG_GET,
    KW_ROUTE_ORG_UPDATE,
    KW_ROUTE_ORG_DELETE,
    KW_ROUTE_ORG_PROJECT_LIST,
    KW_ROUTE_ORG_PROJECT_CREATE,
    KW_ROUTE_MEMBER_LIST,
    KW_ROUTE_MEMBER_UPDATE,
    KW_ROUTE_MEMBER_DELETE,
    KW_ROUTE_PROJECT_CREATE,
    KW_ROUTE_PROJECT_UPDATE,
    KW_ROUTE_PROJECT_DELETE,
    /* what PostHog's browser and server SDKs fetch besides flags and
     * capture: a project's settings (PATCH), its remote config,
     * posthog-js's files for the HTML snippet, posthog-node's newer
     * capture routes, group types */
    KW_ROUTE_REMOTE_CONFIG,
    KW_ROUTE_REMOTE_CONFIG_JS,
    KW_ROUTE_STATIC_JS,
    KW_ROUTE_STATIC_JS_VERSIONED,
    KW_ROUTE_CAPTURE_V1,
    KW_ROUTE_CAPTURE_AI,
    KW_ROUTE_GROUP_TYPES_LIST,
    KW_ROUTE_GROUP_TYPES_RENAME,
    /* an organization's signed webhooks and their delivery log */
    KW_ROUTE_WEBHOOK_LIST,
    KW_ROUTE_WEBHOOK_CREATE,
    KW_ROUTE_WEBHOOK_GET,
    KW_ROUTE_WEBHOOK_UPDATE,
    KW_ROUTE_WEBHOOK_DELETE,
    KW_ROUTE_WEBHOOK_DELIVERIES,
    KW_ROUTE_WEBHOOK_TEST,
    KW_ROUTE_SCHEMA,  /* GET /api/schema/: the OpenAPI document */
    KW_ROUTE_COUNT
} kw_route_id;

typedef struct kw_route {
    kw_route_id id;
    const char *method;
    /* segments; ":project" = project id or @current, ":org" = organization
     * id (membership and level checked like a project's), ":id" = any,
     * ":num" = digits only (also read into id), ":any" = any one segment
     * but "." and "..", not kept */
    const char *pattern;
    unsigned credentials;     /* KW_CRED_* */
    const char *scope;        /* required scope, NULL = none */
    /* Membership level needed in the project's org (or the :org).  On a
     * route naming neither, a level marks it organization-level: the
     * handler checks it in the organizations of what it acts on. */
    int min_level;
    /* 403 text when a personal key lacks the scope; NULL = the standard
     * "API key missing required scope '…'". */
    const char *scope_denied;
    /* Acts in the caller's current organization, as if the path named
     * :org = @current (POST /api/projects/): membership, narrowing and
     * level are checked there like on an :org route. */
    int in_current_org;
} kw_route;

#define KW_ROUTE_MAX_PARAM 128

typedef struct kw_route_match {
    const kw_route *route;
    char project[KW_ROUTE_MAX_PARAM];  /* raw :project segment, "" if none */
    char id[KW_ROUTE_MAX_PARAM];       /* raw :id segment, "" if none */
    /* The :org segment, "" if none; kw_policy_check replaces "@current"
     * (and fills it for in_current_org routes) with the organization id. */
    char org[KW_ROUTE_MAX_PARAM];
} kw_route_match;

typedef enum kw_match_result { KW_MATCH_OK, KW_MATCH_NO_ROUTE, KW_MATCH_BAD_METHOD } kw_match_result;

/* Matches method + path (no query string). */
kw_match_result kw_policy_match(const char *method, const char *path, kw_route_match *out);

const kw_route *kw_policy_routes(size_t *count);

/* The route's required scope as object and action, parsed once for the
 * table's rows.  KW_ERR_INVALID when the route needs no scope. */
int kw_policy_route_scope(const kw_route *route, int *object, kw_scope_action *action);

/* The methods some route serves on `path`, as an Allow header value
 * ("GET, HEAD, OPTIONS"; HEAD wherever GET, OPTIONS always).  Returns the
 * number of routes whose path matched; 0 (and "") when none did. */
size_t kw_policy_allow(const char *path, char *out, size_t size);

/* The verdict for one request.  `principal` is the verified caller (kind
 * KW_KEY_NONE when no credential came).  On success *project is filled for
 * project routes (the resolved :project, "@current" included) and *level
 * with the caller's membership level (in the :org for organization routes).
 * On refusal *problem says why.  With a `directory` the project is read
 * through it (kw_directory_project: kept per thread until the directory
 * changes); NULL reads the store every time.  The membership is always
 * read from the store. */
int kw_policy_check(kw_store *store, kw_directory *directory, kw_route_match *m,
                    const kw_principal *principal, kw_project *project, int *level,
                    kw_problem *problem);

/* The caller's current organization: the first of their organizations
 * (oldest first, as /api/users/@me's "organization") that the key's
 * scoped_organizations admit.  KW_ERR_NOTFOUND when none (or the caller
 * is no person). */
int kw_policy_current_org(kw_store *store, const kw_principal *principal,
                          char org_id[KW_ID_LEN + 1]);

/* True for a route that acts on an organization or a person's account
 * rather than inside a project: its path names no :project and either
 * names an :org or needs a membership level.  Keys narrowed to projects
 * (scoped_teams) are refused there by kw_policy_check. */
int kw_policy_org_level(const kw_route *route);
#define KW_MSG_PROJECT_LIMITED \
    "API key is limited to projects (scoped_teams); this is an organization-level action."

/* The refusal for a credential the route does not accept at all, decided
 * from the key's prefix before any verification (so a phs_ key on an admin
 * route gets 403 without a database lookup).  0 when the kind is accepted. */
int kw_policy_refuse_kind(const kw_route *route, kw_key_kind kind, kw_cred_source source,
                          kw_problem *problem);

/* The 401 for an invalid personal key presented from `source`. */
void kw_policy_invalid_personal(kw_cred_source source, kw_problem *problem);

#endif
