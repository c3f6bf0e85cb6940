/* logger.h — the one way `keyward serve` writes to its log (stderr).
 *
 * Two formats (`--log-format`): text, the free lines keyward always wrote
 * ("keyward serve: …"), and json, one JSON object per line for log
 * pipelines — every event (start, stop, database outage and recovery,
 * errors) and one access line per request.  A line is written with one
 * write(2) call, so lines from concurrent threads never interleave.
 *
 * Nothing secret reaches a line: callers pass only what they choose (route
 * patterns, key ids, statuses), and text a client chose — an unmatched
 * path, a method — goes through kw_log_clean, which leaves only printable
 * ASCII and blanks out anything shaped like a token. */
#ifndef KW_LOGGER_H
#define KW_LOGGER_H

#include <jansson.h>
#include <stddef.h>

typedef enum kw_log_format { KW_LOG_TEXT, KW_LOG_JSON } kw_log_format;
typedef enum kw_log_level { KW_LOG_INFO, KW_LOG_WARN, KW_LOG_ERROR } kw_log_level;

/* "text" or "json": 0, else -1 (the format stays as it was).  Set once,
 * before any thread logs. */
int kw_log_set_format(const char *name);
kw_log_format kw_log_get_format(void);

/* An event.  Text: "keyward serve: <message>" when message_fmt is not
 * NULL (an event without a message is for JSON only, such as an access
 * line).  JSON: {"time", "level", "event", "message"?, …fields}; `fields`
 * is a JSON object whose members are added in order, or NULL; it is
 * consumed (decref'd) either way. */
void kw_log_event(kw_log_level level, const char *event, json_t *fields, const char *message_fmt,
                  ...) __attribute__((format(printf, 4, 5)));

/* Client-chosen text made safe to log: at most size-1 bytes of out, only
 * printable ASCII; other bytes, '"', '\\' and '%' as %XX; a run of 20 or
 * more letters, digits, '_' or '-' (a key, a token) as "[redacted]"; cut
 * with "…" past the room.  Returns out. */
char *kw_log_clean(const char *in, size_t len, char *out, size_t size);

#endif
