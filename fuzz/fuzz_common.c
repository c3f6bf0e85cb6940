/* fuzz_common.c — shared helpers of the harnesses (see fuzz_common.h). */
#include "fuzz_common.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keyward/keyward.h"

static char db_path[4096];
static sqlite3 *side;

void kw_fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\n==FUZZ INVARIANT== %s:%d: %s\n  ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static void remove_db(void)
{
    char extra[sizeof db_path + 8];
    if (side) sqlite3_close(side);
    side = NULL;
    if (!db_path[0]) return;
    unlink(db_path);
    snprintf(extra, sizeof extra, "%s-wal", db_path);
    unlink(extra);
    snprintf(extra, sizeof extra, "%s-shm", db_path);
    unlink(extra);
}

kw_store *kw_fz_temp_store(void)
{
    const char *dir = getenv("TMPDIR");
    snprintf(db_path, sizeof db_path, "%s/keyward-fuzz-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(db_path);
    FZ_CHECK(fd >= 0, "mkstemp %s", db_path);
    close(fd);
    atexit(remove_db);
    kw_store *store = NULL;
    int rc = kw_store_open(db_path, &store);
    FZ_CHECK(rc == KW_OK, "kw_store_open(%s): %s", db_path, kw_strerror(rc));
    return store;
}

static void open_side(void)
{
    if (side) return;
    FZ_CHECK(sqlite3_open(db_path, &side) == SQLITE_OK, "open side connection");
    sqlite3_busy_timeout(side, 5000);
}

int64_t kw_fz_sql_int(const char *sql)
{
    sqlite3_stmt *st = NULL;
    open_side();
    FZ_CHECK(sqlite3_prepare_v2(side, sql, -1, &st, NULL) == SQLITE_OK, "%s: %s", sql,
             sqlite3_errmsg(side));
    FZ_CHECK(sqlite3_step(st) == SQLITE_ROW, "%s: no row", sql);
    int64_t value = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return value;
}

void kw_fz_sql(const char *sql)
{
    open_side();
    char *err = NULL;
    int rc = sqlite3_exec(side, sql, NULL, NULL, &err);
    FZ_CHECK(rc == SQLITE_OK, "%s: %s", sql, err ? err : "?");
}

void kw_fz_buf_append(kw_fz_buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        FZ_CHECK(d != NULL, "out of memory");
        b->data = d;
        b->cap = cap;
    }
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void kw_fz_buf_free(kw_fz_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}
