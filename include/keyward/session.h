/* session.h — people in the web console: passwords, sign-in sessions,
 * CSRF tokens and organization invitations.
 *
 * A person signs in with email + password (argon2id, Debian's libargon2)
 * and gets a session: a random 256-bit token in an HttpOnly cookie, of
 * which the database keeps only the sha256.  A session acts as its user
 * with the user's full rights through the same routes and services as a
 * personal key (kw_principal.session = 1); kw_policy_check still applies
 * membership and levels.  Because a browser sends cookies on its own,
 * every write made with a session must also carry the CSRF token, which is
 * HMAC-SHA256(server secret, session token): the server can recompute it
 * at any time and stores nothing more; the secret lives in the database
 * (kw_meta) so every instance sharing it agrees.  Failed sign-ins are
 * counted per (client address, account) and per client address in the
 * database, so the limit holds across restarts and instances, and a
 * stranger failing with someone's email locks out only their own address. */
#ifndef KEYWARD_SESSION_H
#define KEYWARD_SESSION_H

#include <jansson.h>

#include "keyward/auth.h"
#include "keyward/problem.h"
#include "keyward/service.h"
#include "keyward/store.h"

#define KW_PASSWORD_MIN_CHARS 10
#define KW_PASSWORD_MAX_BYTES 1024

#define KW_TOKEN_LEN 43  /* base64url of 32 random bytes: sessions, invitations, CSRF */

#define KW_SESSION_IDLE ((kw_time)12 * 3600 * 1000000)       /* signed out after 12 h idle */
#define KW_SESSION_ABSOLUTE ((kw_time)7 * 86400 * 1000000)   /* and after 7 days whatever */
#define KW_SESSION_TOUCH ((kw_time)60 * 1000000)             /* last_seen_at granularity */
#define KW_SESSIONS_PER_USER 20  /* a new sign-in ends the oldest beyond these */
#define KW_INVITE_TTL ((kw_time)7 * 86400 * 1000000)

#define KW_LOGIN_WINDOW ((kw_time)15 * 60 * 1000000)
#define KW_LOGIN_MAX_PER_ACCOUNT 5   /* failures per (address, account) per window */
#define KW_LOGIN_MAX_PER_IP 20       /* per client address (several people may share one) */
/* Password hashes (argon2id, ~40 ms and 19 MiB each) of sign-ins and
 * invitation acceptances, right or wrong: bounded in total and per client
 * address (an IPv6 address counts by its /64), one at a time. */
#define KW_LOGIN_HASH_BURST 60
#define KW_LOGIN_HASH_PER_MINUTE 120
#define KW_LOGIN_HASH_CLIENT_BURST 20
#define KW_LOGIN_HASH_CLIENT_PER_MINUTE 20

#define KW_MSG_CSRF "CSRF Failed: CSRF token missing or incorrect."
#define KW_MSG_BAD_LOGIN "Invalid email or password."

/* ---- passwords ---------------------------------------------------------- */

/* argon2id encoded string ("$argon2id$v=19$m=…,t=…,p=…$salt$hash"). */
int kw_password_hash(const char *password, char out[KW_PASSWORD_HASH_MAX + 1]);
/* 1 when `password` matches `encoded` (constant time), 0 otherwise, also
 * for an empty or malformed `encoded`. */
int kw_password_verify(const char *encoded, const char *password);
/* The password rules (length); fills *p with attr "password". */
int kw_password_check(const char *password, kw_problem *p);
/* Sets a user's password and signs out every session of that user. */
int kw_user_set_password(const kw_call *c, int64_t user_id, const char *password, kw_problem *p);

/* ---- tokens ------------------------------------------------------------- */

int kw_token_new(char out[KW_TOKEN_LEN + 1]);
void kw_token_hash(const char *token, char out[KW_TOKEN_HASH_LEN + 1]);  /* sha256 hex */

/* ---- sessions ----------------------------------------------------------- */

typedef struct kw_sessions kw_sessions;

/* Loads (or, on a new database, creates) the CSRF secret. */
int kw_sessions_new(kw_store *store, kw_sessions **out);
void kw_sessions_free(kw_sessions *s);

/* What a successful sign-in (or invitation acceptance) hands back: the
 * cookie's token, the CSRF token and the user. */
typedef struct kw_login {
    char token[KW_TOKEN_LEN + 1];
    char csrf[KW_TOKEN_LEN + 1];
    kw_user user;
} kw_login;

/* POST /api/login/ {email, password}.  On a refusal *p says why; when the
 * refusal is the rate limit (429) *retry_after holds the seconds to wait. */
int kw_session_login(kw_sessions *s, const char *ip, const json_t *body, kw_login *out,
                     int *retry_after, kw_problem *p);
/* 0 when the password-hash budget would admit a hash for `ip` now (the
 * hash itself takes the unit, in kw_session_login or kw_invite_accept);
 * else 1 with the 429 in *p and *retry_after.  For a caller that queues
 * those calls: what would be refused is refused before it waits. */
int kw_session_hash_admissible(kw_sessions *s, const char *ip, int *retry_after, kw_problem *p);

/* The cookie's token → a principal {session = 1, user_id}.  Unknown,
 * expired (idle or absolute) and deactivated users' sessions are INVALID. */
kw_verify_result kw_session_resolve(kw_sessions *s, const char *token, kw_principal *out);

void kw_session_csrf(const kw_sessions *s, const char *token, char out[KW_TOKEN_LEN + 1]);
/* 1 when `presented` is the CSRF token of the session `token`. */
int kw_session_csrf_ok(const kw_sessions *s, const char *token, const char *presented);

int kw_session_logout(kw_sessions *s, const char *token);

/* ---- invitations -------------------------------------------------------- */

/* POST /api/organizations/:id/invites/ {email, level}: by an organization
 * admin (`actor_level`, checked by the policy), at most at their own level.
 * `token` receives the one-time secret of the link /invite/<token>. */
int kw_invite_create(const kw_call *c, const char *org_id, int actor_level, const json_t *body,
                     kw_invite *out, char token[KW_TOKEN_LEN + 1], kw_problem *p);

/* DELETE /api/organizations/:id/invites/:invite_id/: revokes a pending
 * invitation of the organization (an admin's, checked by the policy); a
 * 404 for one that is used, expired, another organization's or unknown. */
int kw_invite_revoke(const kw_call *c, const char *org_id, const char *invite_id, kw_problem *p);

/* A live (unused, unexpired) invitation by its token, else a 404. */
int kw_invite_lookup(kw_store *store, const char *token, kw_invite *out, kw_problem *p);

/* POST /api/invites/accept/ {token, password, first_name}: creates the user
 * (or, for an existing account, checks its password), adds the membership,
 * uses up the invitation and signs the person in. */
int kw_invite_accept(kw_sessions *s, const char *ip, const json_t *body, kw_login *out,
                     int *retry_after, kw_problem *p);

#endif
