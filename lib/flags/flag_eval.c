/* flag_eval.c — evaluate one PostHog feature flag for one caller.
 *
 * This is PostHog's flag service algorithm, reimplemented so keyward's
 * /flags?v=2 and /decide answer as posthog.com does and as the SDKs' local
 * evaluation does: the same flag must give the same answer locally and
 * remotely for every distinct_id:
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
#include "util/digest.h"

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

static const char *const REASON_DESCRIPTIONS[] = {
    [KW_FLAG_REASON_CONDITION_MATCH] = "Matched condition set ",  /* + the 1-based index */
    [KW_FLAG_REASON_NO_CONDITION_MATCH] = "No matching condition set",
    [KW_FLAG_REASON_OUT_OF_ROLLOUT_BOUND] = "Out of rollout bound",
    [KW_FLAG_REASON_NO_GROUP_TYPE] = "No group type",
    [KW_FLAG_REASON_FLAG_DISABLED] = "Feature flag is disabled",
};

/* Runs for every flag of every /flags request, so the description is
 * copied, not formatted. */
void kw_flag_result_set_reason(kw_flag_result *out, kw_flag_reason reason, int index)
{
    out->reason = reason;
    out->reason_code = kw_flag_reason_code(reason);
    out->condition_index = index;
    const char *text = (unsigned)reason < sizeof REASON_DESCRIPTIONS / sizeof REASON_DESCRIPTIONS[0]
                           ? REASON_DESCRIPTIONS[reason]
                           : "";
    size_t n = strlen(text);
    memcpy(out->reason_description, text, n + 1);
    if (reason == KW_FLAG_REASON_CONDITION_MATCH) {
        char digits[12];
        int d = 0;
        unsigned v = (unsigned)index + 1;
        do digits[d++] = (char)('0' + v % 10); while ((v /= 10) && d < (int)sizeof digits);
        while (d) out->reason_description[n++] = digits[--d];
        out->reason_description[n] = '\0';
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

    unsigned char md[20];
    int rc = kw_digest(KW_DIGEST_SHA1, buf, n, md);
    if (buf != stackbuf) free(buf);
    if (rc) return 1.0;
    /* First 15 hex digits = the top 60 bits of the first 8 bytes. */
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | md[i];
    v >>= 4;
    return (double)v / FLAG_LONG_SCALE;
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

/* ---- a flag read once -------------------------------------------------------
 * Evaluation reads the same few members of a definition for every caller;
 * looking each up by name (a string hash per lookup, ~17 per flag) cost
 * more than the rest of the evaluation.  kw_flag_prepare reads them once —
 * the flag cache does it once per version of a project's flags — and every
 * evaluation, cached or one-off, runs on the prepared form, so there is one
 * algorithm. */

static int prepare_variants(const json_t *filters, kw_flag_prepared *p)
{
    const json_t *variants = json_object_get(json_object_get(filters, "multivariate"), "variants");
    if (!json_is_array(variants)) return KW_OK;
    p->has_variant_table = 1;
    size_t n = json_array_size(variants), i;
    if (!n) return KW_OK;
    if (!(p->variants = calloc(n, sizeof *p->variants))) return KW_ERR_NOMEM;
    double lo = 0.0;
    const json_t *v;
    json_array_foreach(variants, i, v) {
        const json_t *pct = json_object_get(v, "rollout_percentage");
        double hi = lo + (json_is_number(pct) ? json_number_value(pct) / 100.0 : 0.0);
        struct kw_flag_variant *out = &p->variants[p->n_variants++];
        out->key = json_string_value(json_object_get(v, "key"));
        out->lo = lo;
        out->hi = hi;
        lo = hi;
    }
    return KW_OK;
}

/* The override variant of a condition if it names one of the flag's
 * variants (the variant table's own string), else NULL. */
static const char *valid_override(const kw_flag_prepared *p, const json_t *condition)
{
    const char *want = json_string_value(json_object_get(condition, "variant"));
    if (!want || !*want) return NULL;
    for (size_t i = 0; i < p->n_variants; i++)
        if (p->variants[i].key && !strcmp(p->variants[i].key, want)) return p->variants[i].key;
    return NULL;
}

/* The condition's property filters go to the flag's table from `next`
 * on, which has room for them (counted by count_properties). */
static void prepare_condition(kw_flag_prepared *p, const json_t *condition, size_t index,
                              struct kw_flag_condition *c, size_t *next)
{
    c->index = index;
    const json_t *props = json_object_get(condition, "properties");
    c->properties = p->properties + *next;
    size_t i;
    const json_t *prop;
    if (json_is_array(props))
        json_array_foreach(props, i, prop)
            kw_flag_property_prepare(prop, &p->properties[(*next)++]);
    c->n_properties = (size_t)(p->properties + *next - c->properties);
    const json_t *pct = json_object_get(condition, "rollout_percentage");
    if (!pct || json_is_null(pct)) {
        c->rollout = KW_FLAG_ROLLOUT_ALL;
    } else if (json_is_number(pct) && json_number_value(pct) >= 100.0) {
        /* The hash is at most 1.0, so "hash > percent" never holds: no
         * hash to compute (many flags are rolled out to 100 % of those
         * their properties match). */
        c->rollout = KW_FLAG_ROLLOUT_ALL;
    } else if (!json_is_number(pct)) {
        c->rollout = KW_FLAG_ROLLOUT_MALFORMED;
    } else {
        c->rollout = KW_FLAG_ROLLOUT_PERCENT;
        c->percent = json_number_value(pct) / 100.0;
    }
    c->override = valid_override(p, condition);
}

int kw_flag_prepare(const json_t *flag, kw_flag_prepared *p)
{
    memset(p, 0, sizeof *p);
    p->def = flag;
    p->key = json_string_value(json_object_get(flag, "key"));
    if (!json_is_object(flag) || !p->key) return KW_ERR_INVALID;
    p->live = json_is_true(json_object_get(flag, "active")) &&
              !json_is_true(json_object_get(flag, "deleted"));
    const json_t *filters = json_object_get(flag, "filters");
    const json_t *agg = json_object_get(filters, "aggregation_group_type_index");
    p->aggregation = agg && !json_is_null(agg) ? agg : NULL;
    p->early_exit = json_is_true(json_object_get(filters, "early_exit"));
    if (prepare_variants(filters, p)) return KW_ERR_NOMEM;
    const json_t *payloads = json_object_get(filters, "payloads");
    for (size_t i = 0; i < p->n_variants; i++) {
        const json_t *v = p->variants[i].key ? json_object_get(payloads, p->variants[i].key) : NULL;
        p->variants[i].payload = v && !json_is_null(v) ? v : NULL;
    }
    const json_t *t = json_object_get(payloads, "true");
    p->true_payload = t && !json_is_null(t) ? t : NULL;

    const json_t *conditions = json_object_get(filters, "groups");
    size_t n = json_is_array(conditions) ? json_array_size(conditions) : 0;
    if (!n) return KW_OK;
    size_t n_props = 0, next = 0;
    for (size_t i = 0; i < n; i++)
        n_props += json_array_size(json_object_get(json_array_get(conditions, i), "properties"));
    if (!(p->conditions = calloc(n, sizeof *p->conditions)) ||
        (n_props && !(p->properties = calloc(n_props, sizeof *p->properties)))) {
        kw_flag_prepared_free(p);
        return KW_ERR_NOMEM;
    }
    /* Order: conditions with a variant override first, then the rest, each
     * group in written order (a long list: written order only). */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < n; i++) {
            const json_t *c = json_array_get(conditions, i);
            const json_t *v = json_object_get(c, "variant");
            int has_override = v && !json_is_null(v);
            if (n > FLAG_MAX_SORTED_CONDITIONS ? pass == 0 : has_override == (pass == 0))
                prepare_condition(p, c, i, &p->conditions[p->n_conditions++], &next);
        }
    return KW_OK;
}

void kw_flag_prepared_free(kw_flag_prepared *p)
{
    if (!p) return;
    free(p->variants);
    free(p->conditions);
    free(p->properties);
    p->variants = NULL;
    p->conditions = NULL;
    p->properties = NULL;
    p->n_variants = p->n_conditions = 0;
}

static const struct kw_flag_variant *matching_variant(const kw_flag_prepared *p,
                                                      const char *bucketing_id)
{
    if (!p->has_variant_table) return NULL;
    double h = kw_flag_hash(p->key, bucketing_id, "variant");
    for (size_t i = 0; i < p->n_variants; i++)
        if (p->variants[i].key && h >= p->variants[i].lo && h < p->variants[i].hi)
            return &p->variants[i];
    return NULL;
}

const char *kw_flag_matching_variant(const json_t *flag, const char *bucketing_id)
{
    kw_flag_prepared p;
    if (kw_flag_prepare(flag, &p)) return NULL;
    const struct kw_flag_variant *v = matching_variant(&p, bucketing_id);
    const char *key = v ? v->key : NULL;
    kw_flag_prepared_free(&p);
    return key;
}

/* The rollout hash is the same for every condition of one evaluation:
 * computed at most once (a negative value: not yet). */
static kw_flag_reason condition_outcome(const kw_flag_prepared *p,
                                        const struct kw_flag_condition *c,
                                        const json_t *properties, const char *bucketing_id,
                                        const kw_flag_context *ctx, double *hash)
{
    for (size_t i = 0; i < c->n_properties; i++)
        if (!kw_flag_property_match(&c->properties[i], properties, ctx))
            return KW_FLAG_REASON_NO_CONDITION_MATCH;
    switch (c->rollout) {
    case KW_FLAG_ROLLOUT_ALL: return KW_FLAG_REASON_CONDITION_MATCH;
    case KW_FLAG_ROLLOUT_MALFORMED: return KW_FLAG_REASON_NO_CONDITION_MATCH;
    case KW_FLAG_ROLLOUT_PERCENT: break;
    }
    if (*hash < 0) *hash = kw_flag_hash(p->key, bucketing_id, "");
    return *hash > c->percent ? KW_FLAG_REASON_OUT_OF_ROLLOUT_BOUND : KW_FLAG_REASON_CONDITION_MATCH;
}

static void finish_match(const kw_flag_prepared *p, const struct kw_flag_condition *c,
                         const char *bucketing_id, kw_flag_result *out)
{
    out->enabled = 1;
    out->variant = c->override;
    const json_t *payload = NULL;
    if (out->variant) {
        for (size_t i = 0; i < p->n_variants; i++)
            if (p->variants[i].key == out->variant) payload = p->variants[i].payload;
    } else {
        const struct kw_flag_variant *v = matching_variant(p, bucketing_id);
        out->variant = v ? v->key : NULL;
        payload = v ? v->payload : p->true_payload;
    }
    out->payload = (json_t *)payload;
    kw_flag_result_set_reason(out, KW_FLAG_REASON_CONDITION_MATCH, (int)c->index);
}

int kw_flag_evaluate_prepared(const kw_flag_prepared *p, const kw_flag_context *ctx,
                              kw_flag_result *out)
{
    memset(out, 0, sizeof *out);
    kw_flag_result_set_reason(out, KW_FLAG_REASON_FLAG_DISABLED, -1);
    if (!p || !p->key || !ctx || !ctx->distinct_id) return KW_ERR_INVALID;
    if (!p->live) return KW_OK;

    const char *bucketing_id = ctx->distinct_id;
    const json_t *properties = ctx->person_properties;
    char groupkey[32];
    if (p->aggregation) {
        bucketing_id = group_identity(p->aggregation, ctx, groupkey, sizeof groupkey, &properties);
        if (!bucketing_id) {
            kw_flag_result_set_reason(out, KW_FLAG_REASON_NO_GROUP_TYPE, -1);
            return KW_OK;
        }
    }

    kw_flag_reason best = KW_FLAG_REASON_NO_CONDITION_MATCH;
    int best_index = -1;
    double hash = -1.0;
    for (size_t k = 0; k < p->n_conditions; k++) {
        const struct kw_flag_condition *c = &p->conditions[k];
        kw_flag_reason r = condition_outcome(p, c, properties, bucketing_id, ctx, &hash);
        if (r == KW_FLAG_REASON_CONDITION_MATCH) {
            finish_match(p, c, bucketing_id, out);
            return KW_OK;
        }
        if (reason_score(r) >= reason_score(best)) {
            best = r;
            best_index = (int)c->index;
        }
        if (p->early_exit && r == KW_FLAG_REASON_OUT_OF_ROLLOUT_BOUND) break;
    }
    kw_flag_result_set_reason(out, best, best_index);
    return KW_OK;
}

int kw_flag_evaluate(const json_t *flag, const kw_flag_context *ctx, kw_flag_result *out)
{
    kw_flag_prepared p;
    int rc = kw_flag_prepare(flag, &p);
    if (rc) {
        memset(out, 0, sizeof *out);
        kw_flag_result_set_reason(out, KW_FLAG_REASON_FLAG_DISABLED, -1);
        return rc;
    }
    rc = kw_flag_evaluate_prepared(&p, ctx, out);
    kw_flag_prepared_free(&p);
    return rc;
}
