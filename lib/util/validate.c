/* validate.c — PostHog-compatible validation of JSON request fields.
 * Clients (and PostHog's own UI) branch on these codes and texts, so they
 * are DRF's, word for word. */
#include "keyward/validate.h"

#include "keyward/keyward.h"

#include <string.h>

const char *kw_v_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "dict";
    case JSON_ARRAY: return "list";
    case JSON_STRING: return "str";
    case JSON_INTEGER: return "int";
    case JSON_REAL: return "float";
    case JSON_TRUE: case JSON_FALSE: return "bool";
    default: return "NoneType";
    }
}

size_t kw_v_utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

int kw_v_object(const json_t *body, kw_problem *p)
{
    if (json_is_object(body)) return 0;
    kw_problem_set(p, KW_P_VALIDATION, "invalid", "non_field_errors",
                   "Invalid data. Expected a dictionary, but got %s.",
                   body ? kw_v_type_name(body) : "NoneType");
    return 1;
}

int kw_v_string(const json_t *body, const char *field, int required, size_t max_chars,
                int allow_blank, const char **out, kw_problem *p)
{
    json_t *v = json_object_get(body, field);
    *out = NULL;
    if (!v) {
        if (!required) return 0;
        kw_problem_set(p, KW_P_VALIDATION, "required", field, "This field is required.");
        return 1;
    }
    if (json_is_null(v)) {
        kw_problem_set(p, KW_P_VALIDATION, "null", field, "This field may not be null.");
        return 1;
    }
    if (!json_is_string(v)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid", field, "Not a valid string.");
        return 1;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {  /* embedded NUL */
        kw_problem_set(p, KW_P_VALIDATION, "null_characters_not_allowed", field,
                       "Null characters are not allowed.");
        return 1;
    }
    if (!allow_blank && s[strspn(s, " \t\r\n")] == '\0') {
        kw_problem_set(p, KW_P_VALIDATION, "blank", field, "This field may not be blank.");
        return 1;
    }
    if (max_chars && kw_v_utf8_length(s) > max_chars) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", field,
                       "Ensure this field has no more than %zu characters.", max_chars);
        return 1;
    }
    *out = s;
    return 0;
}

int kw_v_text(const json_t *body, const char *field, int required, size_t max_chars,
              size_t max_bytes, int allow_blank, const char **out, kw_problem *p)
{
    if (kw_v_string(body, field, required, max_chars, allow_blank, out, p)) return 1;
    if (*out && strlen(*out) > max_bytes) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", field,
                       "Ensure this field has no more than %zu bytes.", max_bytes);
        *out = NULL;
        return 1;
    }
    return 0;
}

int kw_v_bool(const json_t *body, const char *field, int *present, int *out, kw_problem *p)
{
    json_t *v = json_object_get(body, field);
    *present = v != NULL;
    if (!v) return 0;
    if (!json_is_boolean(v)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid", field, "Must be a valid boolean.");
        return 1;
    }
    *out = json_is_true(v);
    return 0;
}

int kw_v_list(const json_t *body, const char *field, int required, int nullable, json_t **out,
              kw_problem *p)
{
    json_t *v = json_object_get(body, field);
    *out = NULL;
    if (!v) {
        if (!required) return 0;
        kw_problem_set(p, KW_P_VALIDATION, "required", field, "This field is required.");
        return 1;
    }
    if (json_is_null(v)) {
        if (nullable) return 0;
        kw_problem_set(p, KW_P_VALIDATION, "null", field, "This field may not be null.");
        return 1;
    }
    if (!json_is_array(v)) {
        kw_problem_set(p, KW_P_VALIDATION, "not_a_list", field,
                       "Expected a list of items but got type \"%s\".", kw_v_type_name(v));
        return 1;
    }
    *out = v;
    return 0;
}

int kw_v_datetime(const json_t *body, const char *field, int *present, int64_t *out, kw_problem *p)
{
    json_t *v = json_object_get(body, field);
    *present = v != NULL;
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v) || kw_time_parse(json_string_value(v), out)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid", field,
                       "Datetime has wrong format. Use one of these formats instead: "
                       "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].");
        return 1;
    }
    /* 0 is "no time" to every reader of a stored time (expires_at: never
     * expires), so the epoch itself, and anything before it, would read
     * as no expiry at all or be a date no key needs. */
    if (*out <= 0) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid", field,
                       "Datetime must be after 1970-01-01T00:00:00Z.");
        *out = 0;
        return 1;
    }
    return 0;
}

int kw_v_int(const json_t *body, const char *field, int64_t min, int64_t max, int *present,
             int64_t *out, kw_problem *p)
{
    json_t *v = json_object_get(body, field);
    *present = v != NULL;
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) {
        kw_problem_set(p, KW_P_VALIDATION, "invalid", field, "A valid integer is required.");
        return 1;
    }
    int64_t n = json_integer_value(v);
    if (n < min) {
        kw_problem_set(p, KW_P_VALIDATION, "min_value", field,
                       "Ensure this value is greater than or equal to %lld.", (long long)min);
        return 1;
    }
    if (n > max) {
        kw_problem_set(p, KW_P_VALIDATION, "max_value", field,
                       "Ensure this value is less than or equal to %lld.", (long long)max);
        return 1;
    }
    *out = n;
    return 0;
}

int kw_v_list_length(const json_t *list, const char *field, int allow_empty, int max,
                     kw_problem *p)
{
    size_t n = json_array_size(list);
    if (n == 0 && !allow_empty) {
        kw_problem_set(p, KW_P_VALIDATION, "empty", field, "This list may not be empty.");
        return 1;
    }
    if (n > (size_t)max) {
        kw_problem_set(p, KW_P_VALIDATION, "max_length", field,
                       "Ensure this field has no more than %d elements.", max);
        return 1;
    }
    return 0;
}
