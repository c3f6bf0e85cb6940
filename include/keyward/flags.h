/* flags.h — feature-flag evaluation, PostHog-compatible (no I/O).
 *
 * keyward answers POST /flags?v=2 and /decide for PostHog SDKs, so a flag
 * must evaluate here exactly as PostHog's own flag service evaluates it:
 * same SHA-1 rollout buckets, same variant bands, same property operators,
 * same reason codes and descriptions.  This module is that evaluation and
 * nothing else: it takes a flag definition as jansson JSON in PostHog's shape
 * (what /flags/definitions serves) plus the caller's distinct_id and
 * properties, and returns one result.  Shaping the HTTP response, loading
 * flags from the store and caching are the HTTP layer's job.
 *
 * The semantics, and what is not supported (cohorts, flag dependencies,
 * experience continuity, date operators, per-condition group aggregation),
 * are written down in docs/flags.md. */
#ifndef KEYWARD_FLAGS_H
#define KEYWARD_FLAGS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define KW_FLAG_DESCRIPTION_MAX 96  /* incl. NUL */

/* Why a flag evaluated as it did.  The codes and descriptions are PostHog's
 * (its flags service, /flags?v=2 "reason"). */
typedef enum kw_flag_reason {
    KW_FLAG_REASON_CONDITION_MATCH = 0,   /* "condition_match": "Matched condition set N" */
    KW_FLAG_REASON_NO_CONDITION_MATCH,    /* "no_condition_match": "No matching condition set" */
    KW_FLAG_REASON_OUT_OF_ROLLOUT_BOUND,  /* "out_of_rollout_bound": "Out of rollout bound" */
    KW_FLAG_REASON_NO_GROUP_TYPE,         /* "no_group_type": "No group type" */
    KW_FLAG_REASON_FLAG_DISABLED          /* "flag_disabled": "Feature flag is disabled" */
} kw_flag_reason;

typedef struct kw_flag_result {
    int enabled;                          /* 1 when the flag is on for this caller */
    const char *variant;                  /* borrowed from the flag; NULL = none */
    kw_flag_reason reason;
    const char *reason_code;              /* static string, e.g. "condition_match" */
    int condition_index;                  /* 0-based; -1 = none (JSON null) */
    char reason_description[KW_FLAG_DESCRIPTION_MAX];
    json_t *payload;                      /* borrowed from the flag; NULL when none
                                             or when the flag is not enabled */
} kw_flag_result;

/* Flag filters with the regex / not_regex operators carry patterns a
 * project member wrote and an anonymous caller runs (POST /flags), so they
 * are bounded: at most KW_FLAG_REGEX_MAX_PER_FLAG such filters per flag,
 * each pattern at most KW_FLAG_REGEX_MAX_BYTES (refused when a flag is
 * written); each match at most KW_FLAG_REGEX_MATCH_LIMIT backtracking
 * steps; and all matches of one request together at most
 * KW_FLAG_REGEX_BUDGET_MS of time.  A filter whose match hits a bound, or
 * is not run because the request's budget is spent, does not match
 * (neither regex nor not_regex). */
#define KW_FLAG_REGEX_MAX_PER_FLAG 20
#define KW_FLAG_REGEX_MAX_BYTES 1024
#define KW_FLAG_REGEX_MATCH_LIMIT 100000u
#define KW_FLAG_REGEX_BUDGET_MS 50

/* Compiled (and JIT-compiled) patterns of a list of flags, made once per
 * version of the flags (lib/flags/flagcache.c keeps it with the cached set).
 * Read-only once built: any number of threads may match with it. */
typedef struct kw_flag_regexes kw_flag_regexes;
/* flags: an array of flag definitions; they must outlive the table (it is
 * keyed by their filter nodes). */
int kw_flag_regexes_build(const json_t *flags, kw_flag_regexes **out);
void kw_flag_regexes_free(kw_flag_regexes *r);
/* Patterns compiled so far by this process, for tests and diagnostics. */
uint64_t kw_flag_regex_compiles(void);

/* One request's allowance of regex matching time; start it with
 * kw_flag_budget_init and share it by every evaluation of the request. */
typedef struct kw_flag_budget {
    int64_t regex_ns_left;
    unsigned skipped;  /* regex filters not run because the budget was spent */
} kw_flag_budget;
void kw_flag_budget_init(kw_flag_budget *b);

/* Whether a property filter uses regex / not_regex, and its pattern's size
 * in bytes (as matched: a non-string value is matched as printed). */
int kw_flag_filter_is_regex(const json_t *filter);
size_t kw_flag_regex_pattern_size(const json_t *filter);

/* Evaluation input besides the flag.  Every JSON pointer may be NULL.
 *   person_properties   {"email": "...", ...}
 *   groups              {"company": "acme-inc", ...}   group type name -> key
 *   group_properties    {"company": {"plan": "pro"}, ...}
 *   group_type_mapping  {"0": "company", ...}          index -> type name
 * The last three are only read for flags with aggregation_group_type_index. */
typedef struct kw_flag_context {
    const char *distinct_id;
    const json_t *person_properties;
    const json_t *groups;
    const json_t *group_properties;
    const json_t *group_type_mapping;
    /* The flags' compiled patterns (NULL: patterns are compiled per match,
     * without JIT) and the request's budget (NULL: each match is bounded
     * by its step limit only). */
    const kw_flag_regexes *regexes;
    kw_flag_budget *budget;
} kw_flag_context;

