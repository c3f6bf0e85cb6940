/* logger.c — text or JSON lines on stderr, one write(2) each (see
 * logger.h).  A line is built in a stack buffer (jansson dumps straight
 * into it); only a line longer than that is built on the heap. */
#include "logger.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keyward/keyward.h"

#define LINE_MAX_STACK 2048
#define TOKEN_RUN 20

static kw_log_format format = KW_LOG_TEXT;

int kw_log_set_format(const char *name)
{
    if (strcmp(name, "text") == 0)
        format = KW_LOG_TEXT;
    else if (strcmp(name, "json") == 0)
        format = KW_LOG_JSON;
    else
        return -1;
    return 0;
}

kw_log_format kw_log_get_format(void) { return format; }

static void write_all(const char *s, size_t len)
{
    while (len) {
        ssize_t n = write(STDERR_FILENO, s, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  /* nowhere to report a failed log write */
        s += n;
        len -= (size_t)n;
    }
}

static int token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

char *kw_log_clean(const char *in, size_t len, char *out, size_t size)
{
    static const char HEX[] = "0123456789ABCDEF";
    static const char REDACTED[] = "[redacted]";
    size_t o = 0, room = size > 4 ? size - 4 : 0;  /* keep room for "..." and NUL */
    for (size_t i = 0; i < len;) {
        const unsigned char *s = (const unsigned char *)in;
        size_t run = 0;
        while (i + run < len && token_char(s[i + run])) run++;
        char piece[sizeof REDACTED];
        size_t plen, used;
        if (run >= TOKEN_RUN) {
            memcpy(piece, REDACTED, sizeof REDACTED - 1);
            plen = sizeof REDACTED - 1;
            used = run;
        } else if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' && s[i] != '%') {
            piece[0] = (char)s[i];
            plen = used = 1;
        } else {
            piece[0] = '%';
            piece[1] = HEX[s[i] >> 4];
            piece[2] = HEX[s[i] & 15];
            plen = 3;
            used = 1;
        }
        if (o + plen > room) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, piece, plen);
        o += plen;
        i += used;
    }
    if (size) out[o < size ? o : size - 1] = '\0';
    return out;
}

static const char *level_name(kw_log_level level)
{
    return level == KW_LOG_ERROR ? "error" : level == KW_LOG_WARN ? "warn" : "info";
}

/* A JSON string member from text that should be UTF-8 but may not be
 * (an operator's argument, a library's message): cleaned when it is not,
 * since JSON text must be UTF-8. */
static void set_text(json_t *obj, const char *key, const char *text)
{
    json_t *v = json_string(text);
    if (!v) {
        char clean[512];
        v = json_string(kw_log_clean(text, strlen(text), clean, sizeof clean));
    }
    json_object_set_new(obj, key, v);
}

static void emit_json(kw_log_level level, const char *event, json_t *fields, const char *message)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char when[KW_TIME_TEXT];
    kw_time_format((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, when);
    json_t *line = json_object();
    if (!line) return;
    json_object_set_new(line, "time", json_string(when));
    json_object_set_new(line, "level", json_string(level_name(level)));
    json_object_set_new(line, "event", json_string(event));
    if (message) set_text(line, "message", message);
    if (fields) json_object_update(line, fields);
    char stack[LINE_MAX_STACK];
    size_t n = json_dumpb(line, stack, sizeof stack - 1, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    if (n && n < sizeof stack - 1) {
        stack[n] = '\n';
        write_all(stack, n + 1);
    } else if (n) {
        char *heap = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        if (heap) {
            size_t len = strlen(heap);
            heap[len] = '\n';  /* over the NUL: written by length */
            write_all(heap, len + 1);
            free(heap);
        }
    }
    json_decref(line);
}

void kw_log_event(kw_log_level level, const char *event, json_t *fields, const char *message_fmt,
                  ...)
{
    char message[1024];
    if (message_fmt) {
        va_list ap;
        va_start(ap, message_fmt);
        vsnprintf(message, sizeof message, message_fmt, ap);
        va_end(ap);
    }
    if (format == KW_LOG_JSON) {
        emit_json(level, event, fields, message_fmt ? message : NULL);
    } else if (message_fmt) {
        char line[sizeof message + 32];
        int n = snprintf(line, sizeof line, "keyward serve: %s\n", message);
        if (n > 0) write_all(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    }
    json_decref(fields);
}
