/* psk.c — project secret API key (phs_) operations, shared by the API and
 * the CLI.
 *
 * A project secret key belongs to a project, not to a person: it is what a
 * server-side SDK uses to fetch flag definitions for local evaluation or to
 * run an endpoint.  So its scopes are limited to the three read scopes those
 * machines need (PostHog's rule, with PostHog's texts), it keeps working
 * when its creator leaves, and created_by is only a record of who made it.
 * The rules: a label of at most 40 characters, unique in the project; a
 * non-empty list of the allowed scopes; at most 50 keys per project; never
 * broader than the key that creates, changes, rolls or deletes it
 * (kw_keywrite_covered: its scopes, expiry and rate limit).  The
 * store write and its activity entry land in one transaction.  The
 * plaintext exists only in the caller's `value` buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keys/keylife.h"
#include "keys/keywrite.h"
#include "store/txn.h"
#include "keyward/validate.h"
#include "keyward/webhook.h"

#define AUDIT_SCOPE "ProjectSecretAPIKey"
#define MAX_SCOPE_ITEMS 100

/* Sorted, as PostHog lists them in its refusal text. */
static const char *const ALLOWED[] = {"endpoint:read", "experiment:read", "feature_flag:read"};

static int is_allowed(const char *scope)
{
    for (size_t i = 0; i < sizeof ALLOWED / sizeof ALLOWED[0]; i++)
        if (strcmp(scope, ALLOWED[i]) == 0) return 1;
    return 0;
}

static int check_scopes(const json_t *list, kw_problem *p)
{
    if (kw_v_list_length(list, "scopes", 0, MAX_SCOPE_ITEMS, p)) return 1;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        if (!json_is_string(item)) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "scopes", "Invalid scope: %s",
                           kw_v_type_name(item));
            return 1;
        }
        const char *s = json_string_value(item);
        if (is_allowed(s)) continue;
        kw_scopes one = {0, 0, 0};
        if (strcmp(s, "*") == 0)
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "scopes",
                           "Wildcard scope '*' is not allowed for project API keys. Please "
                           "specify explicit scopes.");
        else if (kw_scopes_add(&one, s) == 0)
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "scopes",
                           "Scope '%.128s' can not be assigned to a project secret API key. "
                           "Allowed scopes: %s, %s, %s", s, ALLOWED[0], ALLOWED[1], ALLOWED[2]);
        else
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "scopes", "Invalid scope: %.128s", s);
        return 1;
    }
    return 0;
}

/* Validates the fields present in `body` and writes them into the kw_psk
 * `row` (kw_keykind.apply); `creating` makes both required.  The field
 * rules do not depend on the caller (the policy has checked its access,
 * kw_keywrite_covered its reach), hence no `c`. */
static int apply_fields(const kw_call *c, const json_t *body, int creating, void *row,
                        json_t *changes, kw_problem *p)
{
    (void)c;
    kw_psk *key = row;
    const char *label;
    json_t *scopes;
    if (kw_v_object(body, p)) return 1;
    if (kw_v_string(body, "label", creating, KW_LABEL_MAX_CHARS, 0, &label, p)) return 1;
    if (kw_v_list(body, "scopes", creating, 0, &scopes, p)) return 1;
    if (scopes && check_scopes(scopes, p)) return 1;
    if (label && strcmp(label, key->label) != 0) {
        if (changes)
            json_array_append_new(changes, kw_audit_change(AUDIT_SCOPE, "changed", "label",
                                                           json_string(key->label), json_string(label)));
        snprintf(key->label, sizeof key->label, "%s", label);
    }
    if (scopes) {
        char *text = json_dumps(scopes, JSON_COMPACT);
        if (!text) return kw_storage_problem(p, KW_ERR_NOMEM);
        if (strlen(text) >= sizeof key->scopes) {
            free(text);
            kw_problem_set(p, KW_P_VALIDATION, "max_length", "scopes", "Ensure this field is shorter.");
            return 1;
        }
        if (strcmp(text, key->scopes) != 0) {
            if (changes)
                json_array_append_new(
                    changes, kw_audit_change(AUDIT_SCOPE, "changed", "scopes",
                                             key->scopes[0] ? json_loads(key->scopes, 0, NULL) : json_null(),
                                             json_deep_copy(scopes)));
            strcpy(key->scopes, text);
        }
        free(text);
    }
    return kw_life_apply(body, creating ? KW_LIFE_CREATE : KW_LIFE_UPDATE, AUDIT_SCOPE,
                         &key->expires_at, &key->rate_limit_per_minute, changes, p);
}

