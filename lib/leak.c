/* leak.c — what a leaked-key report does to each token (see leak.h).
 *
 * Per token: classify without I/O (a malformed token or a keyward key with a
 * bad checksum is "unknown" and never reaches the database), hash, and look
 * the hash up among personal keys (phx_), project secret keys (phs_) or
 * project tokens (phc_).  Report mode deletes a live phx_/phs_ key — as
 * PostHog does on a leak: a deleted key cannot come back by mistake — in
 * its own transaction with an activity entry "revoked" whose context names
 * the reason, URL, source and type, and drops the verification cache at
 * once.  A phc_ token is public by design (it ships in every web page), so
 * it is not reset behind the project's back: a "leaked" entry tells the
 * admins, who reset it when they choose.  A personal key is revoked even
 * when its user is deactivated: reactivating the user must not bring a
 * leaked key back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/leak.h"
#include "txn.h"

/* Row buffers are big (a personal key holds three 4 KiB list columns): one
 * heap block per call instead of the stack. */
struct scratch {
    kw_pkey pkey;
    kw_psk psk;
    kw_project project;
    kw_user user;
    int legacy_left;
};

static json_t *leak_context(const kw_leak_item *it)
{
    return json_pack("{s:s, s:s?, s:s?, s:s?}", "reason", "leaked", "url", it->url, "source",
                     it->source, "type", it->type);
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

/* The personal key row for a token: the sha256 form, then — for a few
 * legacy-length tokens per call — PostHog's pbkdf2 forms, which the
 * verifier rewrites as sha256 when it finds one. */
static int find_personal(const kw_call *c, const kw_leak_item *it, const kw_key_info *info,
                         const char *hash, struct scratch *s)
{
    int rc = kw_store_pkey_by_hash(c->store, hash, &s->pkey);
    if (rc != KW_ERR_NOTFOUND || info->format != KW_FORMAT_LEGACY || !c->verifier ||
        s->legacy_left <= 0)
        return rc;
    s->legacy_left--;
    kw_principal ignored;
    if (kw_verify_personal(c->verifier, it->token, it->token_len, &ignored) == KW_VERIFY_UNAVAILABLE)
        return KW_ERR_UNAVAILABLE;
    return kw_store_pkey_by_hash(c->store, hash, &s->pkey);
}

static int revoke_personal(const kw_call *c, const kw_leak_item *it, struct scratch *s,
                           kw_problem *p)
{
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    /* Audit first: the fan-out reads the key's narrowing from the row. */
    rc = kw_audit_personal_key_context(c, &s->pkey, "revoked", NULL, leak_context(it));
    if (!rc) rc = kw_store_pkey_delete(c->store, s->pkey.user_id, s->pkey.id);
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
    rc = kw_store_psk_delete(c->store, s->psk.project_id, s->psk.id);
    if (rc == KW_ERR_NOTFOUND) {
        kw_store_rollback(c->store);
        return 0;
    }
    if (!rc)
        rc = kw_audit_record_context(c, s->project.id, s->project.org_id, "revoked",
                                     "ProjectSecretAPIKey", s->psk.id, s->psk.label, NULL,
                                     leak_context(it));
    return kw_txn_end(c, rc, KW_TXN_CHANGES_AUTH, p);
}

static int log_public_token(const kw_call *c, const kw_leak_item *it, struct scratch *s,
                            kw_problem *p)
{
    char item_id[24];
    snprintf(item_id, sizeof item_id, "%lld", (long long)s->project.id);
    int rc = kw_store_begin(c->store);
    if (rc) return kw_storage_problem(p, rc);
    rc = kw_audit_record_context(c, s->project.id, s->project.org_id, "leaked", "Project", item_id,
                                 s->project.name, NULL, leak_context(it));
    return kw_txn_end(c, rc, KW_TXN_KEEPS_AUTH, p);
}

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
    char hash[KW_HASH_LEN + 1];
    if (kw_key_hash(it->token, it->token_len, hash)) return kw_storage_problem(p, KW_ERR_CRYPTO);
    int rc;
    switch (info.kind) {
    case KW_KEY_PERSONAL:
        rc = find_personal(c, it, &info, hash, s);
        if (rc == KW_ERR_NOTFOUND) return 0;
        if (rc) return kw_storage_problem(p, rc);
        if (!revoke) {
            rc = kw_store_user_get(c->store, s->pkey.user_id, &s->user);
            if (rc == KW_ERR_NOTFOUND) return 0;
            if (rc) return kw_storage_problem(p, rc);
            if (s->user.is_active) r->outcome = KW_LEAK_LIVE;
            return 0;
        }
        r->outcome = KW_LEAK_REVOKED;
        r->owner_user_id = s->pkey.user_id;
        return revoke_personal(c, it, s, p);
    case KW_KEY_SECRET:
        rc = kw_store_psk_by_hash(c->store, hash, &s->psk);
        if (rc == KW_ERR_NOTFOUND) return 0;
        if (rc) return kw_storage_problem(p, rc);
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
        r->outcome = revoke ? KW_LEAK_LOGGED : KW_LEAK_LIVE;
        r->owner_project_id = s->project.id;
        return revoke ? log_public_token(c, it, s, p) : 0;
    }
    default:
        return 0;
    }
}

int kw_leak_process(const kw_call *c, const kw_leak_item *items, size_t n, int revoke,
                    kw_leak_result *results, kw_problem *p)
{
    if (n > KW_LEAK_MAX_ITEMS) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", NULL,
                       "Ensure this field has no more than %d elements.", KW_LEAK_MAX_ITEMS);
        return 1;
    }
    struct scratch *s = calloc(1, sizeof *s);
    if (!s) return kw_storage_problem(p, KW_ERR_NOMEM);
    s->legacy_left = KW_LEAK_MAX_LEGACY;
    int failed = 0;
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
        failed = process_one(c, &items[i], revoke, s, r, p);
    }
    free(s);
    return failed;
}
