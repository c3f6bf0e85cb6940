/* keywrite.h — the create / update / roll writes both key kinds share
 * (internal).
 *
 * Personal keys (pkey.c) and project secret keys (psk.c) differ in their
 * field rules, their store table and how their activity entry is written;
 * the sequence around those — new value and hash, one transaction for the
 * row and its activity entry, the roll's grace period ("rolled" rows) and
 * the verifier's invalidation — is the same, so it lives here once and a
 * kind is described by a kw_keykind. */
#ifndef KW_KEYWRITE_H
#define KW_KEYWRITE_H

#include <jansson.h>
#include <stdint.h>

#include "keyward/keyward.h"
#include "keyward/service.h"

/* The fields of a kind's row (kw_pkey, kw_psk) the shared writes touch,
 * as pointers into it.  Build one with KW_KEYROW. */
typedef struct kw_keyrow {
    void *row;             /* the kind's struct, handed back to the kind's functions */
    const void *owner;     /* what the kind's audit needs besides the row (psk: the project) */
    int64_t owner_id;      /* user_id / project_id: the store's roll is keyed by it */
    char *id;              /* [KW_ID_LEN + 1] */
    const char *label;
    char *secure_value;    /* [KW_SECURE_MAX + 1] */
    char *mask_value;      /* [KW_MASK_MAX] */
    kw_time *created_at;
    kw_time *last_rolled_at;
    kw_time *expires_at;
    int32_t *rate_limit_per_minute;
    /* Set when the row came from a listing read that carried its grace and
     * creator; a write clears it so answers read them afresh. */
    int *joined;
} kw_keyrow;

#define KW_KEYROW(key, owner_, owner_id_)                                                   \
    (&(kw_keyrow){(key), (owner_), (owner_id_), (key)->id, (key)->label, (key)->secure_value, \
                  (key)->mask_value, &(key)->created_at, &(key)->last_rolled_at,          \
                  &(key)->expires_at, &(key)->rate_limit_per_minute, &(key)->joined})

/* What differs between the kinds. */
typedef struct kw_keykind {
    kw_key_kind kind;         /* prefix of new values; kind of the "rolled" rows */
    const char *audit_type;   /* activity scope, and type of its changes */
    const char *plural;       /* for the limit's text: "personal API keys" */
    int max_keys;             /* per owner */
    /* Labels unique per owner: "<unique_label> with label '…' already
     * exists." answers KW_ERR_EXISTS.  NULL: that is a storage failure. */
    const char *unique_label;
    /* The kind's field rules: validates `body` into the row; `creating`
     * makes the required fields required; appends to `changes` (may be
     * NULL).  0, or 1 with *p filled. */
    int (*apply)(const kw_call *c, const json_t *body, int creating, void *row, json_t *changes,
                 kw_problem *p);
    /* The row's reach as a principal (scopes, projects, organizations;
     * kind, expiry and rate limit are filled by keywrite): what the
     * "never broader than the caller" check compares. */
    void (*reach)(const kw_keyrow *key, kw_principal *out);
    int (*insert)(kw_store *store, const void *row, int max);
    int (*update)(kw_store *store, const void *row);
    int (*roll)(kw_store *store, int64_t owner_id, const char *id, const char *secure_value,
                const char *mask_value, kw_time now);
    /* One activity entry of the row; `changes` and `context` (may be
     * NULL) are stolen. */
    int (*audit)(const kw_call *c, const kw_keyrow *key, const char *activity, json_t *changes,
                 json_t *context);
} kw_keykind;

/* The kind's owner fields are set and the rest of the row is zero; fills
 * id, value, created_at and writes the row with its "created" entry.
 * `value` gets the plaintext.  0, or 1 with *p filled. */
int kw_keywrite_create(const kw_call *c, const kw_keykind *kind, const kw_keyrow *key,
                       const json_t *body, char value[KW_KEY_LEN + 1], kw_problem *p);
/* On a loaded row: applies `body`; writes and logs "updated" only when
 * something changed.  The row must be no broader than the caller before
 * and after: a key may tighten itself or a key it covers, never loosen. */
int kw_keywrite_update(const kw_call *c, const kw_keykind *kind, const kw_keyrow *key,
                       const json_t *body, kw_problem *p);
/* On a loaded row: a new value.  The expiry is kept unless `body` (may
 * be NULL) gives expires_at: a new future time, or null for "never".
 * With expire_previous_in_seconds N > 0 the old value keeps working for N
 * seconds (kw_life_keep_previous; any earlier previous value goes). */
int kw_keywrite_roll(const kw_call *c, const kw_keykind *kind, const kw_keyrow *key,
                     const json_t *body, char value[KW_KEY_LEN + 1], kw_problem *p);

/* 0 when the row, as it stands now, is no broader than the caller
 * (kw_narrow_check); else 1 with a 403 in *p.  Create, update and roll
 * check it themselves (before and after applying `body`); delete asks it
 * before removing a row. */
int kw_keywrite_covered(const kw_call *c, const kw_keykind *kind, const kw_keyrow *key,
                        kw_problem *p);

#endif
