/* flag_eval.c — evaluate one PostHog feature flag for one caller.
 *
 * This is PostHog's flag service algorithm, reimplemented so keyward's
 * /flags?v=2 and /decide answer as posthog.com does and as the SDKs' local
 * evaluation does (SPEC §4: "the same flag must give the same answer locally
 * and remotely for every distinct_id"):
 *   1. inactive or deleted flag -> flag_disabled;
 *   2. a group flag (aggregation_group_type_index) buckets and matches on the
 *      caller's group key and group properties; no key -> no_group_type;
 *   3. conditions are tried in order, those with a variant override first
 *      (stable: the service sorts them so; condition_index stays the
 *      position in filters.groups);
 *   4. a condition matches when all its property filters match and the
 *      rollout hash sha1("<key>.<id>") is <= rollout_percentage/100;
 *   5. on a match the variant is the condition's override if it names a real
 *      variant, else the band of sha1("<key>.<id>variant") in the cumulative
 *      variant table; the payload is payloads[variant] or payloads["true"];
 *   6. with no match the reason is the strongest seen (out_of_rollout_bound
 *      beats no_condition_match), and condition_index is the last condition
 *      that produced it — which is why PostHog reports e.g.
 *      {"code":"no_condition_match","condition_index":4}.
 * Property filters live in flag_match.c.  Hashing uses OpenSSL SHA-1; the
 * division is done in double exactly as Python does it (int -> float,
 * then divide), so buckets agree to the last bit. */
#include "keyward/flags.h"
#include "keyward/keyward.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float(0xFFFFFFFFFFFFFFF), PostHog's __LONG_SCALE__ */
#define FLAG_LONG_SCALE 1152921504606846975.0

/* The longest condition list we sort on the stack; longer lists are tried
 * in their written order (override-first ordering only matters when
 * several conditions match, and PostHog's UI makes a handful at most). */
#define FLAG_MAX_SORTED_CONDITIONS 256

static const char *const REASON_CODES[] = {
    [KW_FLAG_REASON_CONDITION_MATCH] = "condition_match",
    [KW_FLAG_REASON_NO_CONDITION_MATCH] = "no_condition_match",
    [KW_FLAG_REASON_OUT_OF_ROLLOUT_BOUND] = "out_of_rollout_bound",
    [KW_FLAG_REASON_NO_GROUP_TYPE] = "no_group_type",
    [KW_FLAG_REASON_FLAG_DISABLED] = "flag_disabled",
};

const char *kw_flag_reason_code(kw_flag_reason reason)
{
    if ((unsigned)reason >= sizeof REASON_CODES / sizeof REASON_CODES[0]) return "unknown";
    return REASON_CODES[reason];
}

/* Which non-matching reason wins when several conditions fail: PostHog's
 * FeatureFlagMatchReason score.  Ties go to the later condition. */
static int reason_score(kw_flag_reason r)
{
    switch (r) {
    case KW_FLAG_REASON_CONDITION_MATCH: return 4;
    case KW_FLAG_REASON_OUT_OF_ROLLOUT_BOUND: return 3;
    case KW_FLAG_REASON_NO_CONDITION_MATCH: return 2;
    case KW_FLAG_REASON_NO_GROUP_TYPE: return 1;
    default: return 0;
    }
}

static void set_reason(kw_flag_result *out, kw_flag_reason reason, int index)
{
    out->reason = reason;
    out->reason_code = kw_flag_reason_code(reason);
    out->condition_index = index;
    switch (reason) {
    case KW_FLAG_REASON_CONDITION_MATCH:
        snprintf(out->reason_description, sizeof out->reason_description,
                 "Matched condition set %d", index + 1);
        break;
    case KW_FLAG_REASON_NO_CONDITION_MATCH:
        snprintf(out->reason_description, sizeof out->reason_description,
                 "No matching condition set");
        break;
    case KW_FLAG_REASON_OUT_OF_ROLLOUT_BOUND:
        snprintf(out->reason_description, sizeof out->reason_description,
                 "Out of rollout bound");
        break;
    case KW_FLAG_REASON_NO_GROUP_TYPE:
        snprintf(out->reason_description, sizeof out->reason_description, "No group type");
        break;
    case KW_FLAG_REASON_FLAG_DISABLED:
        snprintf(out->reason_description, sizeof out->reason_description,
                 "Feature flag is disabled");
        break;
    }
}

