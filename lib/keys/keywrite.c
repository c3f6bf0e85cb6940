/* keywrite.c — create / update / roll of an API key, for both kinds (see
 * keywrite.h).
 *
 * One copy of the sequence keeps the two kinds from drifting apart where
 * they must not: the plaintext lives only in the caller's `value` buffer,
 * the row and its activity entry commit or roll back together, and a
 * write that can change a verification result drops the verifier's cache
 * (kw_txn_end). */
#include "keys/keywrite.h"

#include <string.h>

#include "keyward/narrow.h"
#include "keys/keylife.h"
#include "store/txn.h"
#include "keyward/validate.h"

static int new_value(const kw_keykind *k, const kw_keyrow *key, char value[KW_KEY_LEN + 1],
                     kw_problem *p)
{
    int rc = kw_key_generate(k->kind, value);
    if (!rc) rc = kw_key_hash(value, KW_KEY_LEN, key->secure_value);
    if (rc) return kw_storage_problem(p, rc);
    kw_key_mask(value, KW_KEY_LEN, key->mask_value);
    return 0;
}

/* The store refused the row with KW_ERR_EXISTS: a refusal only where the
 * kind keeps labels unique; otherwise the caller passes it on as the
 * storage failure it is.  Rolls back when it answers. */
static int refuse_exists(const kw_call *c, const kw_keykind *k, const kw_keyrow *key, int rc,
                         kw_problem *p)
{
    if (rc != KW_ERR_EXISTS || !k->unique_label) return 0;
    kw_store_rollback(c->store);
    kw_problem_set(p, KW_P_VALIDATION, "invalid_input", NULL, "%s with label '%.164s' already exists.",
                   k->unique_label, key->label);
    return 1;
}

int kw_keywrite_covered(const kw_call *c, const kw_keykind *k, const kw_keyrow *key,
                        kw_problem *p)
{
    /* Thread-local: a principal is 3 KB and request threads are small. */
    static _Thread_local kw_principal target;
    kw_principal_clear(&target);
    k->reach(key, &target);
    target.kind = k->kind;
    target.expires_at = *key->expires_at;
    target.rate_limit_per_minute = *key->rate_limit_per_minute;
    return kw_narrow_check(c->actor, 0, &target, 0, KW_NARROW_KEY, p);
}

int kw_keywrite_create(const kw_call *c, const kw_keykind *k, const kw_keyrow *key,
                       const json_t *body, char value[KW_KEY_LEN + 1], kw_problem *p)
{
    if (k->apply(c, body, 1, key->row, NULL, p) || kw_keywrite_covered(c, k, key, p)) return 1;
    if (kw_uuid_v4(key->id)) return kw_storage_problem(p, KW_ERR_CRYPTO);
    if (new_value(k, key, value, p)) return 1;
    *key->created_at = kw_now();
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = k->insert(c->store, key->row, k->max_keys);
    if (refuse_exists(c, k, key, rc, p)) return 1;
    if (rc == KW_ERR_LIMIT) {
        kw_store_rollback(c->store);
        kw_problem_set(p, KW_P_VALIDATION, "invalid_input", NULL,
                       "You can only have %d %s. Remove an existing key before creating a new one.",
                       k->max_keys, k->plural);
        return 1;
    }
    if (!rc) rc = k->audit(c, key, "created", NULL, NULL);
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

int kw_keywrite_update(const kw_call *c, const kw_keykind *k, const kw_keyrow *key,
                       const json_t *body, kw_problem *p)
{
    if (kw_keywrite_covered(c, k, key, p)) return 1;
    json_t *changes = json_array();
    if (!changes) return kw_storage_problem(p, KW_ERR_NOMEM);
    if (k->apply(c, body, 0, key->row, changes, p) || kw_keywrite_covered(c, k, key, p)) {
        json_decref(changes);
        return 1;
    }
    if (json_array_size(changes) == 0) {  /* nothing changed: nothing to write or log */
        json_decref(changes);
        return 0;
    }
    *key->joined = 0;  /* an expiry change may shorten the previous value's grace */
    int rc = kw_store_begin(c->store);
    if (rc) {
        json_decref(changes);
        return kw_storage_problem(p, rc);
    }
    rc = k->update(c->store, key->row);
    if (refuse_exists(c, k, key, rc, p)) {
        json_decref(changes);
        return 1;
    }
    if (!rc)
        rc = k->audit(c, key, "updated", changes, NULL);
    else
        json_decref(changes);
    return kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p);
}

int kw_keywrite_roll(const kw_call *c, const kw_keykind *k, const kw_keyrow *key,
                     const json_t *body, char value[KW_KEY_LEN + 1], kw_problem *p)
{
    int64_t grace;
    json_t *context;
    /* kw_life_roll_grace reads a NULL body as "no grace, no context". */
    /* Rolling hands the caller the key's powers: it must cover them. */
    if (kw_keywrite_covered(c, k, key, p) || (body && kw_v_object(body, p)) ||
        kw_life_roll_grace(body, &grace, &context, p))
        return 1;
    json_t *changes = json_array();
    if (!changes) {
        json_decref(context);
        return kw_storage_problem(p, KW_ERR_NOMEM);
    }
    char previous[KW_SECURE_MAX + 1];
    strcpy(previous, key->secure_value);
    if ((body && kw_life_apply(body, KW_LIFE_ROLL, k->audit_type, key->expires_at,
                               key->rate_limit_per_minute, changes, p)) ||
        kw_keywrite_covered(c, k, key, p) || new_value(k, key, value, p)) {
        json_decref(changes);
        json_decref(context);
        return 1;
    }
    kw_time now = *key->last_rolled_at = kw_now();
    *key->joined = 0;  /* the previous value's grace changes now */
    int rc = kw_store_begin(c->store);
    if (rc) {
        json_decref(changes);
        json_decref(context);
        return kw_storage_problem(p, rc);
    }
    rc = k->roll(c->store, key->owner_id, key->id, key->secure_value, key->mask_value, now);
    if (!rc) rc = kw_life_keep_previous(c, k->kind, key->id, previous, grace, now);
    /* expires_at rides along: the roll writes only the value columns. */
    int changed = json_array_size(changes) > 0;
    if (!rc && changed) rc = k->update(c->store, key->row);
    if (!changed) json_decref(changes);  /* the audit below steals it otherwise */
    if (!rc) {
        rc = k->audit(c, key, "rolled", changed ? changes : NULL, context);
    } else {
        if (changed) json_decref(changes);
        json_decref(context);
    }
    return kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p);
}
