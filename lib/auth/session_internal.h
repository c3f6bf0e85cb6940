/* session_internal.h — what invite.c shares with session.c (internal).
 * Accepting an invitation signs the person in, through the same password
 * check, login limit and session creation as POST /api/login/. */
#ifndef KW_SESSION_INTERNAL_H
#define KW_SESSION_INTERNAL_H

#include "keyward/session.h"

/* Checks email + password under the login limit.  0 with *user filled;
 * else 1 with *p (400 invalid_credentials, or 429 with *retry_after). */
int kw_login_check(kw_sessions *s, const char *ip, const char *email, const char *password,
                   kw_user *user, int *retry_after, kw_problem *p);
/* The password-hash budget (KW_LOGIN_HASH_*): 0 when `ip` may have one
 * hash computed now (then kw_session_hash_done after it), else 1 with a
 * 429 in *p and *retry_after. */
int kw_session_hash_take(kw_sessions *s, const char *ip, int *retry_after, kw_problem *p);
void kw_session_hash_done(kw_sessions *s);
/* A new session for a user who has just proved who they are. */
int kw_session_open_for(kw_sessions *s, const kw_user *user, kw_login *out);
kw_store *kw_sessions_store(const kw_sessions *s);

#endif