double kw_flag_hash(const char *key, const char *bucketing_id, const char *salt)
{
    if (!key) key = "";
    if (!bucketing_id) bucketing_id = "";
    if (!salt) salt = "";
    size_t kl = strlen(key), il = strlen(bucketing_id), sl = strlen(salt);
    size_t n = kl + 1 + il + sl;
    char stackbuf[512];
    char *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf) return 1.0; /* out of memory: the top bucket, i.e. rolled out last */
    memcpy(buf, key, kl);
    buf[kl] = '.';
    memcpy(buf + kl + 1, bucketing_id, il);
    memcpy(buf + kl + 1 + il, salt, sl);

    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int ok = EVP_Digest(buf, n, md, &mdlen, EVP_sha1(), NULL);
    if (buf != stackbuf) free(buf);
    if (!ok || mdlen < 8) return 1.0;
    /* First 15 hex digits = the top 60 bits of the first 8 bytes. */
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | md[i];
    v >>= 4;
    return (double)v / FLAG_LONG_SCALE;
}

static const json_t *flag_variants(const json_t *flag)
{
    const json_t *filters = json_object_get(flag, "filters");
    const json_t *mv = json_object_get(filters, "multivariate");
    const json_t *variants = json_object_get(mv, "variants");
    return json_is_array(variants) ? variants : NULL;
}

const char *kw_flag_matching_variant(const json_t *flag, const char *bucketing_id)
{
    const json_t *variants = flag_variants(flag);
    const char *key = json_string_value(json_object_get(flag, "key"));
    if (!variants || !key) return NULL;
    double h = kw_flag_hash(key, bucketing_id, "variant");
    double lo = 0.0;
    size_t i;
    const json_t *v;
    json_array_foreach(variants, i, v) {
        const json_t *pct = json_object_get(v, "rollout_percentage");
        double hi = lo + (json_is_number(pct) ? json_number_value(pct) / 100.0 : 0.0);
        const char *vk = json_string_value(json_object_get(v, "key"));
        if (vk && h >= lo && h < hi) return vk;
        lo = hi;
    }
    return NULL;
}

/* The override variant of a condition if it names one of the flag's
 * variants, else NULL. */
static const char *valid_override(const json_t *flag, const json_t *condition)
{
    const char *want = json_string_value(json_object_get(condition, "variant"));
    const json_t *variants = flag_variants(flag);
    if (!want || !*want || !variants) return NULL;
    size_t i;
    const json_t *v;
    json_array_foreach(variants, i, v) {
        const char *vk = json_string_value(json_object_get(v, "key"));
        if (vk && !strcmp(vk, want)) return vk;
    }
    return NULL;
}

static kw_flag_reason condition_outcome(const char *flag_key, const json_t *condition,
                                        const json_t *properties, const char *bucketing_id,
                                        const kw_flag_context *ctx)
{
    const json_t *props = json_object_get(condition, "properties");
    size_t i;
    const json_t *p;
    if (json_is_array(props))
        json_array_foreach(props, i, p)
            if (!kw_flag_match_property_in(p, properties, ctx))
                return KW_FLAG_REASON_NO_CONDITION_MATCH;

    const json_t *pct = json_object_get(condition, "rollout_percentage");
    if (!pct || json_is_null(pct)) return KW_FLAG_REASON_CONDITION_MATCH;
    if (!json_is_number(pct)) return KW_FLAG_REASON_NO_CONDITION_MATCH; /* malformed */
    if (kw_flag_hash(flag_key, bucketing_id, "") > json_number_value(pct) / 100.0)
        return KW_FLAG_REASON_OUT_OF_ROLLOUT_BOUND;
    return KW_FLAG_REASON_CONDITION_MATCH;
}

/* For a group flag: the group key to bucket on (written into keybuf when it
 * is a number) and that group's properties.  NULL when the caller did not
 * send the group. */
