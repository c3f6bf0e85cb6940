/* session.c — console sign-in: sessions, CSRF tokens, the login limit.
 *
 * A session token is 32 bytes from the OS CSPRNG in base64url; the
 * database holds sha256(token) only.  Resolution is one indexed lookup
 * joined with the user (so a deactivated user's session dies with the
 * user), then the idle (12 h) and absolute (7 d) limits; last_seen_at is
 * written at most once a minute.  CSRF tokens are HMAC-SHA256 of the
 * session token under a server secret, compared in constant time.
 *
 * Sign-in failures are counted per (client address, account) and per
 * client address over 15 minutes (login_attempts).  Once either count
 * reaches its limit the next attempt is refused with 429 before the
 * password is even looked at, and Retry-After says when the oldest counted
 * failure leaves the window.  Never per account alone: then anyone could
 * lock any user out from anywhere by failing five times with their email;
 * this way a stranger only locks out their own address.  An
 * unknown email costs the same argon2id work as a known one, so response
 * times do not tell which addresses have accounts.
 *
 * Every hash, right password or wrong, also takes a unit of a budget
 * bounded in total and per address, one at a time: a member signing in in
 * a loop, or strangers failing from many addresses, cannot make the
 * server hash without end (the HTTP layer also runs these calls off the
 * request threads, so the hashing never holds one). */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/session.h"

#include "auth/budget.h"
#include "auth/session_internal.h"
#include "keyward/strbuf.h"
#include "keyward/validate.h"

struct kw_sessions {
    kw_store *store;
    char secret[2 * 32 + 1];  /* hex; the HMAC key */
    /* The hash of a random password, made at start: checking a password for
     * an unknown email against it costs what a real check costs. */
    char decoy[KW_PASSWORD_HASH_MAX + 1];
    kw_budget *hashes;  /* KW_LOGIN_HASH_* */
};

#define SECRET_NAME "console_csrf_secret"

static void base64url(const unsigned char *in, size_t n, char *out)
{
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = A[(v >> 18) & 63];
        out[o++] = A[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = A[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = A[v & 63];
    }
    out[o] = '\0';
}

int kw_token_new(char out[KW_TOKEN_LEN + 1])
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1) return KW_ERR_CRYPTO;
    base64url(raw, sizeof raw, out);
    OPENSSL_cleanse(raw, sizeof raw);
    return KW_OK;
}

void kw_token_hash(const char *token, char out[KW_TOKEN_HASH_LEN + 1])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)token, strlen(token), md);
    static const char HEX[] = "0123456789abcdef";
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = HEX[md[i] >> 4];
        out[2 * i + 1] = HEX[md[i] & 15];
    }
    out[KW_TOKEN_HASH_LEN] = '\0';
}

/* A token we issued: exactly 43 base64url characters.  Anything else is
 * refused without a database lookup. */
static int token_well_formed(const char *t)
{
    if (!t || strlen(t) != KW_TOKEN_LEN) return 0;
    return strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == KW_TOKEN_LEN;
}

int kw_sessions_new(kw_store *store, kw_sessions **out)
{
    *out = NULL;
    kw_sessions *s = calloc(1, sizeof *s);
    if (!s) return KW_ERR_NOMEM;
    s->store = store;
    unsigned char raw[32];
    char candidate[sizeof s->secret];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        free(s);
        return KW_ERR_CRYPTO;
    }
    kw_strbuf hex;
    kw_sb_init(&hex, candidate, sizeof candidate);
    kw_sb_hex(&hex, raw, sizeof raw);
    OPENSSL_cleanse(raw, sizeof raw);
    int rc = kw_store_meta_secret(store, SECRET_NAME, candidate, s->secret, sizeof s->secret);
    OPENSSL_cleanse(candidate, sizeof candidate);
    if (!rc) rc = kw_token_new(candidate);
    if (!rc) rc = kw_password_hash(candidate, s->decoy);
    const kw_budget_limits hashes = {KW_LOGIN_HASH_BURST, KW_LOGIN_HASH_PER_MINUTE,
                                     KW_LOGIN_HASH_CLIENT_BURST, KW_LOGIN_HASH_CLIENT_PER_MINUTE, 1};
    if (!rc) rc = kw_budget_new_limits(&hashes, &s->hashes);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return KW_OK;
}

void kw_sessions_free(kw_sessions *s)
{
    if (!s) return;
    kw_budget_free(s->hashes);
    OPENSSL_cleanse(s->secret, sizeof s->secret);
    free(s);
}

