/* strbuf.c — the bounded text builder (see strbuf.h for the contract).
 *
 * Appends go through one place, kw_sb_reserve(), which either makes room (heap
 * builders, doubling up to their limit) or marks the builder overflowed.
 * Formatted appends print into the room left; vsnprintf reports how much
 * it wanted, so a heap builder grows once and prints again, and a fixed
 * one puts its NUL back where it was: a refused append leaves no half of
 * itself behind. */
#include "keyward/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kw_sb_init(kw_strbuf *sb, char *buf, size_t size)
{
    memset(sb, 0, sizeof *sb);
    sb->data = buf;
    sb->cap = size;
    if (size)
        buf[0] = '\0';
    else
        sb->overflow = 1;  /* nowhere to put even the NUL */
}

void kw_sb_init_heap(kw_strbuf *sb, size_t limit)
{
    static char empty[1];
    memset(sb, 0, sizeof *sb);
    sb->heap = 1;
    sb->limit = limit;
    sb->cap = limit < 64 ? limit : 64;
    sb->data = sb->cap ? malloc(sb->cap) : NULL;
    if (!sb->data) {  /* still a valid "" for callers that print it */
        sb->data = empty;
        sb->cap = 1;
        sb->heap = 0;
        sb->overflow = 1;
        return;
    }
    sb->data[0] = '\0';
}

void kw_sb_free(kw_strbuf *sb)
{
    if (sb->heap) free(sb->data);
    sb->data = NULL;
    sb->len = sb->cap = 0;
    sb->heap = 0;
    sb->overflow = 1;
}

int kw_sb_reserve(kw_strbuf *sb, size_t n)
{
    if (sb->overflow) return -1;
    if (n < sb->cap - sb->len) return 0;
    if (!sb->heap || n >= sb->limit - sb->len) {  /* limit >= len + 1 always */
        sb->overflow = 1;
        return -1;
    }
    size_t want = sb->len + n + 1, cap = sb->cap;
    while (cap < want) cap = cap > sb->limit / 2 ? sb->limit : cap * 2;
    char *data = realloc(sb->data, cap);
    if (!data) {
        sb->overflow = 1;
        return -1;
    }
    sb->data = data;
    sb->cap = cap;
    return 0;
}

void kw_sb_appendn(kw_strbuf *sb, const char *s, size_t n)
{
    if (kw_sb_reserve(sb, n)) return;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void kw_sb_append(kw_strbuf *sb, const char *s) { kw_sb_appendn(sb, s, strlen(s)); }

void kw_sb_int(kw_strbuf *sb, long long v)
{
    char digits[24];
    size_t at = sizeof digits;
    /* In unsigned arithmetic, so LLONG_MIN's magnitude does not overflow. */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        digits[--at] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) digits[--at] = '-';
    kw_sb_appendn(sb, digits + at, sizeof digits - at);
}

void kw_sb_vappendf(kw_strbuf *sb, const char *fmt, va_list ap)
{
    if (sb->overflow) return;
    va_list again;
    va_copy(again, ap);
    size_t room = sb->cap - sb->len;
    int n = vsnprintf(sb->data + sb->len, room, fmt, ap);
    if (n < 0) {
        sb->data[sb->len] = '\0';
        sb->overflow = 1;
    } else if ((size_t)n >= room) {
        sb->data[sb->len] = '\0';  /* take back the partial print */
        if (!kw_sb_reserve(sb, (size_t)n)) {
            vsnprintf(sb->data + sb->len, sb->cap - sb->len, fmt, again);
            sb->len += (size_t)n;
        }
    } else {
        sb->len += (size_t)n;
    }
    va_end(again);
}

void kw_sb_appendf(kw_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kw_sb_vappendf(sb, fmt, ap);
    va_end(ap);
}

void kw_sb_hex(kw_strbuf *sb, const unsigned char *bytes, size_t n)
{
    static const char DIGITS[] = "0123456789abcdef";
    if (n > (size_t)-1 / 2 - 1 || kw_sb_reserve(sb, 2 * n)) {
        sb->overflow = 1;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        sb->data[sb->len++] = DIGITS[bytes[i] >> 4];
        sb->data[sb->len++] = DIGITS[bytes[i] & 15];
    }
    sb->data[sb->len] = '\0';
}

void kw_sb_urlencode(kw_strbuf *sb, const char *s)
{
    static const char DIGITS[] = "0123456789ABCDEF";
    for (const unsigned char *c = (const unsigned char *)s; *c && !sb->overflow; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '_' || *c == '.' || *c == '~') {
            kw_sb_appendn(sb, (const char *)c, 1);
        } else {
            char esc[3] = {'%', DIGITS[*c >> 4], DIGITS[*c & 15]};
            kw_sb_appendn(sb, esc, 3);
        }
    }
}

char *kw_strdupf(const char *fmt, ...)
{
    kw_strbuf sb;
    kw_sb_init_heap(&sb, 1 << 20);
    va_list ap;
    va_start(ap, fmt);
    kw_sb_vappendf(&sb, fmt, ap);
    va_end(ap);
    if (kw_sb_ok(&sb)) return sb.data;  /* the caller's now */
    kw_sb_free(&sb);
    return NULL;
}
