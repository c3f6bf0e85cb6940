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
    /* Told of flag writes (kw_flagcache_after_write); NULL outside the server. */
    struct kw_flagcache *flags;
    /* Re-read after every commit (kw_directory_refresh), so the @me cache
     * never answers this write's caller from before it; NULL outside the
     * server. */
    struct kw_directory *directory;
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

/* A project's browser SDK settings (lib/org/sdk_settings.c): the fields of
 * `body` that name one (booleans: autocapture_opt_out,
 * capture_performance_opt_in, heatmaps_opt_in; other fields are ignored)
 * are checked, then written with an activity entry in one transaction;
 * *out is the settings after.  The policy has checked the actor's level. */
int kw_project_settings_update(const kw_call *c, const kw_project *project, const json_t *body,
                               kw_project_settings *out, kw_problem *problem);
/* The same in two steps, for a PATCH that also changes other fields:
 * parse checks the body's settings (absent ones -1 in *change) and writes
 * nothing; apply writes them (nothing when all are -1) and fills *out. */
int kw_project_settings_parse(const json_t *body, kw_project_settings *change,
                              kw_problem *problem);
int kw_project_settings_apply(const kw_call *c, const kw_project *project,
                              const kw_project_settings *change, kw_project_settings *out,
                              kw_problem *problem);
/* Adds each setting to obj as a boolean, under its field name. */
void kw_project_settings_json(const kw_project_settings *settings, json_t *obj);

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
/* Organizations and their projects (lib/org/org.c).  The policy has
 * already checked the caller's membership, narrowing and level in the
 * organization (owners only delete one, admins rename and add projects).
 * Names: an organization's at most 64 characters, a project's 200.
 *
 * kw_org_create: the actor becomes its owner; a key limited to
 * organizations (scoped_organizations) cannot create one, since the new
 * organization would lie outside its reach.
 * kw_org_delete: deletes the organization with its projects, their phs_
 * keys (revoked at once on every instance), phc_ tokens, flags, events and
 * endpoints, its memberships and invitations.  Personal keys are not
 * deleted: they lose the organization because nobody is a member any more
 * (a key's scoped_organizations keeps the dead id, which is never reused
 * and so grants nothing).
 * kw_project_delete: the same for one project; a personal key scoped to
 * it keeps the dead id in scoped_teams, and project ids are never reused,
 * so it reaches no other project. */
int kw_org_create(const kw_call *c, const json_t *body, kw_org *out, kw_problem *problem);
int kw_org_update(const kw_call *c, const char *org_id, const json_t *body, kw_org *out,
                  kw_problem *problem);
int kw_org_delete(const kw_call *c, const char *org_id, kw_problem *problem);
int kw_project_create(const kw_call *c, const char *org_id, const json_t *body, kw_project *out,
                      kw_problem *problem);
int kw_project_update(const kw_call *c, kw_project *project, const json_t *body,
                      kw_problem *problem);
int kw_project_delete(const kw_call *c, const kw_project *project, kw_problem *problem);
/* Activity entries of an organization-wide change: one at organization
 * level (project 0) and one in each of its projects, where readers of a
 * project's log look. */
int kw_audit_org(const kw_call *c, const char *org_id, const char *activity, const char *scope,
                 const char *item_id, const char *name, json_t *changes, json_t *context);

/* Members (lib/org/member.c), by user uuid in `org_id`, where the actor's
 * level is `actor_level` (checked by the policy: admin or owner).  Nobody
 * changes or removes someone above their own level or sets a level above
 * their own; an organization always keeps an owner (the last one can be
 * neither demoted nor removed).  Removal is departure from that
 * organization: the member's personal keys stop reaching it at once on
 * this instance and within one poll on the others (kw_directory keeps a
 * membership for at most a second), project secret keys they created keep
 * working. */
int kw_member_update(const kw_call *c, const char *org_id, int actor_level, const char *user_uuid,
                     const json_t *body, kw_member *out, kw_problem *problem);
int kw_member_remove(const kw_call *c, const char *org_id, int actor_level, const char *user_uuid,
                     kw_problem *problem);

/* Capture (lib/events/capture.c): events sent with a project token.  The token
 * the SDKs put in the payload (api_key, token, $token, properties.token;
 * for a list or a batch, of its first event), or NULL. */
#define KW_CAPTURE_MAX_EVENTS 1000
const char *kw_payload_token(const json_t *payload);
/* Validates and stores every event of `payload` (one event, a list, or
 * {batch: [...]}) in one transaction; *stored = how many. */
int kw_capture(const kw_call *c, int64_t project_id, const json_t *payload, size_t *stored,
               kw_problem *problem);
/* A Capture V1 batch ({created_at, batch: [{event, uuid, distinct_id,
 * timestamp, session_id?, window_id?, options, properties}]}): each event
 * folded back into the body kw_capture stores (session_id → $session_id,
 * options → their $ properties, $lib / $lib_version from `sdk_info`, the
 * PostHog-Sdk-Info header "name/version", may be NULL), then stored like
 * kw_capture's, all or nothing. */
int kw_capture_v1(const kw_call *c, int64_t project_id, const json_t *payload,
                  const char *sdk_info, size_t *stored, kw_problem *problem);

/* Capture in two steps, so a server can store many requests' events in
 * one transaction.  kw_capture_stage validates and copies what the events
 * need into a batch; it takes over the caller's reference to payload (also
 * when it fails) and answers 0, or 1 with the problem.  The V1 variant
 * folds the events first, as kw_capture_v1 does. */
typedef struct kw_capture_batch kw_capture_batch;
int kw_capture_stage(const kw_call *c, int64_t project_id, json_t *payload, kw_capture_batch **out,
                     kw_problem *problem);
