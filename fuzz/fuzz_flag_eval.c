/* fuzz_flag_eval.c — kw_flag_evaluate on an arbitrary flag and caller.
 *
 * Input: JSON.  An object with a "flag" member is a test case in the shape
 * of tests/fixtures/flags/cases.json (flag, distinct_id, person_properties,
 * groups, group_properties, group_type_mapping); any other JSON value is
 * the flag itself, evaluated for distinct_id "user_0" with no properties.
 * Invariants:
 *   - returns KW_OK, or KW_ERR_INVALID exactly when the flag is not an
 *     object with a string key or there is no distinct_id;
 *   - the reason code is the reason's, enabled ⇔ condition_match, the
 *     description is NUL-terminated, condition_index is -1 or an index
 *     into filters.groups;
 *   - a variant is one of the flag's variant keys; no payload unless
 *     enabled;
 *   - evaluation is deterministic (same answer twice);
 *   - every property filter of every condition can be matched on its own
 *     (kw_flag_match_property) without failing, and kw_flag_hash is in
 *     [0, 1]. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "keyward/flags.h"
#include "keyward/keyward.h"

static int is_variant_of(const json_t *flag, const char *variant)
{
    const json_t *vs = json_object_get(json_object_get(json_object_get(flag, "filters"), "multivariate"),
                                       "variants");
    size_t i;
    const json_t *v;
    json_array_foreach(vs, i, v) {
        if (json_string_value(json_object_get(v, "key")) == variant) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (!in) return 0;
    const json_t *flag = in;
    kw_flag_context ctx = {.distinct_id = "user_0"};
    if (json_is_object(in) && json_object_get(in, "flag")) {
        flag = json_object_get(in, "flag");
        ctx.distinct_id = json_string_value(json_object_get(in, "distinct_id"));
        ctx.person_properties = json_object_get(in, "person_properties");
        ctx.groups = json_object_get(in, "groups");
        ctx.group_properties = json_object_get(in, "group_properties");
        ctx.group_type_mapping = json_object_get(in, "group_type_mapping");
    }

    kw_flag_result r, again;
    int rc = kw_flag_evaluate(flag, &ctx, &r);
    const char *key = json_string_value(json_object_get(flag, "key"));
    int valid = json_is_object(flag) && key && ctx.distinct_id;
    FZ_CHECK(rc == (valid ? KW_OK : KW_ERR_INVALID), "rc %d, valid %d", rc, valid);
    FZ_CHECK(memchr(r.reason_description, '\0', sizeof r.reason_description) != NULL, "description");
    FZ_CHECK(r.reason_code && strcmp(r.reason_code, kw_flag_reason_code(r.reason)) == 0, "reason code");
    FZ_CHECK(!!r.enabled == (r.reason == KW_FLAG_REASON_CONDITION_MATCH), "enabled %d reason %s",
             r.enabled, r.reason_code);
    const json_t *groups = json_object_get(json_object_get(flag, "filters"), "groups");
    FZ_CHECK(r.condition_index >= -1 &&
                 (r.condition_index < 0 || (json_is_array(groups) &&
                                            (size_t)r.condition_index < json_array_size(groups))),
             "condition_index %d", r.condition_index);
    if (r.enabled) FZ_CHECK(r.condition_index >= 0, "match without a condition");
    if (r.variant) FZ_CHECK(r.enabled && is_variant_of(flag, r.variant), "variant %s", r.variant);
    if (!r.enabled) FZ_CHECK(r.payload == NULL, "payload when disabled");

    rc = kw_flag_evaluate(flag, &ctx, &again);
    FZ_CHECK(again.enabled == r.enabled && again.reason == r.reason && again.variant == r.variant &&
                 again.condition_index == r.condition_index && again.payload == r.payload &&
                 strcmp(again.reason_description, r.reason_description) == 0,
             "not deterministic");

    if (valid) {
        double h = kw_flag_hash(key, ctx.distinct_id, "");
        FZ_CHECK(h >= 0.0 && h <= 1.0, "hash %f", h);
        const char *v = kw_flag_matching_variant(flag, ctx.distinct_id);
        if (v) FZ_CHECK(is_variant_of(flag, v), "matching variant %s", v);
    }
    /* Every filter on its own, against both property sources. */
    size_t i, j;
    const json_t *cond, *filter;
    json_array_foreach(groups, i, cond) {
        json_array_foreach(json_object_get(cond, "properties"), j, filter) {
            int m = kw_flag_match_property(filter, ctx.person_properties);
            FZ_CHECK(m == 0 || m == 1, "match %d", m);
            m = kw_flag_match_property(filter, NULL);
            FZ_CHECK(m == 0 || m == 1, "match %d", m);
        }
    }
    json_decref(in);
    return 0;
}
