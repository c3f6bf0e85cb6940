/* fuzz_common.h — what the libFuzzer harnesses share: a checked-invariant
 * macro, a throw-away SQLite store, and a side connection to it. */
#ifndef KW_FUZZ_COMMON_H
#define KW_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "keyward/store.h"

/* An invariant: on failure print where and why, then abort so libFuzzer
 * records the input as a crash. */
#define FZ_CHECK(cond, ...)                                                              \
    do {                                                                                 \
        if (!(cond)) kw_fz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                \
    } while (0)

void kw_fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* Creates an empty SQLite database file under $TMPDIR (or /tmp), removed at
 * exit, opens it as a keyward store and returns it (aborts on failure). */
kw_store *kw_fz_temp_store(void);
/* Runs SQL on the temp database through a second connection (cleanup
 * between inputs: the store API has no hard deletes).  Aborts on error. */
void kw_fz_sql(const char *sql);
/* The first column of the first row of a query on the side connection, as
 * an integer (a count), or aborts. */
int64_t kw_fz_sql_int(const char *sql);

/* A growable byte sink (redactor output, socket reads). */
typedef struct kw_fz_buf {
    char *data;
    size_t len, cap;
} kw_fz_buf;
void kw_fz_buf_append(kw_fz_buf *b, const void *data, size_t len);
void kw_fz_buf_free(kw_fz_buf *b);

#endif