/* Evaluate one flag.  Returns KW_OK and fills *out, or KW_ERR_INVALID when
 * the flag is not an object with a string "key" or distinct_id is NULL
 * (*out then holds a disabled result).  Malformed parts inside a valid flag
 * (a bad regex, a non-numeric rollout) never fail the call: they make the
 * affected condition not match, as PostHog does. */
int kw_flag_evaluate(const json_t *flag, const kw_flag_context *ctx, kw_flag_result *out);

/* A flag definition read once into what evaluation reads, so evaluating
 * it for many callers looks nothing up by name.  Points into the
 * definition, which must outlive it and not change.  The flag cache keeps
 * one per flag of a cached set. */
enum kw_flag_rollout { KW_FLAG_ROLLOUT_ALL, KW_FLAG_ROLLOUT_PERCENT, KW_FLAG_ROLLOUT_MALFORMED };
/* A property filter's operator, read once from its name. */
enum kw_flag_op {
    KW_FLAG_OP_NEVER,           /* cohort, flag dependency, no key, unknown operator */
    KW_FLAG_OP_EXACT, KW_FLAG_OP_IS_NOT, KW_FLAG_OP_IS_SET, KW_FLAG_OP_IS_NOT_SET,
    KW_FLAG_OP_AFFIX,           /* (not_)icontains, (not_)starts_with, (not_)ends_with */
    KW_FLAG_OP_REGEX, KW_FLAG_OP_NOT_REGEX,
    KW_FLAG_OP_ORDER            /* gt, gte, lt, lte */
};
/* A property filter read once: what kw_flag_match_property_in looks up by
 * name on every call. */
struct kw_flag_property {
    enum kw_flag_op op;
    const char *op_name;        /* the filter's operator ("exact" when absent) */
    const char *key;
    const json_t *want;         /* the filter's "value" (json null when absent) */
    int want_is_number;         /* for ORDER: want parsed as a number once */
    double want_number;
};
struct kw_flag_condition {
    size_t index;               /* position in filters.groups (condition_index) */
    struct kw_flag_property *properties;  /* its property filters (into the flag's table) */
    size_t n_properties;
    enum kw_flag_rollout rollout;
    double percent;             /* rollout_percentage / 100 */
    const char *override;       /* a valid variant override (the variant table's string) */
};
struct kw_flag_variant {
    const char *key;            /* NULL: a variant without a key (never chosen) */
    double lo, hi;              /* its band of the variant hash */
    const json_t *payload;      /* payloads[key], NULL when none */
};
typedef struct kw_flag_prepared {
    const json_t *def;
    const char *key;
    int live;                   /* active and not deleted */
    const json_t *aggregation;  /* aggregation_group_type_index, NULL for person flags */
    int early_exit;
    size_t n_conditions;        /* in evaluation order: overrides first */
    struct kw_flag_condition *conditions;
    int has_variant_table;
    size_t n_variants;
    struct kw_flag_variant *variants;
    const json_t *true_payload; /* payloads["true"], NULL when none */
    struct kw_flag_property *properties;  /* every condition's filters, in one table */
} kw_flag_prepared;

/* KW_ERR_INVALID when the flag is not an object with a string "key",
 * KW_ERR_NOMEM; free with kw_flag_prepared_free (also after a failure). */
int kw_flag_prepare(const json_t *flag, kw_flag_prepared *out);
void kw_flag_prepared_free(kw_flag_prepared *p);
/* kw_flag_evaluate on a prepared flag: the same answers. */
int kw_flag_evaluate_prepared(const kw_flag_prepared *p, const kw_flag_context *ctx,
                              kw_flag_result *out);

/* PostHog's bucketing hash: the first 15 hex digits of
 * sha1("<key>.<id><salt>") as an integer, divided by 0xFFFFFFFFFFFFFFF.
 * Uniform in [0, 1].  salt is "" for rollout and "variant" for variants. */
double kw_flag_hash(const char *key, const char *bucketing_id, const char *salt);

/* The variant whose cumulative band [min, max) holds
 * kw_flag_hash(key, id, "variant"), or NULL when the flag has no variants or
 * the bands do not reach the hash.  The string is borrowed from the flag. */
const char *kw_flag_matching_variant(const json_t *flag, const char *bucketing_id);

/* One property filter against a properties object (NULL = none).  Returns
 * 1 match, 0 no match.  Cohort and flag-dependency filters never match here. */
int kw_flag_match_property(const json_t *filter, const json_t *properties);
/* The same with the evaluation's compiled patterns and budget (ctx may be NULL). */
int kw_flag_match_property_in(const json_t *filter, const json_t *properties,
                              const kw_flag_context *ctx);
/* The same in two steps: read a filter once, then match it as often as
 * needed.  The prepared filter points into `filter`. */
void kw_flag_property_prepare(const json_t *filter, struct kw_flag_property *out);
int kw_flag_property_match(const struct kw_flag_property *f, const json_t *properties,
                           const kw_flag_context *ctx);

const char *kw_flag_reason_code(kw_flag_reason reason);
/* Sets out's reason, its code and description ("Matched condition set
 * N" for a match at 0-based index N-1); index -1: none. */
void kw_flag_result_set_reason(kw_flag_result *out, kw_flag_reason reason, int index);

#endif
