/* store.c — backend selection and the public kw_store_* entry points.
 *
 * Each entry point forwards through the backend's vtable; keeping the
 * forwarding in one file means a new backend only fills a struct. */
#include "store_backend.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"

int kw_store_open(const char *url, kw_store **out)
{
    *out = NULL;
    if (!url || !*url) return KW_ERR_INVALID;
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
        return kw_store_pg_open(url, out);
    if (strncmp(url, "sqlite:", 7) == 0) url += 7;
    return kw_store_sqlite_open(url, out);
}

void kw_store_close(kw_store *store)
{
    if (store) store->ops->close(store);
}

const char *kw_store_backend(const kw_store *store) { return store->ops->name; }

void kw_flag_clear(kw_flag *flag)
{
    free(flag->filters);
    flag->filters = NULL;
}

void kw_endpoint_clear(kw_endpoint *endpoint)
{
    free(endpoint->description);
    free(endpoint->query);
    free(endpoint->variables);
    endpoint->description = endpoint->query = endpoint->variables = NULL;
}

void kw_activity_clear(kw_activity *entry)
{
    free(entry->detail);
    entry->detail = NULL;
}

int kw_uuid_v4(char out[KW_ID_LEN + 1])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) return KW_ERR_CRYPTO;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char HEX[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        *p++ = HEX[b[i] >> 4];
        *p++ = HEX[b[i] & 15];
    }
    *p = '\0';
    return KW_OK;
}

#define FORWARD(name, params, args) \
    int kw_store_##name params { return store->ops->name args; }

FORWARD(schema_version, (kw_store *store, int *v), (store, v))
FORWARD(begin, (kw_store *store), (store))
FORWARD(commit, (kw_store *store), (store))
void kw_store_rollback(kw_store *store) { store->ops->rollback(store); }
int kw_store_in_transaction(kw_store *store) { return store->ops->in_transaction(store); }
FORWARD(user_count, (kw_store *store, int64_t *n), (store, n))
FORWARD(user_create, (kw_store *store, kw_user *u), (store, u))
FORWARD(user_get, (kw_store *store, int64_t id, kw_user *u), (store, id, u))
FORWARD(user_by_email, (kw_store *store, const char *e, kw_user *u), (store, e, u))
FORWARD(user_set_active, (kw_store *store, int64_t id, int a), (store, id, a))
FORWARD(org_create, (kw_store *store, kw_org *o), (store, o))
FORWARD(org_get, (kw_store *store, const char *id, kw_org *o), (store, id, o))
FORWARD(membership_set, (kw_store *store, int64_t u, const char *o, int l), (store, u, o, l))
FORWARD(membership_level, (kw_store *store, int64_t u, const char *o, int *l), (store, u, o, l))
FORWARD(user_orgs, (kw_store *store, int64_t u, kw_org_cb cb, void *c), (store, u, cb, c))
FORWARD(project_create, (kw_store *store, kw_project *p), (store, p))
FORWARD(project_get, (kw_store *store, int64_t id, kw_project *p), (store, id, p))
FORWARD(project_by_token, (kw_store *store, const char *t, kw_project *p), (store, t, p))
FORWARD(user_projects, (kw_store *store, int64_t u, kw_project_cb cb, void *c), (store, u, cb, c))
FORWARD(project_set_token, (kw_store *store, int64_t id, const char *t), (store, id, t))
FORWARD(pkey_insert, (kw_store *store, const kw_pkey *k, int max), (store, k, max))
FORWARD(pkey_get, (kw_store *store, int64_t u, const char *id, kw_pkey *k), (store, u, id, k))
FORWARD(pkey_list, (kw_store *store, int64_t u, kw_pkey_cb cb, void *c), (store, u, cb, c))
FORWARD(pkey_update, (kw_store *store, const kw_pkey *k), (store, k))
FORWARD(pkey_roll, (kw_store *store, int64_t u, const char *id, const char *sv, const char *m, kw_time now),
        (store, u, id, sv, m, now))
FORWARD(pkey_delete, (kw_store *store, int64_t u, const char *id), (store, u, id))
FORWARD(pkey_by_hash, (kw_store *store, const char *sv, kw_pkey *k), (store, sv, k))
FORWARD(pkey_touch, (kw_store *store, const char *id, kw_time now, kw_time iv), (store, id, now, iv))
FORWARD(pkey_rehash, (kw_store *store, const char *id, const char *o, const char *n), (store, id, o, n))
FORWARD(pkey_legacy_count, (kw_store *store, int64_t *n), (store, n))
FORWARD(psk_insert, (kw_store *store, const kw_psk *k, int max), (store, k, max))
FORWARD(psk_get, (kw_store *store, int64_t p, const char *id, kw_psk *k), (store, p, id, k))
FORWARD(psk_list, (kw_store *store, int64_t p, int64_t l, int64_t o, kw_psk_cb cb, void *c),
        (store, p, l, o, cb, c))
FORWARD(psk_count, (kw_store *store, int64_t p, int64_t *n), (store, p, n))
FORWARD(psk_update, (kw_store *store, const kw_psk *k), (store, k))
FORWARD(psk_roll, (kw_store *store, int64_t p, const char *id, const char *sv, const char *m, kw_time now),
        (store, p, id, sv, m, now))
FORWARD(psk_delete, (kw_store *store, int64_t p, const char *id), (store, p, id))
FORWARD(psk_by_hash, (kw_store *store, const char *sv, kw_psk *k), (store, sv, k))
FORWARD(psk_touch, (kw_store *store, const char *id, kw_time now, kw_time iv), (store, id, now, iv))
FORWARD(flag_insert, (kw_store *store, kw_flag *f), (store, f))
FORWARD(flag_get, (kw_store *store, int64_t p, int64_t id, kw_flag *f), (store, p, id, f))
FORWARD(flag_list, (kw_store *store, int64_t p, enum kw_flag_order o, int d, kw_flag_cb cb, void *c),
        (store, p, o, d, cb, c))