int kw_capture_v1_stage(const kw_call *c, int64_t project_id, json_t *payload,
                        const char *sdk_info, kw_capture_batch **out, kw_problem *problem);
size_t kw_capture_batch_size(const kw_capture_batch *b);
void kw_capture_batch_free(kw_capture_batch *b);
/* Stores one batch in a transaction of its own (then learns its group
 * types): a kw_err; KW_ERR_NOTFOUND when its project is gone. */
int kw_capture_store(const kw_call *c, kw_capture_batch *b);
/* The problem a failed store of captured events (rc, as kw_capture_store
 * and the capture group's done callbacks give it) answers: KW_ERR_NOTFOUND,
 * their project is gone (deleted after the token was verified), is the
 * token's fault, as it would be a moment later: 401 invalid_api_key;
 * anything else is the store's (500, or 503 while it is unavailable). */
int kw_capture_problem(kw_problem *p, int rc);

/* A capture group (lib/events/capture_group.c): one thread that stores
 * every batch queued while it was storing the previous ones in a single
 * transaction — one commit (PostgreSQL: one fsync) for many requests, and
 * no writers queueing on SQLite's lock.  If that transaction fails, each
 * batch is stored alone, so one failure fails only its own request.
 * done(batch, rc, ctx) runs once per submitted batch, on the group's
 * thread, after its events are committed (rc KW_OK) or failed; it owns
 * the batch then.  kw_capture_group_submit answers KW_ERR_LIMIT when
 * `max_queued` batches are waiting, or when the batches not yet done would
 * hold more than KW_CAPTURE_QUEUE_BYTES (shed the request: 503), and
 * KW_ERR_UNAVAILABLE once stopping; the batch stays the caller's.  Stop
 * stores what is queued, calls its done callbacks, and ends the thread;
 * submissions are refused from then on, until free, which must wait until
 * no thread can submit any more (free stops it first if needed). */
typedef void (*kw_capture_done)(kw_capture_batch *b, int rc, void *ctx);
/* Memory the queued batches may hold together: a request count alone lets
 * a client make each hold 1,000 times its size on the wire (a 10 KB gzip
 * body inflates to 10 MiB) while the database is slow. */
#define KW_CAPTURE_QUEUE_BYTES ((size_t)128 * 1024 * 1024)
typedef struct kw_capture_group kw_capture_group;
int kw_capture_group_start(const kw_call *c, size_t max_queued, kw_capture_group **out);
int kw_capture_group_submit(kw_capture_group *g, kw_capture_batch *b, kw_capture_done done,
                            void *ctx);
/* The same for a batch whose request was already answered (nobody waits
 * on it): it may wait up to KW_CAPTURE_GATHER_US for other batches to
 * share its transaction, which makes the transactions fewer and larger. */
#define KW_CAPTURE_GATHER_US 2000
int kw_capture_group_submit_answered(kw_capture_group *g, kw_capture_batch *b,
                                     kw_capture_done done, void *ctx);
void kw_capture_group_stop(kw_capture_group *g);
void kw_capture_group_free(kw_capture_group *g);
/* Group types (lib/events/group_types.c): learns the types captured
 * events name ($groups keys, $groupidentify's $group_type),
 * adding new ones at the next index while the project has fewer than
 * KW_GROUP_TYPES_MAX.  Best effort: the events are already stored. */
#define KW_GROUP_TYPES_SEEN_MAX 16  /* distinct names looked at per request */
/* The distinct type names a list of events uses, in order, at most max:
 * they point into events. */
size_t kw_group_types_collect(const json_t *events, const char **names, size_t max);
void kw_group_types_learn(const kw_call *c, int64_t project_id, const char *const *names,
                          size_t n);
/* GET …/groups_types/: the project's types, PostHog's shape. */
int kw_group_types_json(const kw_call *c, int64_t project_id, json_t **out, kw_problem *problem);
/* PATCH …/groups_types/update_metadata: body [{group_type_index,
 * name_singular?, name_plural?}], checked whole before any write; *out is
 * the list after. */
int kw_group_types_rename(const kw_call *c, const kw_project *project, const json_t *body,
                          json_t **out, kw_problem *problem);

/* Endpoints (lib/events/endpoint.c; schema in docs/endpoints.md), addressed by
 * name inside `project`; the policy has already checked access. */
int kw_endpoint_create(const kw_call *c, const kw_project *project, const json_t *body,
                       kw_endpoint *out, kw_problem *problem);
int kw_endpoint_update(const kw_call *c, const kw_project *project, const char *name,
                       const json_t *body, kw_endpoint *out, kw_problem *problem);
int kw_endpoint_delete(const kw_call *c, const kw_project *project, const char *name,
                       kw_problem *problem);
int kw_endpoint_load(const kw_call *c, int64_t project_id, const char *name, kw_endpoint *out,
                     kw_problem *problem);
/* A run in two halves, so that the query can run on a thread of its own:
 * prepare loads the endpoint and resolves `variables` (an object, or NULL
 * = defaults only) into *job; execute runs it, with at most time_limit_ms
 * of database time (0: no bound; below 0: none left, refused at once) and
 * *result = {"columns", "results", "name", "kind"} (and "truncated": true
 * when recent_events' budget cut it), owned by the caller.  Past the limit
 * the problem is 504 query_timeout. */
typedef struct kw_endpoint_job kw_endpoint_job;
int kw_endpoint_run_prepare(const kw_call *c, const kw_project *project, const char *name,
                            const json_t *variables, kw_endpoint_job **job, kw_problem *problem);
int kw_endpoint_run_execute(kw_store *store, kw_endpoint_job *job, int64_t time_limit_ms,
                            json_t **result, kw_problem *problem);
void kw_endpoint_job_free(kw_endpoint_job *job);

#endif
