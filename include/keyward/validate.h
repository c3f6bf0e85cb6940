/* validate.h — field readers that answer bad input the way PostHog (Django
 * REST framework) does: same texts, same codes, attr = the field.  Each
 * returns 0 when fine and 1 after filling *p.  `field` must be a string
 * literal (it becomes the problem's attr). */
#ifndef KEYWARD_VALIDATE_H
#define KEYWARD_VALIDATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "keyward/problem.h"

int kw_v_object(const json_t *body, kw_problem *p);
/* *out NULL when absent and not required. */
int kw_v_string(const json_t *body, const char *field, int required, size_t max_chars,
                int allow_blank, const char **out, kw_problem *p);
/* kw_v_string, and at most max_bytes bytes: for text copied into a fixed
 * buffer, which a character limit alone does not fit (4 bytes a
 * character), and which must never be cut inside a character. */
int kw_v_text(const json_t *body, const char *field, int required, size_t max_chars,
              size_t max_bytes, int allow_blank, const char **out, kw_problem *p);
/* *present set when the field is there. */
int kw_v_bool(const json_t *body, const char *field, int *present, int *out, kw_problem *p);
/* A list field; *out NULL when absent (or null and nullable). */
int kw_v_list(const json_t *body, const char *field, int required, int nullable, json_t **out,
              kw_problem *p);
/* The length of a list read by kw_v_list: at most `max` items, and at
 * least one unless `allow_empty` (DRF's allow_empty / max_length). */
int kw_v_list_length(const json_t *list, const char *field, int allow_empty, int max,
                     kw_problem *p);
/* A nullable ISO-8601 datetime (DRF's DateTimeField texts) after the
 * epoch; *present set when the field is there, *out 0 for null. */
int kw_v_datetime(const json_t *body, const char *field, int *present, int64_t *out, kw_problem *p);
/* A nullable integer in [min, max] (DRF's IntegerField texts); *out 0 for
 * null. */
int kw_v_int(const json_t *body, const char *field, int64_t min, int64_t max, int *present,
             int64_t *out, kw_problem *p);
/* Python's type name of a JSON value, for DRF's messages. */
const char *kw_v_type_name(const json_t *v);
/* UTF-8 code points in s. */
size_t kw_v_utf8_length(const char *s);

#endif
