/* lifecycle.c — what the key lifecycle stores besides the key rows:
 * previous values of rolled keys (accepted until their grace window ends),
 * and the two batched writes of the verifier's and the usage tracker's
 * background flushes (last_used_at and scopes_used of many keys at once).
 *
 * A batch is written per dialect, the one place here that must be: a flush
 * can hold thousands of keys (each key's first use in a process), and one
 * statement per key would cost a round trip each on PostgreSQL, seconds
 * for the flush at shutdown.  So on PostgreSQL a batch is one statement per
 * key kind, its ids and values travelling as array parameters (sql.c tells
 * how those statements stay correct under concurrent instances); on SQLite,
 * where a statement costs no round trip but a commit costs an fsync, it is
 * one statement per key inside one transaction. */
#include <inttypes.h>
#include <stddef.h>
#include <string.h>

#include "keyward/keyward.h"
#include "store/db.h"
#include "keyward/strbuf.h"

static const char *kind_text(kw_key_kind kind)
{
    return kind == KW_KEY_SECRET ? "secret" : "personal";
}

/* ---- previous values of rolled keys ------------------------------------- */

int kw_store_rolled_set(kw_store *s, kw_key_kind kind, const char *key_id,
                        const char *secure_value, kw_time expires_at, kw_time now)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_ROLLED_DELETE, &st);
    if (rc) return rc;
    kw_db_text(st, 1, kind_text(kind));
    kw_db_text(st, 2, key_id);
    kw_db_int(st, 3, now);
    if ((rc = kw_db_exec(st, 0)) || !secure_value) return rc;
    if ((rc = kw_db_prepare(s, KW_SQL_ROLLED_INSERT, &st))) return rc;
    kw_db_text(st, 1, secure_value);
    kw_db_text(st, 2, kind_text(kind));
    kw_db_text(st, 3, key_id);
    kw_db_int(st, 4, expires_at);
    return kw_db_exec(st, 0);
}

/* A previous value whose key is gone (no current value) is not found. */
int kw_store_rolled_get(kw_store *s, const char *secure_value, kw_key_kind *kind,
                        char current[KW_SECURE_MAX + 1], kw_time *expires_at)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_ROLLED_GET, &st);
    if (rc) return rc;
    kw_db_text(st, 1, secure_value);
    if ((rc = kw_db_one(st))) return rc;
    if (kw_db_col_null(st, 2)) return kw_db_finish(st, KW_ERR_NOTFOUND);
    *kind = strcmp(kw_db_col_text(st, 0), "secret") == 0 ? KW_KEY_SECRET : KW_KEY_PERSONAL;
    *expires_at = kw_db_col_int(st, 1);
    kw_db_col_copy(st, 2, current, KW_SECURE_MAX + 1);
    return kw_db_finish(st, KW_OK);
}

int kw_store_rolled_expiry(kw_store *s, kw_key_kind kind, const char *key_id, kw_time now,
                           kw_time *expires_at)
{
    *expires_at = 0;
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_ROLLED_EXPIRY, &st);
    if (rc) return rc;
    kw_db_text(st, 1, kind_text(kind));
    kw_db_text(st, 2, key_id);
    kw_db_int(st, 3, now);
    return kw_db_int_result(st, expires_at);
}

int kw_store_rolled_live(kw_store *s, kw_time now, int64_t *count)
{
    *count = 0;
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, KW_SQL_ROLLED_LIVE, &st);
    if (rc) return rc;
    kw_db_int(st, 1, now);
    return kw_db_int_result(st, count);
}

/* ---- batches on SQLite: one statement per key, one transaction ---------- */

/* A batch is a transaction of its own, one commit (one fsync) for all its
 * keys, or simply joins the caller's; *own says which, for batch_end. */
static int batch_begin(kw_store *s, int *own)
{
    *own = !kw_store_in_transaction(s);
    return *own ? kw_store_begin(s) : KW_OK;
}

/* Commits a batch's own transaction after rc == KW_OK, else rolls it back. */
static int batch_end(kw_store *s, int own, int rc)
{
    if (!own) return rc;
    if (!rc) rc = kw_store_commit(s);
    if (rc) kw_store_rollback(s);
    return rc;
}

static int sqlite_scopes_used(kw_store *s, const kw_scope_use *uses, size_t n)
{
    int own, rc = batch_begin(s, &own);
    if (rc) return rc;
    for (size_t i = 0; !rc && i < n; i++) {
        kw_db_stmt *st;
        int secret = uses[i].kind == KW_KEY_SECRET;
        rc = kw_db_prepare(s, secret ? KW_SQL_PSK_SCOPES_USED : KW_SQL_PKEY_SCOPES_USED, &st);
        if (rc) break;
        kw_db_text(st, 1, uses[i].id);
        kw_db_text(st, 2, uses[i].scopes_json);  /* NULL merges nothing */
        rc = kw_db_exec(st, 0);
    }
    return batch_end(s, own, rc);
}