/* The key belongs to one project (key->owner), so one entry there; no
 * fan-out as for a personal key.  Its organization's webhooks hear of it
 * in the same transaction. */
static int audit(const kw_call *c, const kw_keyrow *key, const char *activity, json_t *changes,
                 json_t *context)
{
    const kw_project *project = key->owner;
    int rc = kw_webhook_key_event(c, project->org_id, activity,
                                  &(kw_webhook_key){key->id, key->label, key->mask_value,
                                                    "project_secret", project->id, 0,
                                                    *key->expires_at},
                                  context);
    if (rc) {
        json_decref(changes);
        json_decref(context);
        return rc;
    }
    return kw_audit_record_context(c, project->id, project->org_id, activity, AUDIT_SCOPE, key->id,
                                   key->label, changes, context);
}

/* A project secret key reaches its own project only: narrowed to it and
 * to its organization (kw_keykind.reach). */
static void reach(const kw_keyrow *key, kw_principal *out)
{
    const kw_psk *row = key->row;
    const kw_project *project = key->owner;
    kw_principal_load_scopes(out, row->scopes, NULL, NULL);
    out->n_scoped_teams = 1;
    out->scoped_teams[0] = project->id;
    out->n_scoped_orgs = 1;
    snprintf(out->scoped_orgs[0], sizeof out->scoped_orgs[0], "%s", project->org_id);
}

static int insert(kw_store *store, const void *row, int max)
{
    return kw_store_psk_insert(store, row, max);
}

static int update(kw_store *store, const void *row)
{
    return kw_store_psk_update(store, row);
}

static const kw_keykind SECRET = {
    .kind = KW_KEY_SECRET, .audit_type = AUDIT_SCOPE, .plural = "project secret API keys",
    .max_keys = KW_MAX_SECRET_KEYS, .unique_label = "Project secret API key",
    .apply = apply_fields, .reach = reach, .insert = insert, .update = update, .roll = kw_store_psk_roll,
    .audit = audit};

int kw_psk_load(const kw_call *c, int64_t project_id, const char *id, kw_psk *out, kw_problem *p)
{
    int rc = *id ? kw_store_psk_get(c->store, project_id, id, out) : KW_ERR_NOTFOUND;
    if (rc == KW_ERR_NOTFOUND) {
        kw_problem_set(p, KW_P_NOT_FOUND, NULL, NULL, KW_MSG_NOT_FOUND);
        return 1;
    }
    return rc ? kw_storage_problem(p, rc) : 0;
}

int kw_psk_create(const kw_call *c, const kw_project *project, const json_t *body, kw_psk *out,
                  char value[KW_KEY_LEN + 1], kw_problem *p)
{
    memset(out, 0, sizeof *out);
    out->project_id = project->id;
    out->created_by = c->actor->user_id;
    return kw_keywrite_create(c, &SECRET, KW_KEYROW(out, project, out->project_id), body, value, p);
}

int kw_psk_update(const kw_call *c, const kw_project *project, const char *id, const json_t *body,
                  kw_psk *out, kw_problem *p)
{
    if (kw_psk_load(c, project->id, id, out, p)) return 1;
    return kw_keywrite_update(c, &SECRET, KW_KEYROW(out, project, out->project_id), body, p);
}

/* As kw_pkey_roll: the expiry is kept unless `body` gives expires_at, and
 * expire_previous_in_seconds keeps the old value working for a while. */
int kw_psk_roll(const kw_call *c, const kw_project *project, const char *id, const json_t *body,
                kw_psk *out, char value[KW_KEY_LEN + 1], kw_problem *p)
{
    if (kw_psk_load(c, project->id, id, out, p)) return 1;
    return kw_keywrite_roll(c, &SECRET, KW_KEYROW(out, project, out->project_id), body, value, p);
}

int kw_psk_delete(const kw_call *c, const kw_project *project, const char *id, kw_problem *p)
{
    static _Thread_local kw_psk key;
    if (kw_psk_load(c, project->id, id, &key, p) ||
        kw_keywrite_covered(c, &SECRET, KW_KEYROW(&key, project, key.project_id), p))
        return 1;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_psk_delete(c->store, key.project_id, key.id);
    if (!rc) rc = audit(c, KW_KEYROW(&key, project, key.project_id), "deleted", NULL, NULL);
    return kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p);
}
