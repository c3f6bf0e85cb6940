/* invite.c — organization invitations: the way a second person gets in.
 *
 * An organization admin creates an invitation for an email address and a
 * level; the invitation is never broader than its creator (kw_narrow_check:
 * not above their level, and a key must itself reach as far as the
 * person it lets in, so no expiring or limited key mints a lasting
 * account); the response carries a one-time link
 * /invite/<token> whose token is 256 random bits, stored only as its
 * sha256 and valid for 7 days.  Whoever opens the link chooses a name and
 * a password; accepting creates the user (or, when an account with that
 * email exists, checks its password instead), adds the membership and
 * uses the invitation up in one transaction — the "unused and unexpired"
 * test is the UPDATE's own WHERE clause, so a link works once even when
 * two people race with it — and then signs the person in. */
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/narrow.h"
#include "keyward/session.h"
#include "auth/session_internal.h"
#include "org/project_refs.h"
#include "store/txn.h"
#include "keyward/validate.h"

#define MSG_INVALID_INVITE "This invitation link is invalid, has expired or has already been used."

static int valid_email(const char *e)
{
    const char *at = strchr(e, '@');
    if (!at || at == e || !at[1] || strchr(at + 1, '@') || !strchr(at + 1, '.')) return 0;
    for (const char *c = e; *c; c++)
        if (isspace((unsigned char)*c) || (unsigned char)*c < 0x20) return 0;
    return 1;
}

/* One activity entry per project of the organization: that is where the
 * console's activity page (and PostHog's readers) look. */
static int audit_invite(const kw_call *c, const kw_invite *inv, const char *activity)
{
    kw_project_refs o = {.only_org = inv->org_id};
    int rc = kw_store_user_projects(c->store, c->actor->user_id, kw_project_refs_add, &o);
    for (size_t i = 0; !rc && i < o.n; i++)
        rc = kw_audit_record(c, o.at[i].id, inv->org_id, activity, "OrganizationInvite", inv->id,
                             inv->target_email, NULL);
    free(o.at);
    return rc;
}

