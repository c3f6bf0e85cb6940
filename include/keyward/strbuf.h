/* strbuf.h — the one way keyward assembles text (queries, links, lists,
 * messages): a bounded builder that never writes past its storage and
 * remembers when something did not fit.
 *
 * A builder either owns fixed storage (kw_sb_init: a caller's array, never
 * grown) or a heap buffer that grows up to a limit (kw_sb_init_heap).  An
 * append is all or nothing: when it does not fit, the text stays as it was
 * (still NUL-terminated), the builder is marked overflowed and every later
 * append is refused too, so a caller checks once at the end with
 * kw_sb_ok().  Callers never do arithmetic on offsets and lengths, so
 * there is no running length to push past the end of a buffer. */
#ifndef KEYWARD_STRBUF_H
#define KEYWARD_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct kw_strbuf {
    char *data;       /* always NUL-terminated once initialised */
    size_t len;       /* bytes before the NUL */
    size_t cap;       /* storage size, NUL included */
    size_t limit;     /* heap builders: most storage ever allocated */
    int heap;         /* data is malloc'd by the builder and may grow */
    int overflow;     /* an append did not fit (or memory ran out) */
} kw_strbuf;

/* Fixed storage: buf[size], size >= 1. */
void kw_sb_init(kw_strbuf *sb, char *buf, size_t size);
/* Heap storage growing up to `limit` bytes (NUL included); free with
 * kw_sb_free.  A failed allocation counts as an overflow. */
void kw_sb_init_heap(kw_strbuf *sb, size_t limit);
void kw_sb_free(kw_strbuf *sb);
/* Room for `n` more bytes plus the NUL, grown at once (for a builder whose
 * final size is known roughly, instead of doubling its way there): 0, or
 * -1 as an overflow when it cannot be. */
int kw_sb_reserve(kw_strbuf *sb, size_t n);

void kw_sb_append(kw_strbuf *sb, const char *s);
void kw_sb_appendn(kw_strbuf *sb, const char *s, size_t n);
/* A string literal, its length known at compile time (hot paths). */
#define KW_SB_LIT(sb, lit) kw_sb_appendn((sb), "" lit, sizeof(lit) - 1)
/* A decimal integer, without printf's format parsing (hot paths). */
void kw_sb_int(kw_strbuf *sb, long long v);
void kw_sb_appendf(kw_strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kw_sb_vappendf(kw_strbuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Bytes as lowercase hex. */
void kw_sb_hex(kw_strbuf *sb, const unsigned char *bytes, size_t n);
/* `s`, percent-encoded for a URL query value (RFC 3986 unreserved kept). */
void kw_sb_urlencode(kw_strbuf *sb, const char *s);

/* A new heap string formatted from fmt (free it), or NULL when memory ran
 * out or it would exceed 1 MiB: sizes are never computed by hand. */
char *kw_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 1 when every append so far fitted. */
static inline int kw_sb_ok(const kw_strbuf *sb) { return !sb->overflow; }
static inline const char *kw_sb_str(const kw_strbuf *sb) { return sb->data; }
static inline size_t kw_sb_len(const kw_strbuf *sb) { return sb->len; }

#endif
