/* test_sink.h — a growing byte sink for the redactor's output callback,
 * shared by the redaction unit tests.  Header-only: each test file is its
 * own executable.  Include after cmocka.h. */
#ifndef KW_TEST_SINK_H
#define KW_TEST_SINK_H

#include <stdlib.h>
#include <string.h>

typedef struct sink {
    char *data;
    size_t len, cap;
} sink;

static int to_sink(const char *data, size_t len, void *ctx)
{
    sink *s = ctx;
    if (s->len + len + 1 > s->cap) {
        s->cap = (s->len + len + 1) * 2;
        s->data = realloc(s->data, s->cap);
        assert_non_null(s->data);
    }
    memcpy(s->data + s->len, data, len);
    s->len += len;
    s->data[s->len] = '\0';
    return 0;
}

#endif