/* The single-key touch of keys.c per key.  A repeated id is harmless: its
 * later, older-or-equal time fails the condition, a newer one at least
 * `interval` on is a real use. */
static int sqlite_touch(kw_store *s, const kw_key_touch *t, size_t n, kw_time interval)
{
    int own, rc = batch_begin(s, &own);
    if (rc) return rc;
    for (size_t i = 0; !rc && i < n; i++)
        rc = t[i].kind == KW_KEY_SECRET ? kw_store_psk_touch(s, t[i].id, t[i].when, interval)
                                        : kw_store_pkey_touch(s, t[i].id, t[i].when, interval);
    return batch_end(s, own, rc);
}

/* ---- batches on PostgreSQL: one statement per key kind ------------------ */

/* The largest value PostgreSQL accepts in one parameter. */
#define ARRAY_MAX ((size_t)1 << 30)

/* Runs statement `id` over the two arrays, with `interval` as ?3 when
 * given. */
static int pg_run(kw_store *s, enum kw_sql_id id, kw_strbuf *ids, kw_strbuf *values,
                  const kw_time *interval)
{
    kw_sb_append(ids, "}");
    kw_sb_append(values, "}");
    if (!kw_sb_ok(ids) || !kw_sb_ok(values)) return KW_ERR_NOMEM;
    kw_db_stmt *st;
    int rc = kw_db_prepare(s, id, &st);
    if (rc) return rc;
    kw_db_text(st, 1, kw_sb_str(ids));
    kw_db_text(st, 2, kw_sb_str(values));
    if (interval) kw_db_int(st, 3, *interval);
    return kw_db_exec(st, 0);
}

/* Both kinds are tried whatever the first does; the first error is kept. */
static int pg_scopes_used(kw_store *s, const kw_scope_use *uses, size_t n)
{
    int first_error = KW_OK;
    for (int secret = 0; secret < 2; secret++) {
        kw_strbuf ids, used;
        size_t count = 0;
        kw_sb_init_heap(&ids, ARRAY_MAX);
        kw_sb_init_heap(&used, ARRAY_MAX);
        for (size_t i = 0; i < n; i++) {
            if ((uses[i].kind == KW_KEY_SECRET) != secret) continue;
            kw_db_array_text(&ids, uses[i].id);
            kw_db_array_text(&used, uses[i].scopes_json ? uses[i].scopes_json : "[]");
            count++;
        }
        enum kw_sql_id id = secret ? KW_SQL_PSK_SCOPES_USED : KW_SQL_PKEY_SCOPES_USED;
        int rc = count ? pg_run(s, id, &ids, &used, NULL) : KW_OK;
        kw_sb_free(&ids);
        kw_sb_free(&used);
        if (rc && !first_error) first_error = rc;
    }
    return first_error;
}

static int pg_touch(kw_store *s, const kw_key_touch *t, size_t n, kw_time interval)
{
    int first_error = KW_OK;
    for (int secret = 0; secret < 2; secret++) {
        kw_strbuf ids, times;
        size_t count = 0;
        kw_sb_init_heap(&ids, ARRAY_MAX);
        kw_sb_init_heap(&times, ARRAY_MAX);
        for (size_t i = 0; i < n; i++) {
            if ((t[i].kind == KW_KEY_SECRET) != secret) continue;
            kw_db_array_text(&ids, t[i].id);
            kw_db_array_int(&times, t[i].when);
            count++;
        }
        enum kw_sql_id id = secret ? KW_SQL_PSK_TOUCH_MANY : KW_SQL_PKEY_TOUCH_MANY;
        int rc = count ? pg_run(s, id, &ids, &times, &interval) : KW_OK;
        kw_sb_free(&ids);
        kw_sb_free(&times);
        if (rc && !first_error) first_error = rc;
    }
    return first_error;
}

/* ---- the public batch operations ----------------------------------------- */

int kw_store_key_scopes_used_many(kw_store *s, const kw_scope_use *uses, size_t n)
{
    if (!n) return KW_OK;
    return kw_db_dialect(s) == KW_DB_POSTGRES ? pg_scopes_used(s, uses, n)
                                              : sqlite_scopes_used(s, uses, n);
}

int kw_store_key_scopes_used(kw_store *s, kw_key_kind kind, const char *id, const char *scopes_json)
{
    kw_scope_use use = {kind, id, scopes_json};
    return kw_store_key_scopes_used_many(s, &use, 1);
}

int kw_store_key_touch_many(kw_store *s, const kw_key_touch *touches, size_t n, kw_time interval)
{
    if (!n) return KW_OK;
    return kw_db_dialect(s) == KW_DB_POSTGRES ? pg_touch(s, touches, n, interval)
                                              : sqlite_touch(s, touches, n, interval);
}