FORWARD(flag_update, (kw_store *store, kw_flag *f), (store, f))
FORWARD(activity_insert, (kw_store *store, kw_activity *a), (store, a))
FORWARD(activity_list, (kw_store *store, const kw_activity_query *q, kw_activity_cb cb, void *c),
        (store, q, cb, c))
FORWARD(auth_generation, (kw_store *store, int64_t *g), (store, g))
FORWARD(activity_count, (kw_store *store, const kw_activity_query *q, int64_t *n), (store, q, n))
FORWARD(flags_generation, (kw_store *store, int64_t *g), (store, g))
FORWARD(pkey_auth_by_hash, (kw_store *store, const char *sv, kw_pkey *k, int *active),
        (store, sv, k, active))

int kw_store_wait_change(kw_store *store, int timeout_ms, int *what)
{
    *what = 0;
    if (!store->ops->wait_change) return KW_ERR_UNSUPPORTED;
    return store->ops->wait_change(store, timeout_ms, what);
}
FORWARD(events_insert, (kw_store *store, int64_t p, const kw_event *e, size_t n), (store, p, e, n))
FORWARD(events_query, (kw_store *store, const kw_event_query *q, kw_event_row_cb cb, void *c),
        (store, q, cb, c))
FORWARD(endpoint_insert, (kw_store *store, kw_endpoint *e), (store, e))
FORWARD(endpoint_get, (kw_store *store, int64_t p, const char *n, kw_endpoint *e), (store, p, n, e))
FORWARD(endpoint_list, (kw_store *store, int64_t p, int64_t l, int64_t o, kw_endpoint_cb cb, void *c),
        (store, p, l, o, cb, c))
FORWARD(endpoint_count, (kw_store *store, int64_t p, int64_t *n), (store, p, n))
FORWARD(endpoint_update, (kw_store *store, const kw_endpoint *e), (store, e))
FORWARD(endpoint_delete, (kw_store *store, int64_t p, int64_t id), (store, p, id))

/* key lifecycle */
FORWARD(key_scopes_used_many, (kw_store *store, const kw_scope_use *uses, size_t n),
        (store, uses, n))
FORWARD(key_touch_many, (kw_store *store, const kw_key_touch *t, size_t n, kw_time iv),
        (store, t, n, iv))
int kw_store_key_scopes_used(kw_store *store, kw_key_kind kind, const char *id, const char *json)
{
    kw_scope_use use = {kind, id, json};
    return store->ops->key_scopes_used_many(store, &use, 1);
}
FORWARD(rolled_set, (kw_store *store, kw_key_kind kind, const char *id, const char *value,
                     kw_time expires_at, kw_time now), (store, kind, id, value, expires_at, now))
FORWARD(rolled_get, (kw_store *store, const char *value, kw_key_kind *kind,
                     char current[KW_SECURE_MAX + 1], kw_time *expires_at),
        (store, value, kind, current, expires_at))
FORWARD(rolled_expiry, (kw_store *store, kw_key_kind kind, const char *id, kw_time now,
                        kw_time *expires_at), (store, kind, id, now, expires_at))
FORWARD(rolled_live, (kw_store *store, kw_time now, int64_t *count), (store, now, count))
FORWARD(user_list, (kw_store *store, kw_user_cb cb, void *ctx), (store, cb, ctx))
FORWARD(project_list, (kw_store *store, kw_project_cb cb, void *ctx), (store, cb, ctx))
FORWARD(import_user, (kw_store *store, const kw_user *u), (store, u))
FORWARD(import_org, (kw_store *store, const kw_org *o), (store, o))
FORWARD(import_project, (kw_store *store, const kw_project *p), (store, p))
FORWARD(import_pkey, (kw_store *store, const kw_pkey *k), (store, k))
FORWARD(import_done, (kw_store *store), (store))

/* console */
FORWARD(user_password_get, (kw_store *store, int64_t u, char out[KW_PASSWORD_HASH_MAX + 1]),
        (store, u, out))
FORWARD(user_password_set, (kw_store *store, int64_t u, const char *h), (store, u, h))
FORWARD(session_insert, (kw_store *store, const kw_session *s), (store, s))
FORWARD(session_get, (kw_store *store, const char *h, kw_session *s), (store, h, s))
FORWARD(session_touch, (kw_store *store, const char *h, kw_time now, kw_time iv), (store, h, now, iv))
FORWARD(session_delete, (kw_store *store, const char *h), (store, h))
FORWARD(session_delete_user, (kw_store *store, int64_t u), (store, u))
FORWARD(invite_insert, (kw_store *store, const kw_invite *i), (store, i))
FORWARD(invite_by_hash, (kw_store *store, const char *h, kw_invite *i), (store, h, i))
FORWARD(invite_accept, (kw_store *store, const char *id, kw_time now), (store, id, now))
FORWARD(login_failure_add, (kw_store *store, const char *k, kw_time now, kw_time keep),
        (store, k, now, keep))
FORWARD(login_failure_nth, (kw_store *store, const char *k, kw_time since, int n, kw_time *at),
        (store, k, since, n, at))
FORWARD(login_failure_clear, (kw_store *store, const char *k), (store, k))
FORWARD(meta_secret, (kw_store *store, const char *n, const char *c, char *out, size_t size),
        (store, n, c, out, size))