void kw_session_csrf(const kw_sessions *s, const char *token, char out[KW_TOKEN_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    /* The "csrf:" label keeps this MAC from ever equalling another use of
     * the same secret. */
    char msg[8 + KW_TOKEN_LEN + 1];
    snprintf(msg, sizeof msg, "csrf:%s", token);
    HMAC(EVP_sha256(), s->secret, (int)strlen(s->secret), (const unsigned char *)msg, strlen(msg),
         mac, &len);
    base64url(mac, 32, out);
}

int kw_session_csrf_ok(const kw_sessions *s, const char *token, const char *presented)
{
    if (!presented || strlen(presented) != KW_TOKEN_LEN) return 0;
    char expected[KW_TOKEN_LEN + 1];
    kw_session_csrf(s, token, expected);
    return CRYPTO_memcmp(expected, presented, KW_TOKEN_LEN) == 0;
}

/* A new session for `user`: the token in out->token, its CSRF token. */
static int session_open(kw_sessions *s, const kw_user *user, kw_login *out)
{
    kw_session row;
    memset(&row, 0, sizeof row);
    int rc = kw_token_new(out->token);
    if (rc) return rc;
    kw_token_hash(out->token, row.token_hash);
    row.user_id = user->id;
    row.created_at = row.last_seen_at = kw_now();
    row.expires_at = row.created_at + KW_SESSION_ABSOLUTE;
    rc = kw_store_session_insert(s->store, &row);
    if (rc) return rc;
    /* Sessions are otherwise deleted only on sign-out, a new password or
     * deactivation: each sign-in tidies the user's own, so one user's
     * sign-ins cannot grow the table without end.  Best effort: the
     * session just made is the newest and kept either way. */
    kw_store_session_prune_user(s->store, user->id, row.created_at, KW_SESSION_IDLE,
                                KW_SESSIONS_PER_USER);
    kw_session_csrf(s, out->token, out->csrf);
    out->user = *user;
    return KW_OK;
}

kw_verify_result kw_session_resolve(kw_sessions *s, const char *token, kw_principal *out)
{
    if (!token_well_formed(token)) return KW_VERIFY_INVALID;
    char hash[KW_TOKEN_HASH_LEN + 1];
    kw_token_hash(token, hash);
    kw_session row;
    int rc = kw_store_session_get(s->store, hash, &row);
    if (rc == KW_ERR_NOTFOUND) return KW_VERIFY_INVALID;
    if (rc) return KW_VERIFY_UNAVAILABLE;
    kw_time now = kw_now();
    if (now >= row.expires_at || now - row.last_seen_at > KW_SESSION_IDLE) {
        kw_store_session_delete(s->store, hash);
        return KW_VERIFY_INVALID;
    }
    if (!row.user_active) return KW_VERIFY_INVALID;
    kw_store_session_touch(s->store, hash, now, KW_SESSION_TOUCH);
    memset(out, 0, sizeof *out);
    out->kind = KW_KEY_NONE;
    out->session = 1;
    out->user_id = row.user_id;
    out->scopes.wildcard = 1;  /* the user's full rights; membership still applies */
    out->n_scoped_teams = out->n_scoped_orgs = -1;
    return KW_VERIFY_OK;
}

int kw_session_logout(kw_sessions *s, const char *token)
{
    if (!token_well_formed(token)) return KW_OK;
    char hash[KW_TOKEN_HASH_LEN + 1];
    kw_token_hash(token, hash);
    return kw_store_session_delete(s->store, hash);
}

/* ---- the login limit ---------------------------------------------------- */

#define ACCOUNT_KEY_MAX 400

/* The counters' names: "pair:<address> <email, lower case>" and
 * "ip:<address>".  An address never holds a space, so the pair is
 * unambiguous. */
static void limit_keys(const char *email, const char *ip, char account[ACCOUNT_KEY_MAX],
                       char addr[80])
{
    const char *where = ip && *ip ? ip : "-";
    int head = snprintf(account, ACCOUNT_KEY_MAX, "pair:%.64s ", where);
    size_t n = head > 0 ? (size_t)head : 0;
    for (const char *e = email; *e && n < ACCOUNT_KEY_MAX - 1; e++)
        account[n++] = (char)(*e >= 'A' && *e <= 'Z' ? *e + 32 : *e);
    account[n] = '\0';
    snprintf(addr, 80, "ip:%.64s", where);
}

/* Seconds until `key` may try again (0 = now). */
static int limit_wait(kw_store *store, const char *key, int max, kw_time now, int *wait)
{
    kw_time at = 0;
    *wait = 0;
    int rc = kw_store_login_failure_nth(store, key, now - KW_LOGIN_WINDOW, max, &at);
    if (rc || !at) return rc;
    kw_time left = at + KW_LOGIN_WINDOW - now;
    *wait = (int)((left + 999999) / 1000000);
    if (*wait < 1) *wait = 1;
    return KW_OK;
}

/* 0 when the account and the address may try; else 1 with a 429 in *p. */
static int login_throttled(kw_store *store, const char *email, const char *ip, int *retry_after,
                       kw_problem *p)
{
    char account[ACCOUNT_KEY_MAX], addr[80];
    limit_keys(email, ip, account, addr);
    kw_time now = kw_now();
    int wait_account, wait_addr;
    int rc = limit_wait(store, account, KW_LOGIN_MAX_PER_ACCOUNT, now, &wait_account);
    if (!rc) rc = limit_wait(store, addr, KW_LOGIN_MAX_PER_IP, now, &wait_addr);
    if (rc) return kw_problem_from_store(p, rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc);
    *retry_after = wait_account > wait_addr ? wait_account : wait_addr;
    if (!*retry_after) return 0;
    kw_problem_set(p, KW_P_THROTTLED, NULL, NULL,
                   "Request was throttled. Expected available in %d seconds.", *retry_after);
    return 1;
}

static void login_failed(kw_store *store, const char *email, const char *ip)
{
    char account[ACCOUNT_KEY_MAX], addr[80];
    limit_keys(email, ip, account, addr);
    kw_time now = kw_now();
    kw_store_login_failure_add(store, account, now, KW_LOGIN_WINDOW);
    kw_store_login_failure_add(store, addr, now, KW_LOGIN_WINDOW);
}

static int hash_refused(int wait, int *retry_after, kw_problem *p)
{
    *retry_after = wait;
    kw_problem_set(p, KW_P_THROTTLED, NULL, NULL,
                   "Request was throttled. Expected available in %d seconds.", wait);
    return 1;
}

int kw_session_hash_take(kw_sessions *s, const char *ip, int *retry_after, kw_problem *p)
{
    /* kw_budget counts an IPv6 address by its /64 */
    int wait = kw_budget_take(s->hashes, ip, kw_now());
    return wait ? hash_refused(wait, retry_after, p) : 0;
}

void kw_session_hash_done(kw_sessions *s) { kw_budget_done(s->hashes); }

int kw_session_hash_admissible(kw_sessions *s, const char *ip, int *retry_after, kw_problem *p)
{
    int wait = kw_budget_peek(s->hashes, ip, kw_now());
    return wait ? hash_refused(wait, retry_after, p) : 0;
}

int kw_login_check(kw_sessions *s, const char *ip, const char *email, const char *password,
                   kw_user *user, int *retry_after, kw_problem *p)
{
    kw_store *store = s->store;
    *retry_after = 0;
    if (login_throttled(store, email, ip, retry_after, p)) return 1;
    char hash[KW_PASSWORD_HASH_MAX + 1] = "";
    int rc = kw_store_user_by_email(store, email, user);
    if (!rc) rc = kw_store_user_password_get(store, user->id, hash);
    if (rc && rc != KW_ERR_NOTFOUND) return kw_problem_from_store(p, rc);
    if (kw_session_hash_take(s, ip, retry_after, p)) {
        OPENSSL_cleanse(hash, sizeof hash);
        return 1;
    }
    int ok = kw_password_verify(hash[0] ? hash : s->decoy, password) && !rc && hash[0] &&
             user->is_active;
    kw_session_hash_done(s);
    OPENSSL_cleanse(hash, sizeof hash);
    if (!ok) {
        login_failed(store, email, ip);
        kw_problem_set(p, KW_P_VALIDATION, "invalid_credentials", NULL, KW_MSG_BAD_LOGIN);
        return 1;
    }
    char account[ACCOUNT_KEY_MAX], addr[80];
    limit_keys(email, ip, account, addr);
    kw_store_login_failure_clear(store, account);
    return 0;
}

int kw_session_login(kw_sessions *s, const char *ip, const json_t *body, kw_login *out,
                     int *retry_after, kw_problem *p)
{
    const char *email, *password;
    *retry_after = 0;
    memset(out, 0, sizeof *out);
    if (kw_v_object(body, p) ||
        kw_v_string(body, "email", 1, KW_EMAIL_MAX, 0, &email, p) ||
        kw_v_string(body, "password", 1, KW_PASSWORD_MAX_BYTES, 0, &password, p))
        return 1;
    kw_user user;
    if (kw_login_check(s, ip, email, password, &user, retry_after, p)) return 1;
    int rc = session_open(s, &user, out);
    return rc ? kw_problem_from_store(p, rc == KW_ERR_NOTFOUND ? KW_ERR_DB : rc) : 0;
}

int kw_session_open_for(kw_sessions *s, const kw_user *user, kw_login *out)
{
    return session_open(s, user, out);
}

kw_store *kw_sessions_store(const kw_sessions *s) { return s->store; }
