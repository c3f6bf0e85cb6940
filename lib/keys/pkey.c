/* pkey.c — personal API key operations shared by the API and the CLI.
 *
 * The rules (PostHog's, plus keyward's "never more than you hold"):
 * a label of at most 40 characters; a non-empty list of known scopes; teams
 * and organizations the user belongs to; at most 10 keys per user; a key
 * created, changed, rolled or deleted by another key is never broader than
 * that key (kw_narrow_check, through kw_keywrite_covered).  The plaintext exists only in the
 * caller's `value` buffer; the store gets the hash and the mask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/service.h"
#include "keys/keylife.h"
#include "keys/keywrite.h"
#include "store/txn.h"
#include "keyward/validate.h"

#define MAX_SCOPE_ITEMS 100

/* Dumps a validated list as compact JSON into a fixed column buffer. */
static int store_list(const json_t *list, char *dst, size_t size, const char *field, kw_problem *p)
{
    dst[0] = '\0';
    if (!list) return 0;
    char *text = json_dumps(list, JSON_COMPACT);
    if (!text) return kw_storage_problem(p, KW_ERR_NOMEM);
    size_t n = strlen(text);
    if (n >= size) {
        free(text);
        kw_problem_set(p, KW_P_VALIDATION, "max_length", field, "Ensure this field is shorter.");
        return 1;
    }
    memcpy(dst, text, n + 1);
    free(text);
    return 0;
}

static int check_scopes(const json_t *list, kw_problem *p)
{
    if (kw_v_list_length(list, "scopes", 0, MAX_SCOPE_ITEMS, p)) return 1;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        kw_scopes one = {0, 0, 0};
        if (!json_is_string(item) || kw_scopes_add(&one, json_string_value(item))) {
            char shown[128];
            if (json_is_string(item))
                snprintf(shown, sizeof shown, "%s", json_string_value(item));
            else
                snprintf(shown, sizeof shown, "%s", kw_v_type_name(item));
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "scopes", "Invalid scope: %s", shown);
            return 1;
        }
    }
    return 0;
}

static int check_teams(const kw_call *c, int64_t user_id, const json_t *list, kw_problem *p)
{
    size_t i;
    json_t *item;
    if (json_array_size(list) > KW_MAX_SCOPED) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", "scoped_teams",
                       "Ensure this field has no more than %d elements.", KW_MAX_SCOPED);
        return 1;
    }
    json_array_foreach(list, i, item) {
        if (!json_is_integer(item)) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid", "scoped_teams",
                           "A valid integer is required.");
            return 1;
        }
        kw_project project;
        int level;
        int rc = kw_store_project_get(c->store, json_integer_value(item), &project);
        if (!rc) rc = kw_store_membership_level(c->store, user_id, project.org_id, &level);
        if (rc == KW_ERR_NOTFOUND) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "scoped_teams",
                           "You must be a member of all teams that you are scoping the key to.");
            return 1;
        }
        if (rc) return kw_storage_problem(p, rc);
    }
    return 0;
}

static int check_orgs(const kw_call *c, int64_t user_id, const json_t *list, kw_problem *p)
{
    size_t i;
    json_t *item;
    if (json_array_size(list) > KW_MAX_SCOPED) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", "scoped_organizations",
                       "Ensure this field has no more than %d elements.", KW_MAX_SCOPED);
        return 1;
    }
    json_array_foreach(list, i, item) {
        int level;
        if (!json_is_string(item) || json_string_length(item) > KW_ID_LEN) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid", "scoped_organizations",
                           "Must be a valid UUID.");
            return 1;
        }
        int rc = kw_store_membership_level(c->store, user_id, json_string_value(item), &level);
        if (rc == KW_ERR_NOTFOUND) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "scoped_organizations",
                           "You must be a member of all organizations that you are scoping the key to.");
            return 1;
        }
        if (rc) return kw_storage_problem(p, rc);
    }
    return 0;
}

/* Validates the fields present in `body` and writes them into the
 * kw_pkey `row` (kw_keykind.apply). */
