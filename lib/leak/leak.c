/* leak.c — what a leaked-key report does to each token (see leak.h).
 *
 * Per token: classify without I/O (a malformed token or a keyward key with a
 * bad checksum is "unknown" and never reaches the database), hash, and look
 * the hash up among personal keys (phx_), project secret keys (phs_) or
 * project tokens (phc_).  Report mode deletes a live phx_/phs_ key — as
 * PostHog does on a leak: a deleted key cannot come back by mistake — in
 * its own transaction with an activity entry "revoked" whose context names
 * the reason, URL, source and type, and drops the verification cache at
 * once.  A rolled key's previous value that still works (its grace window
 * has not ended) is a leak of a working credential too: its window is
 * ended at once — the current value, which did not leak, keeps working —
 * with the same "revoked" entry, whose context says it was the previous
 * value.  A phc_ token is public by design (it ships in every web page):
 * a report of it writes nothing at all, so an unauthenticated caller can
 * never add entries to a project's log.  A personal key is revoked even
 * when its user is deactivated: reactivating the user must not bring a
 * leaked key back. */
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/leak.h"
#include "keyward/webhook.h"
#include "store/txn.h"

/* Row buffers are big (a personal key holds three 4 KiB list columns): one
 * heap block per call instead of the stack. */
struct scratch {
    kw_pkey pkey;
    kw_psk psk;
    kw_project project;
    kw_user user;
    int legacy_left;
    int previous;  /* the token is the key's previous value, still in its window */
    int retry_after;  /* LEGACY_BUSY: seconds before asking again may succeed */
    int64_t rolled_live;  /* live previous values in the store; -1: not read yet */
    kw_leak_memo memo;    /* the current token's: recalled, or being learned */
};

/* find_personal's answer when the legacy-hash budget is spent (no kw_err
 * is positive). */
#define LEGACY_BUSY 1

static json_t *leak_context(const kw_leak_item *it, int previous)
{
    json_t *ctx = json_pack("{s:s, s:s?, s:s?, s:s?}", "reason", "leaked", "url", it->url, "source",
                            it->source, "type", it->type);
    if (ctx && previous) json_object_set_new(ctx, "value", json_string("previous"));
    return ctx;
}

static void hex_digest(const unsigned char d[32], char out[65])
{
    static const char HEX[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = HEX[d[i] >> 4];
        out[2 * i + 1] = HEX[d[i] & 15];
    }
    out[64] = '\0';
}

/* A rolled key's previous value whose window has not ended: the key row
 * (found by its current hash) into the scratch, s->previous set. */
static int find_previous(const kw_call *c, kw_key_kind kind, const char *hash, struct scratch *s)
{
    kw_key_kind found;
    char current[KW_SECURE_MAX + 1];
    kw_time until;
    /* Counted once per call, so a report of many unknown tokens costs no
     * second probe each while no key is in a grace window. */
    if (s->rolled_live < 0 && kw_store_rolled_live(c->store, kw_now(), &s->rolled_live))
        s->rolled_live = 1;  /* unknown: look each token up */
    if (!s->rolled_live) return KW_ERR_NOTFOUND;
    int rc = kw_store_rolled_get(c->store, hash, &found, current, &until);
    if (rc) return rc;
    if (found != kind || kw_now() >= until) return KW_ERR_NOTFOUND;
    rc = kind == KW_KEY_PERSONAL ? kw_store_pkey_by_hash(c->store, current, &s->pkey)
                                 : kw_store_psk_by_hash(c->store, current, &s->psk);
    if (!rc) s->previous = 1;
    return rc;
}

/* The personal key row for a token: the sha256 form, a previous value in
 * its window, then — for a legacy-length token — PostHog's pbkdf2 forms,
 * from the memo when a report already computed them, else computed under
 * the verifier's budget for that work (LEGACY_BUSY once spent), for a few
 * tokens per call. */
static int find_personal(const kw_call *c, const kw_leak_item *it, const kw_key_info *info,
                         const char *hash, struct scratch *s)
{
    int rc = kw_store_pkey_by_hash(c->store, hash, &s->pkey);
    if (rc == KW_ERR_NOTFOUND) rc = find_previous(c, KW_KEY_PERSONAL, hash, s);
    if (rc != KW_ERR_NOTFOUND || info->format != KW_FORMAT_LEGACY || !c->verifier) return rc;
    if (!s->memo.has_forms) {
        if (s->legacy_left <= 0) return rc;
        s->legacy_left--;
        kw_verify_result v = kw_verify_legacy_forms(c->verifier, it->token, it->token_len, c->ip,
                                                    &s->memo.forms, &s->retry_after);
        if (v == KW_VERIFY_INVALID) return KW_ERR_NOTFOUND;  /* no key is stored so */
        if (v == KW_VERIFY_BUSY) return LEGACY_BUSY;
        if (v != KW_VERIFY_OK) return KW_ERR_CRYPTO;
        s->memo.has_forms = 1;
    }
    for (int i = 0; i < KW_LEGACY_FORMS; i++) {
        rc = kw_store_pkey_by_hash(c->store, s->memo.forms.form[i], &s->pkey);
        if (rc != KW_ERR_NOTFOUND) return rc;
    }
    return KW_ERR_NOTFOUND;
}

