/* db.c — what the database layer does the same on every driver: the
 * common statement shapes, row decoding and binding by field table, and
 * the store's entry points that are not about one object (open, close,
 * transactions, schema version, generations, change notifications).
 *
 * A driver is chosen by the URL given to kw_store_open. */
#include "store/db.h"

#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/strbuf.h"

static _Thread_local char last_error[200];

void kw_db_note_error(const char *code, const char *message)
{
    if (!message) message = "";
    size_t len = strcspn(message, "\r\n");  /* libpq's text may run on */
    int at = snprintf(last_error, sizeof last_error, "%s: ", code ? code : "error");
    if (at < 0 || (size_t)at >= sizeof last_error) return;
    size_t room = sizeof last_error - (size_t)at - 1;
    if (len > room) {
        len = room;
        /* Cut before a UTF-8 continuation byte, never inside a character. */
        while (len && ((unsigned char)message[len] & 0xC0) == 0x80) len--;
    }
    memcpy(last_error + at, message, len);
    last_error[(size_t)at + len] = '\0';
}

const char *kw_store_last_error(void) { return last_error; }

void kw_db_col_copy(kw_db_stmt *st, int col, char *dst, size_t size)
{
    const char *v = kw_db_col_text(st, col);
    size_t n = strlen(v);
    if (n >= size) n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

int kw_db_finish(kw_db_stmt *st, int rc)
{
    st->driver->finish(st);
    return rc;
}

int kw_db_exec(kw_db_stmt *st, int must_change)
{
    int rc;
    while ((rc = kw_db_step(st)) == KW_DB_ROW) {}
    if (!rc && must_change && kw_db_changes(st) == 0) rc = KW_ERR_NOTFOUND;
    return kw_db_finish(st, rc);
}

int kw_db_one(kw_db_stmt *st)
{
    int rc = kw_db_step(st);
    if (rc == KW_DB_ROW) return KW_OK;
    return kw_db_finish(st, rc ? rc : KW_ERR_NOTFOUND);
}

int kw_db_int_result(kw_db_stmt *st, int64_t *out)
{
    int rc = kw_db_one(st);
    if (rc) return rc;
    *out = kw_db_col_int(st, 0);
    return kw_db_finish(st, KW_OK);
}

int kw_db_read_row(kw_db_stmt *st, const struct kw_db_field *fields, size_t n, void *obj)
{
    char *base = obj;
    for (size_t i = 0; i < n; i++) {
        const struct kw_db_field *f = &fields[i];
        void *at = base + f->offset;
        switch (f->type) {
        case KW_DB_F_TEXT: kw_db_col_copy(st, (int)i, at, f->size); break;
        case KW_DB_F_DUP: {
            char *copy = strdup(kw_db_col_text(st, (int)i));
            *(char **)at = copy;
            if (!copy) return KW_ERR_NOMEM;
            break;
        }
        case KW_DB_F_I64: *(int64_t *)at = kw_db_col_int(st, (int)i); break;
        case KW_DB_F_I32: *(int32_t *)at = (int32_t)kw_db_col_int(st, (int)i); break;
        case KW_DB_F_INT: *(int *)at = (int)kw_db_col_int(st, (int)i); break;
        }
    }
    return KW_OK;
}

int kw_db_next(kw_db_stmt *st, const struct kw_db_field *fields, size_t n, void *obj)
{
    int rc = kw_db_step(st);
    if (rc != KW_DB_ROW) return rc;
    rc = kw_db_read_row(st, fields, n, obj);
    return rc ? rc : KW_DB_ROW;
}

void kw_db_bind_row(kw_db_stmt *st, const struct kw_db_param *params, size_t n, const void *obj)
{
    kw_db_bind_row_at(st, params, n, obj, 0);
}

void kw_db_bind_row_at(kw_db_stmt *st, const struct kw_db_param *params, size_t n,
                       const void *obj, int shift)
{
    const char *base = obj;
    for (size_t i = 0; i < n; i++) {
        const struct kw_db_param *p = &params[i];
        const void *at = base + p->offset;
        int index = p->index + shift;
        int64_t v = 0;
        switch (p->type) {
        case KW_DB_F_TEXT:
        case KW_DB_F_DUP: {
            const char *text = p->type == KW_DB_F_DUP ? *(char *const *)at : at;
            if (p->or_null)
                kw_db_text_or_null(st, index, text);
            else
                kw_db_text(st, index, text);
            continue;
        }
        case KW_DB_F_I64: v = *(const int64_t *)at; break;
        case KW_DB_F_I32: v = *(const int32_t *)at; break;
        case KW_DB_F_INT: v = *(const int *)at; break;
        }
        if (p->or_null)
            kw_db_int_or_null(st, index, v);
        else
            kw_db_int(st, index, v);
    }
}

static void array_next(kw_strbuf *a) { kw_sb_append(a, kw_sb_len(a) ? "," : "{"); }

void kw_db_array_text(kw_strbuf *a, const char *v)
{
    array_next(a);
    kw_sb_append(a, "\"");
    for (const char *p = v ? v : "", *run = p;; p++) {
        if (*p && *p != '"' && *p != '\\') continue;
        kw_sb_appendn(a, run, (size_t)(p - run));
        if (!*p) break;
        kw_sb_append(a, "\\");
        run = p;
    }
    kw_sb_append(a, "\"");
}

void kw_db_array_int(kw_strbuf *a, int64_t v)
{
    array_next(a);
    kw_sb_appendf(a, "%" PRId64, v);
}

/* ---- the store as a whole ------------------------------------------------ */

int kw_store_open(const char *url, kw_store **out)
{
    *out = NULL;
    if (!url || !*url) return KW_ERR_INVALID;
    for (int i = 0; i < KW_SQL_COUNT; i++)
        if (!kw_sql[i].sql) return KW_ERR_INVALID;  /* a statement id without its text */
    if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0)
        return kw_db_postgres_open(url, out);
    if (strncmp(url, "sqlite:", 7) == 0) url += 7;
    return kw_db_sqlite_open(url, out);
}