int kw_invite_revoke(const kw_call *c, const char *org_id, const char *invite_id, kw_problem *p)
{
    kw_invite inv;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    /* Only the organization's pending invitations can match: another
     * organization's id, a used or an expired one is a 404 like an unknown
     * one.  The row deleted is the one the audit entry names. */
    rc = kw_store_invite_delete(c->store, invite_id, org_id, kw_now(), &inv);
    if (rc == KW_ERR_NOTFOUND) {
        kw_store_rollback(c->store);
        return kw_problem_from_store(p, rc);
    }
    if (!rc) rc = audit_invite(c, &inv, "deleted");
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

int kw_invite_create(const kw_call *c, const char *org_id, int actor_level, const json_t *body,
                     kw_invite *out, char token[KW_TOKEN_LEN + 1], kw_problem *p)
{
    const char *email;
    memset(out, 0, sizeof *out);
    if (kw_v_object(body, p)) return 1;
    /* PostHog's field is target_email; "email" is accepted too. */
    const char *field = json_object_get(body, "target_email") ? "target_email" : "email";
    if (kw_v_text(body, field, 1, KW_EMAIL_MAX, KW_EMAIL_MAX, 0, &email, p)) return 1;
    if (!valid_email(email)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid", field, "Enter a valid email address.");
        return 1;
    }
    json_t *lv = json_object_get(body, "level");
    int level = KW_LEVEL_MEMBER;
    if (lv) {
        json_int_t v = json_is_integer(lv) ? json_integer_value(lv) : -1;
        if (v != KW_LEVEL_MEMBER && v != KW_LEVEL_ADMIN && v != KW_LEVEL_OWNER) {
            kw_problem_set(p, KW_P_VALIDATION, "invalid_choice", "level",
                           "Level must be 1 (member), 8 (admin) or 15 (owner).");
            return 1;
        }
        level = (int)v;
    }
    /* The link makes its holder a person at `level` in the organization,
     * and the caller holds the link: never more than the caller has. */
    static _Thread_local kw_principal member;
    kw_narrow_person(&member, org_id);
    if (kw_narrow_check(c->actor, actor_level, &member, level, KW_NARROW_INVITE, p)) return 1;
    if (kw_uuid_v4(out->id) || kw_token_new(token)) return kw_storage_problem(p, KW_ERR_CRYPTO);
    snprintf(out->org_id, sizeof out->org_id, "%s", org_id);
    kw_token_hash(token, out->token_hash);
    snprintf(out->target_email, sizeof out->target_email, "%s", email);
    out->level = level;
    out->created_by = c->actor->user_id;
    out->created_at = kw_now();
    out->expires_at = out->created_at + KW_INVITE_TTL;
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_invite_insert(c->store, out);
    if (!rc) rc = audit_invite(c, out, "created");
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

/* An invitation is only as good as its creator's standing now: an active
 * user, still an admin of the organization and at least at the level the
 * link hands out.  Checked at creation only, a link would outlive its
 * creator's removal, demotion or deactivation — a way back in for an
 * admin on the way out.  KW_ERR_NOTFOUND when it no longer holds. */
static int creator_vouches(kw_store *store, const kw_invite *inv)
{
    kw_user creator;
    int rc = kw_store_user_get(store, inv->created_by, &creator);
    if (rc) return rc;
    if (!creator.is_active) return KW_ERR_NOTFOUND;
    int level = 0;
    rc = kw_store_membership_level(store, inv->created_by, inv->org_id, &level);
    if (rc) return rc;
    return level >= KW_LEVEL_ADMIN && level >= inv->level ? KW_OK : KW_ERR_NOTFOUND;
}

int kw_invite_lookup(kw_store *store, const char *token, kw_invite *out, kw_problem *p)
{
    char hash[KW_TOKEN_HASH_LEN + 1];
    if (!token || strlen(token) != KW_TOKEN_LEN)
        return kw_problem_from_store(p, KW_ERR_NOTFOUND);
    kw_token_hash(token, hash);
    int rc = kw_store_invite_by_hash(store, hash, out);
    if (!rc && (out->accepted_at || kw_now() >= out->expires_at)) rc = KW_ERR_NOTFOUND;
    if (!rc) rc = creator_vouches(store, out);
    return kw_problem_from_store(p, rc);
}

/* The writes of an acceptance, in the caller's transaction. */
static int accept_writes(kw_store *store, const kw_invite *inv, kw_user *user, int is_new,
                         const char *hash)
{
    int rc = creator_vouches(store, inv);  /* again, now inside the transaction */
    if (!rc) rc = kw_store_invite_accept(store, inv->id, kw_now());
    if (!rc && is_new) rc = kw_store_user_create(store, user);
    if (!rc && is_new) rc = kw_store_user_password_set(store, user->id, hash);
    int level = 0;
    if (!rc) {
        /* Never lowers an existing membership. */
        int have = kw_store_membership_level(store, user->id, inv->org_id, &level);
        if (have == KW_ERR_NOTFOUND) level = 0;
        else if (have) rc = have;
    }
    if (!rc && level < inv->level) rc = kw_store_membership_set(store, user->id, inv->org_id, inv->level);
    return rc;
}

int kw_invite_accept(kw_sessions *s, const char *ip, const json_t *body, kw_login *out,
                     int *retry_after, kw_problem *p)
{
    const char *token, *password, *first_name;
    kw_store *store = kw_sessions_store(s);
    *retry_after = 0;
    memset(out, 0, sizeof *out);
    if (kw_v_object(body, p) || kw_v_string(body, "token", 1, 64, 0, &token, p) ||
        kw_v_string(body, "password", 1, KW_PASSWORD_MAX_BYTES, 0, &password, p) ||
        kw_v_text(body, "first_name", 0, 150, KW_NAME_MAX, 1, &first_name, p))
        return 1;
    kw_invite inv;
    if (kw_invite_lookup(store, token, &inv, p)) {
        if (p->kind == KW_P_NOT_FOUND)
            kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "token", MSG_INVALID_INVITE);
        return 1;
    }
    kw_user user;
    char hash[KW_PASSWORD_HASH_MAX + 1] = "";
    int rc = kw_store_user_by_email(store, inv.target_email, &user);
    int is_new = rc == KW_ERR_NOTFOUND;
    if (rc && !is_new) return kw_problem_from_store(p, rc);
    if (is_new) {
        if (kw_password_check(password, p)) return 1;
        memset(&user, 0, sizeof user);
        snprintf(user.email, sizeof user.email, "%s", inv.target_email);
        snprintf(user.first_name, sizeof user.first_name, "%s", first_name ? first_name : "");
        user.is_active = 1;
        if (kw_session_hash_take(s, ip, retry_after, p)) return 1;
        rc = kw_password_hash(password, hash);
        kw_session_hash_done(s);
        if (rc) return kw_storage_problem(p, rc);
    } else if (kw_login_check(s, ip, inv.target_email, password, &user, retry_after, p)) {
        /* An existing account proves itself with its own password. */
        return 1;
    }
    kw_principal actor;
    memset(&actor, 0, sizeof actor);
    actor.session = 1;
    actor.n_scoped_teams = actor.n_scoped_orgs = -1;
    kw_call c = {.store = store, .actor = &actor, .ip = ip};
    rc = kw_store_begin(store);
    if (rc) return kw_storage_problem(p, rc);
    rc = accept_writes(store, &inv, &user, is_new, hash);
    OPENSSL_cleanse(hash, sizeof hash);
    if (rc == KW_ERR_NOTFOUND || rc == KW_ERR_EXISTS) {
        /* Used or expired meanwhile, or the email was registered meanwhile. */
        kw_store_rollback(store);
        kw_problem_set(p, KW_P_VALIDATION, "invalid_input", "token", MSG_INVALID_INVITE);
        return 1;
    }
    if (kw_txn_end(&c, rc, KW_TXN_KEEPS_AUTH, p)) return 1;
    rc = kw_session_open_for(s, &user, out);
    return rc ? kw_storage_problem(p, rc) : 0;
}