static int apply_fields(const kw_call *c, const json_t *body, int creating, void *row,
                        json_t *changes, kw_problem *p)
{
    kw_pkey *key = row;
    const char *label;
    json_t *scopes, *teams, *orgs;
    if (kw_v_object(body, p)) return 1;
    if (kw_v_string(body, "label", creating, KW_LABEL_MAX_CHARS, 0, &label, p)) return 1;
    if (kw_v_list(body, "scopes", creating, 0, &scopes, p)) return 1;
    if (scopes && check_scopes(scopes, p)) return 1;
    /* Membership only: whether the result stays within the caller is
     * decided on the finished row (kw_keywrite_covered). */
    if (kw_v_list(body, "scoped_teams", 0, 1, &teams, p)) return 1;
    if (teams && check_teams(c, key->user_id, teams, p)) return 1;
    if (kw_v_list(body, "scoped_organizations", 0, 1, &orgs, p)) return 1;
    if (orgs && check_orgs(c, key->user_id, orgs, p)) return 1;

    char before[KW_JSON_LIST_MAX];
    if (label && strcmp(label, key->label) != 0) {
        if (changes && !creating)
            json_array_append_new(changes, kw_audit_change("PersonalAPIKey", "changed", "label",
                                                           json_string(key->label), json_string(label)));
        snprintf(key->label, sizeof key->label, "%s", label);
    }
    struct {
        const json_t *list;
        char *column;
        const char *field;
    } lists[] = {{scopes, key->scopes, "scopes"},
                 {teams, key->scoped_teams, "scoped_teams"},
                 {orgs, key->scoped_orgs, "scoped_organizations"}};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        if (!json_object_get(body, lists[i].field)) continue;
        memcpy(before, lists[i].column, sizeof before);
        if (store_list(lists[i].list, lists[i].column, KW_JSON_LIST_MAX, lists[i].field, p)) return 1;
        if (changes && !creating && strcmp(before, lists[i].column) != 0)
            json_array_append_new(
                changes, kw_audit_change("PersonalAPIKey", "changed", lists[i].field,
                                         before[0] ? json_loads(before, 0, NULL) : json_null(),
                                         lists[i].list ? json_deep_copy(lists[i].list) : json_null()));
    }
    return kw_life_apply(body, creating ? KW_LIFE_CREATE : KW_LIFE_UPDATE, "PersonalAPIKey",
                         &key->expires_at, &key->rate_limit_per_minute, creating ? NULL : changes, p);
}

/* What the key reaches: its scopes and its project/organization narrowing
 * (kw_keykind.reach). */
static void reach(const kw_keyrow *key, kw_principal *out)
{
    const kw_pkey *row = key->row;
    kw_principal_load_scopes(out, row->scopes, row->scoped_teams, row->scoped_orgs);
}

static int insert(kw_store *store, const void *row, int max)
{
    return kw_store_pkey_insert(store, row, max);
}

static int update(kw_store *store, const void *row)
{
    return kw_store_pkey_update(store, row);
}

/* Fans out to every project the key reaches (kw_audit_personal_key). */
static int audit(const kw_call *c, const kw_keyrow *key, const char *activity, json_t *changes,
                 json_t *context)
{
    return kw_audit_personal_key_context(c, key->row, activity, changes, context);
}

/* No unique_label: two of a user's keys may share a label. */
static const kw_keykind PERSONAL = {
    .kind = KW_KEY_PERSONAL, .audit_type = "PersonalAPIKey", .plural = "personal API keys",
    .max_keys = KW_MAX_PERSONAL_KEYS, .apply = apply_fields, .reach = reach, .insert = insert, .update = update,
    .roll = kw_store_pkey_roll, .audit = audit};

int kw_pkey_load(const kw_call *c, const char *id, kw_pkey *out, kw_problem *p)
{
    if (strcmp(id, "@current") == 0) id = c->actor->key_id;
    return kw_problem_from_store(
        p, *id ? kw_store_pkey_get(c->store, c->actor->user_id, id, out) : KW_ERR_NOTFOUND);
}

int kw_pkey_create(const kw_call *c, const json_t *body, kw_pkey *out, char value[KW_KEY_LEN + 1],
                   kw_problem *p)
{
    memset(out, 0, sizeof *out);
    out->user_id = c->actor->user_id;
    return kw_keywrite_create(c, &PERSONAL, KW_KEYROW(out, NULL, out->user_id), body, value, p);
}

int kw_pkey_update(const kw_call *c, const char *id, const json_t *body, kw_pkey *out, kw_problem *p)
{
    if (kw_pkey_load(c, id, out, p)) return 1;
    return kw_keywrite_update(c, &PERSONAL, KW_KEYROW(out, NULL, out->user_id), body, p);
}

/* The new value keeps the key's expiry unless `body` (may be NULL) gives
 * expires_at; expire_previous_in_seconds gives the old value a grace
 * period (kw_keywrite_roll). */
int kw_pkey_roll(const kw_call *c, const char *id, const json_t *body, kw_pkey *out,
                 char value[KW_KEY_LEN + 1], kw_problem *p)
{
    if (kw_pkey_load(c, id, out, p)) return 1;
    return kw_keywrite_roll(c, &PERSONAL, KW_KEYROW(out, NULL, out->user_id), body, value, p);
}

int kw_pkey_delete(const kw_call *c, const char *id, kw_problem *p)
{
    static _Thread_local kw_pkey key;
    if (kw_pkey_load(c, id, &key, p) ||
        kw_keywrite_covered(c, &PERSONAL, KW_KEYROW(&key, NULL, key.user_id), p))
        return 1;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    /* Audit first: the fan-out reads the key's narrowing from the row. */
    rc = kw_audit_personal_key(c, &key, "deleted", NULL);
    if (!rc) rc = kw_store_pkey_delete(c->store, key.user_id, key.id);
    return kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p);
}