/* Ends the window of a leaked previous value at once; the key's current
 * value did not leak and keeps working.  Deleting the row is logged as a
 * change of the key, so every instance's cache forgets the value too. */
static int end_previous(const kw_call *c, kw_key_kind kind, const char *key_id)
{
    kw_time now = kw_now();
    return kw_store_rolled_set(c->store, kind, key_id, NULL, now, now);
}

static int revoke_personal(const kw_call *c, const kw_leak_item *it, struct scratch *s,
                           kw_problem *p)
{
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    /* Audit first: the fan-out reads the key's narrowing from the row. */
    rc = kw_audit_personal_key_context(c, &s->pkey, "revoked", NULL,
                                       leak_context(it, s->previous));
    if (!rc)
        rc = s->previous ? end_previous(c, KW_KEY_PERSONAL, s->pkey.id)
                         : kw_store_pkey_delete(c->store, s->pkey.user_id, s->pkey.id);
    if (rc == KW_ERR_NOTFOUND) {  /* a concurrent report or delete won: it is gone either way */
        kw_store_rollback(c->store);
        return 0;
    }
    return kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p);
}

static int revoke_secret(const kw_call *c, const kw_leak_item *it, struct scratch *s,
                         kw_problem *p)
{
    int rc = kw_store_project_get(c->store, s->psk.project_id, &s->project);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = s->previous ? end_previous(c, KW_KEY_SECRET, s->psk.id)
                     : kw_store_psk_delete(c->store, s->psk.project_id, s->psk.id);
    if (rc == KW_ERR_NOTFOUND) {
        kw_store_rollback(c->store);
        return 0;
    }
    json_t *context = rc ? NULL : leak_context(it, s->previous);
    if (!rc)
        rc = kw_webhook_key_event(c, s->project.org_id, "revoked",
                                  &(kw_webhook_key){s->psk.id, s->psk.label, s->psk.mask_value,
                                                    "project_secret", s->project.id, 0,
                                                    s->psk.expires_at},
                                  context);
    if (!rc)
        rc = kw_audit_record_context(c, s->project.id, s->project.org_id, "revoked",
                                     "ProjectSecretAPIKey", s->psk.id, s->psk.label, NULL,
                                     json_incref(context));
    json_decref(context);
    return kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p);
}

/* Whether a found key would be refused as expired (expiry is inclusive,
 * as verification has it).  Check mode says "live" only of a key that
 * would verify; report mode revokes an expired key all the same, since a
 * later update could give it a new expiry. */
static int expired(kw_time expires_at) { return expires_at && kw_now() >= expires_at; }

