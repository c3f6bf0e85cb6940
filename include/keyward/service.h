/* service.h — the operations both the HTTP API and the CLI perform.
 *
 * Each takes the acting principal, validates its input (a JSON object, the
 * same one the API receives, so the CLI cannot bypass a rule), changes the
 * store, and writes the activity log.  On refusal it returns non-zero and
 * fills *problem; nothing is changed.  Key values are returned once, in
 * `value`, and never logged. */
#ifndef KEYWARD_SERVICE_H
#define KEYWARD_SERVICE_H

#include <jansson.h>

#include "keyward/auth.h"
#include "keyward/problem.h"
#include "keyward/store.h"

typedef struct kw_call {
    kw_store *store;
    const kw_principal *actor;
    const char *ip;           /* for the activity log; may be NULL */
    kw_verifier *verifier;    /* told of revocations; NULL outside the server */
    /* Told of flag writes (kw_flagcache_bump); NULL outside the server. */
    struct kw_flagcache *flags;
} kw_call;

/* Personal API keys. */
int kw_pkey_create(const kw_call *c, const json_t *body, kw_pkey *out,
                   char value[KW_KEY_LEN + 1], kw_problem *problem);
int kw_pkey_update(const kw_call *c, const char *id, const json_t *body, kw_pkey *out,
                   kw_problem *problem);
/* `body` (may be NULL): {"expires_at": …} to change the expiry with the
 * value; absent, the key keeps its expiry. */
int kw_pkey_roll(const kw_call *c, const char *id, const json_t *body, kw_pkey *out,
                 char value[KW_KEY_LEN + 1], kw_problem *problem);
int kw_pkey_delete(const kw_call *c, const char *id, kw_problem *problem);
/* Loads the actor's own key (`id` may be "@current"); 404 otherwise. */
int kw_pkey_load(const kw_call *c, const char *id, kw_pkey *out, kw_problem *problem);

/* Project secret API keys (phs_) of `project`; the policy has already
 * checked the caller's access and level. */
int kw_psk_create(const kw_call *c, const kw_project *project, const json_t *body, kw_psk *out,
                  char value[KW_KEY_LEN + 1], kw_problem *problem);
int kw_psk_update(const kw_call *c, const kw_project *project, const char *id, const json_t *body,
                  kw_psk *out, kw_problem *problem);
int kw_psk_roll(const kw_call *c, const kw_project *project, const char *id, const json_t *body,
                kw_psk *out, char value[KW_KEY_LEN + 1], kw_problem *problem);
int kw_psk_delete(const kw_call *c, const kw_project *project, const char *id, kw_problem *problem);
int kw_psk_load(const kw_call *c, int64_t project_id, const char *id, kw_psk *out,
                kw_problem *problem);

/* Feature flags (project-scoped; the policy has already checked access). */
int kw_flag_create(const kw_call *c, int64_t project_id, const json_t *body, kw_flag *out,
                   kw_problem *problem);
int kw_flag_update(const kw_call *c, int64_t project_id, const char *id, const json_t *body,
                   kw_flag *out, kw_problem *problem);
int kw_flag_delete(const kw_call *c, int64_t project_id, const char *id, kw_problem *problem);
int kw_flag_load(const kw_call *c, int64_t project_id, const char *id, kw_flag *out,
                 kw_problem *problem);

/* Projects. */
int kw_project_reset_token(const kw_call *c, kw_project *project, kw_problem *problem);

/* Bootstrap: first user, organization (owner) and project, and a phx_ key
 * with scope "*".  Refuses when the store already has a user. */
int kw_bootstrap(kw_store *store, const char *email, const char *org_name,
                 const char *project_name, kw_user *user, kw_project *project,
                 char value[KW_KEY_LEN + 1], kw_problem *problem);

/* Activity log: one entry; `changes` (a JSON array, may be NULL) is
 * stolen.  Personal-key events fan out to every project the key reaches. */
int kw_audit_record(const kw_call *c, int64_t project_id, const char *org_id,
                    const char *activity, const char *scope, const char *item_id,
                    const char *name, json_t *changes);
int kw_audit_personal_key(const kw_call *c, const kw_pkey *key, const char *activity,
                          json_t *changes);
/* {"type","action","field","before","after"}; before/after are stolen. */
json_t *kw_audit_change(const char *type, const char *action, const char *field,
                        json_t *before, json_t *after);

/* The same with detail.context set (e.g. {"reason": "leaked", "url": …});
 * `context` (may be NULL) is stolen. */
int kw_audit_record_context(const kw_call *c, int64_t project_id, const char *org_id,
                            const char *activity, const char *scope, const char *item_id,
                            const char *name, json_t *changes, json_t *context);
int kw_audit_personal_key_context(const kw_call *c, const kw_pkey *key, const char *activity,
                                  json_t *changes, json_t *context);

/* Users: activate or deactivate (departure).  A deactivated user's
 * personal keys stop verifying at once; project secret keys they created
 * keep working.  With c->actor NULL the caller is the operator at the
 * shell (who holds the database anyway): no membership check.  Otherwise
 * the actor must be an admin (level >= 8) of an organization the target
 * belongs to, allowed by the key's scoped_organizations, at a level no
 * lower than the target's there, and not the target; a user the actor
 * shares no organization with is "Not found.".  Writes an activity entry
 * (scope User) to every project of the target's organizations. */
int kw_user_set_active(const kw_call *c, int64_t user_id, int active, kw_user *out,
                       kw_problem *problem);
/* Capture (lib/capture.c): events sent with a project token.  The token
 * the SDKs put in the payload (api_key, token, $token, properties.token;
 * for a list or a batch, of its first event), or NULL. */
#define KW_CAPTURE_MAX_EVENTS 1000
const char *kw_payload_token(const json_t *payload);
/* Validates and stores every event of `payload` (one event, a list, or
 * {batch: [...]}) in one transaction; *stored = how many. */
int kw_capture(const kw_call *c, int64_t project_id, const json_t *payload, size_t *stored,
               kw_problem *problem);

/* Endpoints (lib/endpoint.c; schema in docs/endpoints.md), addressed by
 * name inside `project`; the policy has already checked access. */
int kw_endpoint_create(const kw_call *c, const kw_project *project, const json_t *body,
                       kw_endpoint *out, kw_problem *problem);
int kw_endpoint_update(const kw_call *c, const kw_project *project, const char *name,
                       const json_t *body, kw_endpoint *out, kw_problem *problem);
int kw_endpoint_delete(const kw_call *c, const kw_project *project, const char *name,
                       kw_problem *problem);
int kw_endpoint_load(const kw_call *c, int64_t project_id, const char *name, kw_endpoint *out,
                     kw_problem *problem);
/* Runs with `variables` (an object, or NULL = defaults only): *result =
 * {"columns", "results", "name", "kind"}, owned by the caller. */
int kw_endpoint_run(const kw_call *c, const kw_project *project, const char *name,
                    const json_t *variables, json_t **result, kw_problem *problem);

#endif
