/* db.h — the database layer every stored object is written against
 * (internal to lib/store/).
 *
 * keyward runs on SQLite (embedded, the default) and on PostgreSQL (several
 * instances sharing one database).  Only the two drivers know those
 * libraries: db_sqlite.c, and db_pg.c with db_pg_session.c and
 * db_pg_listen.c (sharing db_pg.h).  Everything else in lib/store/ is
 * written once, in terms of this header: a statement is named by its id in
 * the one statement table (sql.h), bound with numbered parameters, stepped
 * row by row, and its columns read by index or decoded into a struct by a
 * field table.  Errors come back as kw_err, mapped by the driver.
 *
 * Each thread has its own connection and its own cache of prepared
 * statements, so a statement handle is used by one thread at a time and
 * is valid until kw_db_finish; a statement id must not be nested inside
 * itself (run a list to the end before running the same id again). */
#ifndef KW_DB_H
#define KW_DB_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/keyward.h"
#include "keyward/metrics.h"
#include "keyward/store.h"
#include "store/sql.h"

enum kw_db_dialect { KW_DB_SQLITE, KW_DB_POSTGRES };

typedef struct kw_db_stmt kw_db_stmt;

/* What a driver implements.  kw_store is the driver pointer followed by
 * the driver's own state. */
struct kw_db_driver {
    const char *name;
    enum kw_db_dialect dialect;
    void (*close)(kw_store *);
    int (*prepare)(kw_store *, enum kw_sql_id, kw_db_stmt **);
    int (*prepare_sql)(kw_store *, const char *sql, kw_db_stmt **); /* not cached */
    void (*bind_text)(kw_db_stmt *, int, const char *);            /* NULL binds NULL */
    void (*bind_int)(kw_db_stmt *, int, int64_t);
    int (*step)(kw_db_stmt *);
    const char *(*col_text)(kw_db_stmt *, int);  /* "" for NULL */
    int64_t (*col_int)(kw_db_stmt *, int);       /* 0 for NULL; booleans read 0/1 */
    int (*col_null)(kw_db_stmt *, int);
    int64_t (*changes)(kw_db_stmt *);
    void (*finish)(kw_db_stmt *);
    int (*begin)(kw_store *);
    int (*commit)(kw_store *);
    void (*rollback)(kw_store *);
    int (*in_transaction)(kw_store *);
    int (*schema_version)(kw_store *, int *);
    /* Blocks until another session changed keys or flags (KW_CHANGE_*);
     * NULL where the database cannot tell (SQLite: the caller polls). */
    int (*wait_change)(kw_store *, int timeout_ms, int *what);
    /* Bounds the statements this thread steps from now on to `ms`
     * milliseconds of wall time, until called again with 0 (no bound);
     * a statement stopped by it fails with KW_ERR_TIMEOUT. */
    int (*time_limit)(kw_store *, int64_t ms);
};

struct kw_store {
    const struct kw_db_driver *driver;
};

/* The first member of every driver's statement. */
struct kw_db_stmt {
    const struct kw_db_driver *driver;
};

/* Drivers record each failure they map, in the database's own words
 * (code: SQLSTATE or the SQLite result name; message: the primary text,
 * first line), for kw_store_last_error. */
void kw_db_note_error(const char *code, const char *message);

int kw_db_sqlite_open(const char *path, kw_store **out);
int kw_db_postgres_open(const char *url, kw_store **out);

static inline enum kw_db_dialect kw_db_dialect(const kw_store *s) { return s->driver->dialect; }

/* Every failure of the database itself (not "no row", not a unique
 * violation: answers, not failures) is counted once, where a statement is
 * prepared or stepped, for the metrics. */
static inline int kw_db_counted(int rc)
{
    if (rc == KW_ERR_UNAVAILABLE) kw_metrics_db_error(KW_M_DB_UNAVAILABLE);
    else if (rc == KW_ERR_DB || rc == KW_ERR_NOMEM || rc == KW_ERR_IO) kw_metrics_db_error(KW_M_DB_ERROR);
    return rc;
}

/* Bounds what the thread's next statements may run, for work a caller
 * chose (an endpoint's query), never for the store's own statements:
 * SQLite checks a deadline from a progress handler, PostgreSQL sets the
 * session's statement_timeout.  Set it after kw_db_prepare (which may
 * reconnect a PostgreSQL session, losing the setting) and clear it with 0
 * before anything else runs on the thread. */
static inline int kw_db_time_limit(kw_store *s, int64_t ms) { return s->driver->time_limit(s, ms); }

/* The thread's prepared statement `id`, ready to bind. */
static inline int kw_db_prepare(kw_store *s, enum kw_sql_id id, kw_db_stmt **st)
{
    return kw_db_counted(s->driver->prepare(s, id, st));
}

/* Binding.  Text is not copied: it must outlive the step.  The _or_null
 * forms store "" and 0 as NULL, for optional columns. */
static inline void kw_db_text(kw_db_stmt *st, int i, const char *v) { st->driver->bind_text(st, i, v); }
static inline void kw_db_int(kw_db_stmt *st, int i, int64_t v) { st->driver->bind_int(st, i, v); }
static inline void kw_db_null(kw_db_stmt *st, int i) { st->driver->bind_text(st, i, NULL); }
static inline void kw_db_text_or_null(kw_db_stmt *st, int i, const char *v)
{
    st->driver->bind_text(st, i, v && *v ? v : NULL);
}
static inline void kw_db_int_or_null(kw_db_stmt *st, int i, int64_t v)
{
    if (v)
        st->driver->bind_int(st, i, v);
    else
        st->driver->bind_text(st, i, NULL);
}