/* One token.  Fills r->outcome; returns 0 or 1 with *p set. */
static int process_one(const kw_call *c, const kw_leak_item *it, int revoke, struct scratch *s,
                       kw_leak_result *r, kw_problem *p)
{
    kw_key_info info;
    r->outcome = KW_LEAK_UNKNOWN;
    if (it->token_len > KW_KEY_MAX_LEN ||
        kw_key_classify(it->token, it->token_len, &info) == KW_FORMAT_INVALID)
        return 0;
    r->kind = info.kind;
    s->previous = 0;
    char hash[KW_HASH_LEN + 1];
    if (kw_key_hash(it->token, it->token_len, hash)) return kw_storage_problem(p, KW_ERR_CRYPTO);
    int rc;
    switch (info.kind) {
    case KW_KEY_PERSONAL:
        rc = find_personal(c, it, &info, hash, s);
        if (rc == KW_ERR_NOTFOUND) return 0;
        if (rc == LEGACY_BUSY) {
            r->retry_after = s->retry_after;
            kw_problem_set(p, KW_P_THROTTLED, NULL, NULL, "%s", KW_MSG_LEGACY_BUSY);
            return 1;
        }
        if (rc) return kw_storage_problem(p, rc);
        if (!revoke) {
            rc = kw_store_user_get(c->store, s->pkey.user_id, &s->user);
            if (rc == KW_ERR_NOTFOUND) return 0;
            if (rc) return kw_storage_problem(p, rc);
            if (s->user.is_active && !expired(s->pkey.expires_at)) r->outcome = KW_LEAK_LIVE;
            return 0;
        }
        r->outcome = KW_LEAK_REVOKED;
        r->owner_user_id = s->pkey.user_id;
        return revoke_personal(c, it, s, p);
    case KW_KEY_SECRET:
        rc = kw_store_psk_by_hash(c->store, hash, &s->psk);
        if (rc == KW_ERR_NOTFOUND) rc = find_previous(c, KW_KEY_SECRET, hash, s);
        if (rc == KW_ERR_NOTFOUND) return 0;
        if (rc) return kw_storage_problem(p, rc);
        if (!revoke && expired(s->psk.expires_at)) return 0;
        r->outcome = revoke ? KW_LEAK_REVOKED : KW_LEAK_LIVE;
        r->owner_project_id = s->psk.project_id;
        return revoke ? revoke_secret(c, it, s, p) : 0;
    case KW_KEY_PROJECT: {
        char token[KW_KEY_MAX_LEN + 1];
        memcpy(token, it->token, it->token_len);
        token[it->token_len] = '\0';
        rc = kw_store_project_by_token(c->store, token, &s->project);
        if (rc == KW_ERR_NOTFOUND) return 0;
        if (rc) return kw_storage_problem(p, rc);
        /* Public by design: nothing is revoked or written for it. */
        r->outcome = revoke ? KW_LEAK_PUBLIC : KW_LEAK_LIVE;
        r->owner_project_id = s->project.id;
        return 0;
    }
    default:
        return 0;
    }
}

int kw_leak_process(const kw_call *c, const kw_leak_item *items, size_t n, int revoke,
                    kw_leak_result *results, kw_problem *p)
{
    return kw_leak_process_guarded(c, NULL, items, n, revoke, results, p);
}

int kw_leak_process_guarded(const kw_call *c, kw_leak_guard *guard, const kw_leak_item *items,
                            size_t n, int revoke, kw_leak_result *results, kw_problem *p)
{
    if (n > KW_LEAK_MAX_ITEMS) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", NULL,
                       "Ensure this field has no more than %d elements.", KW_LEAK_MAX_ITEMS);
        return 1;
    }
    struct scratch *s = calloc(1, sizeof *s);
    if (!s) return kw_storage_problem(p, KW_ERR_NOMEM);
    s->legacy_left = KW_LEAK_MAX_LEGACY;
    s->rolled_live = -1;
    int failed = 0, busy = 0;
    kw_problem busy_problem;
    for (size_t i = 0; i < n && !failed; i++) {
        kw_leak_result *r = &results[i];
        unsigned char digest[32];
        memset(r, 0, sizeof *r);
        if (kw_key_digest(items[i].token, items[i].token_len, digest)) {
            failed = kw_storage_problem(p, KW_ERR_CRYPTO);
            break;
        }
        hex_digest(digest, r->token_hash);
        /* A repeated token: the first answer stands (the key is gone now). */
        size_t j = 0;
        while (j < i && strcmp(results[j].token_hash, r->token_hash) != 0) j++;
        if (j < i) {
            *r = results[j];
            continue;
        }
        int recalled = revoke && kw_leak_guard_recall(guard, r->token_hash, kw_now(), &s->memo);
        if (!recalled) memset(&s->memo, 0, sizeof s->memo);
        int had_forms = s->memo.has_forms;
        failed = process_one(c, &items[i], revoke, s, r, p);
        if (failed && r->retry_after > 0) {
            /* The PBKDF2 budget is spent on this legacy-length token: the
             * others are still looked up (a current-format key costs no
             * PBKDF2 and is revoked now), and the report is answered 429
             * so that it is sent again for this one. */
            if (!busy) busy_problem = *p;
            busy = 1;
            failed = 0;
            s->legacy_left = 0;
            continue;
        }
        if (failed || !revoke) continue;
        if (recalled && r->outcome == KW_LEAK_UNKNOWN) {
            /* Nothing live under it now: its first answer stands (a key
             * the first report revoked is "revoked", not "unknown"). */
            *r = s->memo.first;
            if (s->memo.has_forms && !had_forms) kw_leak_guard_remember(guard, &s->memo, kw_now());
        } else {
            s->memo.first = *r;
            kw_leak_guard_remember(guard, &s->memo, kw_now());
        }
    }
    free(s);
    if (!failed && busy) {
        *p = busy_problem;
        failed = 1;
    }
    return failed;
}
