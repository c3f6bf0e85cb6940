/* store_console.h — what the web console keeps in the store: password
 * hashes, sign-in sessions, invitations, failed sign-ins and named server
 * secrets (lib/store/console.c).  Tokens are stored only as hashes.  Part
 * of the store API: <keyward/store.h> includes it. */
#ifndef KEYWARD_STORE_CONSOLE_H
#define KEYWARD_STORE_CONSOLE_H

#include "keyward/store_base.h"

#define KW_PASSWORD_HASH_MAX 256  /* an argon2id encoded string */
#define KW_TOKEN_HASH_LEN 64      /* hex sha256 of a session or invitation token */

/* A console session.  Only the sha256 of the cookie's token is stored, so
 * a copy of the database does not let anyone sign in. */
typedef struct kw_session {
    char token_hash[KW_TOKEN_HASH_LEN + 1];
    int64_t user_id;
    kw_time created_at;
    kw_time last_seen_at;
    kw_time expires_at;   /* absolute end, whatever the activity */
    int user_active;      /* read with the session (users.is_active) */
} kw_session;

/* A one-time invitation into an organization (token stored hashed). */
typedef struct kw_invite {
    char id[KW_ID_LEN + 1];
    char org_id[KW_ID_LEN + 1];
    char token_hash[KW_TOKEN_HASH_LEN + 1];
    char target_email[KW_EMAIL_MAX + 1];
    int level;
    int64_t created_by;   /* user id, 0 = null */
    kw_time created_at;
    kw_time expires_at;
    kw_time accepted_at;  /* 0 = not yet */
} kw_invite;

/* The user's argon2id hash, "" when none is set. */
int kw_store_user_password_get(kw_store *store, int64_t user_id, char out[KW_PASSWORD_HASH_MAX + 1]);
int kw_store_user_password_set(kw_store *store, int64_t user_id, const char *hash);

int kw_store_session_insert(kw_store *store, const kw_session *session);
int kw_store_session_get(kw_store *store, const char *token_hash, kw_session *out);
/* last_seen_at = now unless it was set within `interval` (one conditional UPDATE). */
int kw_store_session_touch(kw_store *store, const char *token_hash, kw_time now, kw_time interval);
int kw_store_session_delete(kw_store *store, const char *token_hash);
int kw_store_session_delete_user(kw_store *store, int64_t user_id);  /* every session of a user */
/* Deletes the user's sessions expired at `now` or idle for `idle`, and all
 * but the `keep` newest. */
int kw_store_session_prune_user(kw_store *store, int64_t user_id, kw_time now, kw_time idle,
                                int keep);

int kw_store_invite_insert(kw_store *store, const kw_invite *invite);
int kw_store_invite_by_hash(kw_store *store, const char *token_hash, kw_invite *out);
/* Marks the invitation used; KW_ERR_NOTFOUND unless it was unused and
 * unexpired at `now` (one conditional UPDATE: a link works once). */
int kw_store_invite_accept(kw_store *store, const char *id, kw_time now);
/* An organization's pending invitations (unused, unexpired at `now`),
 * newest first; and how many there are. */
typedef int (*kw_invite_cb)(void *ctx, const kw_invite *invite);
int kw_store_invite_list(kw_store *store, const char *org_id, kw_time now, int64_t limit,
                         int64_t offset, kw_invite_cb cb, void *ctx);
int kw_store_invite_count(kw_store *store, const char *org_id, kw_time now, int64_t *count);
/* Deletes a pending invitation (unused, unexpired at `now`) of the
 * organization and returns it in *out, in one statement; KW_ERR_NOTFOUND
 * when there is none (another organization's, used, expired, or unknown). */
int kw_store_invite_delete(kw_store *store, const char *id, const char *org_id, kw_time now,
                           kw_invite *out);

/* Failed sign-ins, per key ("email:…", "ip:…"), for the login rate limit. */
int kw_store_login_failure_add(kw_store *store, const char *key, kw_time now, kw_time keep);
/* The time of the `nth` most recent failure after `since`, 0 when fewer. */
int kw_store_login_failure_nth(kw_store *store, const char *key, kw_time since, int nth,
                               kw_time *at);
int kw_store_login_failure_clear(kw_store *store, const char *key);
/* Deletes failures older than `before` of every key, at most `limit` of
 * them in one statement; *removed says how many went.  A key's own rows
 * are pruned when it fails again, but a key that never fails again (one
 * of many emails or addresses an attacker tried) is left to this sweep,
 * which the server runs in batches until one comes back short. */
int kw_store_login_failure_sweep(kw_store *store, kw_time before, int64_t limit,
                                 int64_t *removed);

/* A named server secret (text) kept in kw_meta: `candidate` is stored if
 * the name has none yet; *out receives the stored one either way, so every
 * instance sharing the database agrees. */
int kw_store_meta_secret(kw_store *store, const char *name, const char *candidate, char *out,
                         size_t size);

#endif