void kw_store_close(kw_store *store)
{
    if (store) store->driver->close(store);
}

const char *kw_store_backend(const kw_store *store) { return store->driver->name; }

int kw_store_begin(kw_store *store) { return kw_db_counted(store->driver->begin(store)); }
int kw_store_commit(kw_store *store) { return kw_db_counted(store->driver->commit(store)); }
void kw_store_rollback(kw_store *store) { store->driver->rollback(store); }
int kw_store_in_transaction(kw_store *store) { return store->driver->in_transaction(store); }
int kw_store_schema_version(kw_store *store, int *version)
{
    return store->driver->schema_version(store, version);
}

static int generation(kw_store *store, enum kw_sql_id id, int64_t *out)
{
    kw_db_stmt *st;
    int rc = kw_db_prepare(store, id, &st);
    return rc ? rc : kw_db_int_result(st, out);
}

int kw_store_auth_generation(kw_store *store, int64_t *g)
{
    return generation(store, KW_SQL_AUTH_GENERATION, g);
}

int kw_store_flags_generation(kw_store *store, int64_t *g)
{
    return generation(store, KW_SQL_FLAGS_GENERATION, g);
}

int kw_store_directory_generation(kw_store *store, int64_t *g)
{
    return generation(store, KW_SQL_DIRECTORY_GENERATION, g);
}

int kw_store_wait_change(kw_store *store, int timeout_ms, int *what)
{
    *what = 0;
    if (!store->driver->wait_change) return KW_ERR_UNSUPPORTED;
    return store->driver->wait_change(store, timeout_ms, what);
}

/* Ids of stored rows (keys, organizations, activity entries) and of
 * requests: random version-4 UUIDs, as PostHog makes them.  Every /flags
 * answer carries one, and one RAND_bytes call costs as much as the rest of
 * the id, so each thread draws 16 ids' worth at a time.  The server never
 * forks, so no two processes share a pool. */
int kw_uuid_v4(char out[KW_ID_LEN + 1])
{
    static _Thread_local unsigned char pool[256];
    static _Thread_local size_t used = sizeof pool;
    unsigned char b[16];
    if (used == sizeof pool) {
        if (RAND_bytes(pool, sizeof pool) != 1) return KW_ERR_CRYPTO;
        used = 0;
    }
    memcpy(b, pool + used, sizeof b);
    used += sizeof b;
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