/* KW_DB_ROW while there is a row, KW_OK when done, a negative kw_err on
 * failure.  Every prepared statement is finished once with kw_db_finish,
 * whatever its steps returned (the shapes below do it themselves). */
#define KW_DB_ROW 1
static inline int kw_db_step(kw_db_stmt *st) { return kw_db_counted(st->driver->step(st)); }

static inline const char *kw_db_col_text(kw_db_stmt *st, int col) { return st->driver->col_text(st, col); }
static inline int64_t kw_db_col_int(kw_db_stmt *st, int col) { return st->driver->col_int(st, col); }
static inline int kw_db_col_null(kw_db_stmt *st, int col) { return st->driver->col_null(st, col); }
/* Rows changed by the write just stepped. */
static inline int64_t kw_db_changes(kw_db_stmt *st) { return st->driver->changes(st); }
void kw_db_col_copy(kw_db_stmt *st, int col, char *dst, size_t size);

/* Resets the statement for its next use (frees an uncached one) and
 * returns rc, so a caller can end with `return kw_db_finish(st, rc)`. */
int kw_db_finish(kw_db_stmt *st, int rc);

/* The common shapes, each finishing the statement:
 * kw_db_exec: a write; KW_ERR_NOTFOUND when it changed no row and
 *   must_change is set.
 * kw_db_one: a single-row query, KW_ERR_NOTFOUND when there is none; on
 *   KW_OK the caller reads the row and then calls kw_db_finish.
 * kw_db_int_result: the integer in the first column of the only row. */
int kw_db_exec(kw_db_stmt *st, int must_change);
int kw_db_one(kw_db_stmt *st);
int kw_db_int_result(kw_db_stmt *st, int64_t *out);

/* Row decoding by table: column i of the row goes to fields[i]. */
enum kw_db_field_type { KW_DB_F_TEXT, KW_DB_F_DUP, KW_DB_F_I64, KW_DB_F_I32, KW_DB_F_INT };
struct kw_db_field {
    enum kw_db_field_type type;
    size_t offset;
    size_t size;  /* KW_DB_F_TEXT: the char array's size */
};
#define KW_DB_MEMBER_SIZE(type, m) sizeof(((type *)0)->m)
#define KW_DB_TEXT(type, m) {KW_DB_F_TEXT, offsetof(type, m), KW_DB_MEMBER_SIZE(type, m)}
#define KW_DB_DUP(type, m) {KW_DB_F_DUP, offsetof(type, m), 0}
#define KW_DB_I64(type, m) {KW_DB_F_I64, offsetof(type, m), 0}
#define KW_DB_I32(type, m) {KW_DB_F_I32, offsetof(type, m), 0}
#define KW_DB_INT(type, m) {KW_DB_F_INT, offsetof(type, m), 0}
#define KW_DB_FIELDS(table) table, sizeof table / sizeof table[0]

/* Fills obj from the current row; KW_ERR_NOMEM when a KW_DB_F_DUP copy
 * fails (the copies made so far are the caller's to free). */
int kw_db_read_row(kw_db_stmt *st, const struct kw_db_field *fields, size_t n, void *obj);

/* Binding by table: params[i] binds parameter params[i].index from obj.
 * or_null: "" (text) or 0 (numbers) binds NULL. */
struct kw_db_param {
    int index;
    enum kw_db_field_type type;  /* TEXT, I64, I32 or INT */
    size_t offset;
    int or_null;
};
#define KW_DB_P(i, kind, type, m) {i, KW_DB_F_##kind, offsetof(type, m), 0}
#define KW_DB_P_OR_NULL(i, kind, type, m) {i, KW_DB_F_##kind, offsetof(type, m), 1}
void kw_db_bind_row(kw_db_stmt *st, const struct kw_db_param *params, size_t n, const void *obj);
/* The same, each parameter at its index + shift: row r of a statement
 * that writes several rows with the same columns. */
void kw_db_bind_row_at(kw_db_stmt *st, const struct kw_db_param *params, size_t n,
                       const void *obj, int shift);

/* Steps to the next row and decodes it into obj: KW_DB_ROW with a row,
 * KW_OK at the end, or a kw_err.  A list is
 *     while ((rc = kw_db_next(st, KW_DB_FIELDS(F), obj)) == KW_DB_ROW)
 *         if ((rc = cb(ctx, obj))) break;
 *     return kw_db_finish(st, rc); */
int kw_db_next(kw_db_stmt *st, const struct kw_db_field *fields, size_t n, void *obj);

/* Array parameters for PostgreSQL's batch writes (unnest): one element
 * appended to an array literal in `a`, "{" before the first and "," before
 * the others; the caller closes it with "}".  Every text element is quoted,
 * so no value needs a case of its own (empty, NULL spelled out, braces,
 * commas); inside the quotes only " and \ are special.  The literal is a
 * parameter value, never SQL text. */
struct kw_strbuf;
void kw_db_array_text(struct kw_strbuf *a, const char *v);
void kw_db_array_int(struct kw_strbuf *a, int64_t v);

/* An ad-hoc statement (built at run time from fixed fragments, never from
 * values), prepared for this call only; kw_db_finish frees it.  `sql` uses
 * ?N placeholders like the statement table. */
static inline int kw_db_prepare_sql(kw_store *s, const char *sql, kw_db_stmt **st)
{
    return s->driver->prepare_sql(s, sql, st);
}

#endif