static const char *group_identity(const json_t *index, const kw_flag_context *ctx,
                                  char *keybuf, size_t keybufsz, const json_t **props)
{
    char idx[32];
    if (json_is_integer(index))
        snprintf(idx, sizeof idx, "%" JSON_INTEGER_FORMAT, json_integer_value(index));
    else if (json_is_string(index))
        snprintf(idx, sizeof idx, "%s", json_string_value(index));
    else
        return NULL;
    const char *type = json_string_value(json_object_get(ctx->group_type_mapping, idx));
    if (!type) return NULL;
    const json_t *gk = json_object_get(ctx->groups, type);
    const char *key = NULL;
    if (json_is_string(gk)) {
        key = json_string_value(gk);
    } else if (json_is_integer(gk)) {
        snprintf(keybuf, keybufsz, "%" JSON_INTEGER_FORMAT, json_integer_value(gk));
        key = keybuf;
    }
    if (!key || !*key) return NULL;
    *props = json_object_get(ctx->group_properties, type);
    return key;
}

static void finish_match(const json_t *flag, const json_t *condition, int index,
                         const char *bucketing_id, kw_flag_result *out)
{
    out->enabled = 1;
    out->variant = valid_override(flag, condition);
    if (!out->variant) out->variant = kw_flag_matching_variant(flag, bucketing_id);
    const json_t *payloads = json_object_get(json_object_get(flag, "filters"), "payloads");
    json_t *payload = json_object_get(payloads, out->variant ? out->variant : "true");
    out->payload = payload && !json_is_null(payload) ? payload : NULL;
    set_reason(out, KW_FLAG_REASON_CONDITION_MATCH, index);
}

int kw_flag_evaluate(const json_t *flag, const kw_flag_context *ctx, kw_flag_result *out)
{
    memset(out, 0, sizeof *out);
    set_reason(out, KW_FLAG_REASON_FLAG_DISABLED, -1);
    const char *key = json_string_value(json_object_get(flag, "key"));
    if (!json_is_object(flag) || !key || !ctx || !ctx->distinct_id) return KW_ERR_INVALID;
    if (!json_is_true(json_object_get(flag, "active")) ||
        json_is_true(json_object_get(flag, "deleted")))
        return KW_OK;

    const json_t *filters = json_object_get(flag, "filters");
    const char *bucketing_id = ctx->distinct_id;
    const json_t *properties = ctx->person_properties;
    const json_t *agg = json_object_get(filters, "aggregation_group_type_index");
    char groupkey[32];
    if (agg && !json_is_null(agg)) {
        bucketing_id = group_identity(agg, ctx, groupkey, sizeof groupkey, &properties);
        if (!bucketing_id) {
            set_reason(out, KW_FLAG_REASON_NO_GROUP_TYPE, -1);
            return KW_OK;
        }
    }

    const json_t *conditions = json_object_get(filters, "groups");
    size_t n = json_is_array(conditions) ? json_array_size(conditions) : 0;
    /* Order: conditions with a variant override first, then the rest, each
     * group in written order. */
    size_t order[FLAG_MAX_SORTED_CONDITIONS];
    size_t m = 0;
    if (n <= FLAG_MAX_SORTED_CONDITIONS) {
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < n; i++) {
                const json_t *v = json_object_get(json_array_get(conditions, i), "variant");
                int has_override = v && !json_is_null(v);
                if (has_override == (pass == 0)) order[m++] = i;
            }
    }
    int early_exit = json_is_true(json_object_get(filters, "early_exit"));

    kw_flag_reason best = KW_FLAG_REASON_NO_CONDITION_MATCH;
    int best_index = -1;
    for (size_t k = 0; k < n; k++) {
        size_t i = n <= FLAG_MAX_SORTED_CONDITIONS ? order[k] : k;
        const json_t *condition = json_array_get(conditions, i);
        kw_flag_reason r = condition_outcome(key, condition, properties, bucketing_id, ctx);
        if (r == KW_FLAG_REASON_CONDITION_MATCH) {
            finish_match(flag, condition, (int)i, bucketing_id, out);
            return KW_OK;
        }
        if (reason_score(r) >= reason_score(best)) {
            best = r;
            best_index = (int)i;
        }
        if (early_exit && r == KW_FLAG_REASON_OUT_OF_ROLLOUT_BOUND) break;
    }
    set_reason(out, best, best_index);
    return KW_OK;
}
