/* test_flag_eval.c — feature-flag evaluation against PostHog's own answers.
 *
 * The strongest test here replays tests/fixtures/flags/cases.json: flags,
 * callers and the results posthog-python's feature_flags.py computes for
 * them (gen_fixture.py, run once and committed).  Around it, tests pin the
 * hash to values printed by Python, check rollout and variant distributions
 * over 1000 ids against exact counts from a Python reimplementation, and
 * exercise the edges the fixture cannot: bad input, pathological regexes
 * and the bounds on member-written ones, borrowed payloads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keyward/flags.h"
#include "keyward/keyward.h"

static json_t *must_parse(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j) fail_msg("bad test JSON: %s (%s)", err.text, text);
    return j;
}

static void test_hash_known_values(void **state)
{
    (void)state;
    /* python3 -c 'import hashlib; h=lambda k,d,s="": int(hashlib.sha1(f"{k}.{d}{s}".encode()).hexdigest()[:15],16)/float(0xFFFFFFFFFFFFFFF); print(repr(h("some-flag","some-distinct-id")))' */
    assert_true(kw_flag_hash("some-flag", "some-distinct-id", "") == 0.35581703826463573);
    /* ... print(repr(h("beta-feature","user_1","variant"))) */
    assert_true(kw_flag_hash("beta-feature", "user_1", "variant") == 0.4050468919707169);
    /* ... print(repr(h("x",""))) */
    assert_true(kw_flag_hash("x", "", "") == 0.5675603798104006);
    assert_true(kw_flag_hash("x", NULL, NULL) == 0.5675603798104006);
}

static void test_hash_long_input(void **state)
{
    (void)state;
    /* Longer than the stack buffer: exercises the heap path.
     * python3 -c 'import hashlib; print(repr(int(hashlib.sha1(("k."+"a"*1000).encode()).hexdigest()[:15],16)/float(0xFFFFFFFFFFFFFFF)))' */
    char id[1001];
    memset(id, 'a', 1000);
    id[1000] = '\0';
    double h = kw_flag_hash("k", id, "");
    assert_true(h >= 0.0 && h <= 1.0);
    assert_true(h == kw_flag_hash("k", id, ""));
}

static int count_enabled(const char *flag_json, int n)
{
    json_t *flag = must_parse(flag_json);
    int on = 0;
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "id-%d", i);
        kw_flag_context ctx = {.distinct_id = id};
        kw_flag_result r;
        assert_int_equal(kw_flag_evaluate(flag, &ctx, &r), KW_OK);
        on += r.enabled;
        assert_string_equal(r.reason_code, r.enabled ? "condition_match" : "out_of_rollout_bound");
    }
    json_decref(flag);
    return on;
}

static void test_rollout_over_1000_ids(void **state)
{
    (void)state;
    /* Exact counts from: sum(h("rollout-flag", f"id-{i}") <= pct/100 for i in range(1000)) */
    assert_int_equal(count_enabled("{\"key\":\"rollout-flag\",\"active\":true,\"filters\":"
                                   "{\"groups\":[{\"properties\":[],\"rollout_percentage\":0}]}}", 1000), 0);
    assert_int_equal(count_enabled("{\"key\":\"rollout-flag\",\"active\":true,\"filters\":"
                                   "{\"groups\":[{\"properties\":[],\"rollout_percentage\":30}]}}", 1000), 301);
    assert_int_equal(count_enabled("{\"key\":\"rollout-flag\",\"active\":true,\"filters\":"
                                   "{\"groups\":[{\"properties\":[],\"rollout_percentage\":100}]}}", 1000), 1000);
}

static void test_multivariate_distribution(void **state)
{
    (void)state;
    json_t *flag = must_parse(
        "{\"key\":\"mv-flag\",\"active\":true,\"filters\":{\"groups\":[{\"properties\":[],"
        "\"rollout_percentage\":100}],\"multivariate\":{\"variants\":["
        "{\"key\":\"control\",\"rollout_percentage\":34},"
        "{\"key\":\"test\",\"rollout_percentage\":33},"
        "{\"key\":\"test2\",\"rollout_percentage\":33}]}}}");
    int control = 0, test = 0, test2 = 0;
    for (int i = 0; i < 1000; i++) {
        char id[32];
        snprintf(id, sizeof id, "id-%d", i);
        kw_flag_context ctx = {.distinct_id = id};
        kw_flag_result r;
        assert_int_equal(kw_flag_evaluate(flag, &ctx, &r), KW_OK);
        assert_true(r.enabled);
        assert_non_null(r.variant);
        control += !strcmp(r.variant, "control");
        test += !strcmp(r.variant, "test");
        test2 += !strcmp(r.variant, "test2");
    }
    /* Python reimplementation of variant_lookup_table over f"id-{i}": */
    assert_int_equal(control, 346);
    assert_int_equal(test, 317);
    assert_int_equal(test2, 337);
    json_decref(flag);
}

static int match(const char *filter_json, const char *props_json)
{
    json_t *f = must_parse(filter_json);
    json_t *p = props_json ? must_parse(props_json) : NULL;
    int m = kw_flag_match_property(f, p);
    json_decref(f);
    json_decref(p);
    return m;
}

static void test_operators_edges(void **state)
{
    (void)state;
    /* Missing operator means exact. */
    assert_true(match("{\"key\":\"a\",\"value\":\"X\"}", "{\"a\":\"x\"}"));
    /* No properties at all: only is_not_set matches. */
    assert_false(match("{\"key\":\"a\",\"value\":\"x\",\"operator\":\"is_not\"}", NULL));
    assert_true(match("{\"key\":\"a\",\"operator\":\"is_not_set\"}", NULL));
    /* Invalid patterns: neither regex nor not_regex matches, nothing crashes. */
    assert_false(match("{\"key\":\"a\",\"value\":\"(\",\"operator\":\"regex\"}", "{\"a\":\"(\"}"));
    assert_false(match("{\"key\":\"a\",\"value\":\"*\",\"operator\":\"not_regex\"}", "{\"a\":\"b\"}"));
    assert_false(match("{\"key\":\"a\",\"value\":null,\"operator\":\"regex\"}", "{\"a\":\"b\"}"));
    /* Catastrophic backtracking hits the match limit: no match, no hang. */
    char props[200];
    snprintf(props, sizeof props, "{\"a\":\"%.*s!\"}", 60,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert_false(match("{\"key\":\"a\",\"value\":\"^(a+)+$\",\"operator\":\"regex\"}", props));
    /* Numeric vs string ordering. */
    assert_true(match("{\"key\":\"a\",\"value\":\"9\",\"operator\":\"lt\"}", "{\"a\":\" 10 \"}") == 0);
    /* Hex is not a number to Python's float(): "1" > "0x10" as strings. */
    assert_true(match("{\"key\":\"a\",\"value\":\"0x10\",\"operator\":\"gt\"}", "{\"a\":\"1\"}"));
    assert_true(match("{\"key\":\"a\",\"value\":2,\"operator\":\"gte\"}", "{\"a\":2.0}"));
    /* Unsupported: dates, semver, cohorts, flag dependencies, unknown ops. */
    assert_false(match("{\"key\":\"a\",\"value\":\"2020-01-01\",\"operator\":\"is_date_after\"}",
                       "{\"a\":\"2024-01-01\"}"));
    assert_false(match("{\"key\":\"a\",\"value\":\"1.2.0\",\"operator\":\"semver_gt\"}", "{\"a\":\"1.3.0\"}"));
    assert_false(match("{\"key\":\"id\",\"value\":3,\"type\":\"cohort\"}", "{\"id\":3}"));
    assert_false(match("{\"key\":\"a\",\"value\":1,\"operator\":\"bogus\"}", "{\"a\":1}"));
    /* Malformed filters. */
    assert_false(match("[]", "{\"a\":1}"));
    assert_false(match("{\"value\":1}", "{\"a\":1}"));
    /* Arrays as property values do not crash. */
    assert_false(match("{\"key\":\"a\",\"value\":\"x\"}", "{\"a\":[1,2]}"));
    assert_true(match("{\"key\":\"a\",\"value\":\"2\",\"operator\":\"icontains\"}", "{\"a\":[1,2]}"));
}

/* icontains on large, self-overlapping input (a megabyte property against a
 * long member-written value): the right answer either way, and in linear
 * time (the naive scan needed about a billion comparisons here). */
static void test_icontains_large_overlapping(void **state)
{
    (void)state;
    size_t hlen = 1 << 20, nlen = 1000;
    char *hay = malloc(hlen + 1), *needle = malloc(nlen + 2);
    assert_non_null(hay);
    assert_non_null(needle);
    memset(hay, 'a', hlen);
    hay[hlen] = '\0';
    memset(needle, 'A', nlen);
    needle[nlen] = 'b';
    needle[nlen + 1] = '\0';
    json_t *props = json_pack("{s:s}", "p", hay);
    json_t *f = json_pack("{s:s, s:s, s:s}", "key", "p", "value", needle, "operator", "icontains");
    assert_false(kw_flag_match_property(f, props));
    json_object_set_new(f, "operator", json_string("not_icontains"));
    assert_true(kw_flag_match_property(f, props));
    hay[hlen - 1] = 'B';  /* now it is there, at the very end, in another case */
    json_object_set_new(props, "p", json_string(hay));
    json_object_set_new(f, "operator", json_string("icontains"));
    assert_true(kw_flag_match_property(f, props));
    json_decref(f);
    json_decref(props);
    free(hay);
    free(needle);
}

/* Flags whose every condition is one regex filter on "v" with `pattern`. */
static json_t *regex_flags(size_t nflags, size_t per_flag, const char *pattern)
{
    json_t *flags = json_array();
    for (size_t i = 0; i < nflags; i++) {
        json_t *groups = json_array();
        for (size_t j = 0; j < per_flag; j++)
            json_array_append_new(groups, json_pack("{s:[{s:s, s:s, s:s}], s:i}", "properties",
                                                    "key", "v", "operator", "regex", "value",
                                                    pattern, "rollout_percentage", 100));
        char key[32];
        snprintf(key, sizeof key, "f%02zu", i);
        json_array_append_new(flags, json_pack("{s:s, s:b, s:{s:o}}", "key", key, "active", 1,
                                               "filters", "groups", groups));
    }
    return flags;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* A member's catastrophic pattern on a caller's long value: each match
 * stops at its step limit, and once the request's time budget is spent
 * the remaining regex filters are not run (no match).  400 such matches
 * took ~9 s before the bounds; the patterns are compiled once, when the
 * table is built, and never during evaluation. */
static void test_regex_budget(void **state)
{
    (void)state;
    json_t *flags = regex_flags(20, KW_FLAG_REGEX_MAX_PER_FLAG, "(a+)+$");
    json_array_append_new(flags, must_parse("{\"key\":\"plain\",\"active\":true,\"filters\":"
                                            "{\"groups\":[{\"properties\":[{\"key\":\"email\","
                                            "\"operator\":\"regex\",\"value\":\"@acme\\\\.com$\"}]}]}}"));
    uint64_t compiles = kw_flag_regex_compiles();
    kw_flag_regexes *rx;
    assert_int_equal(kw_flag_regexes_build(flags, &rx), KW_OK);
    assert_int_equal(kw_flag_regex_compiles() - compiles, 20 * KW_FLAG_REGEX_MAX_PER_FLAG + 1);
    compiles = kw_flag_regex_compiles();

    static char value[30002];
    memset(value, 'a', 30000);
    value[30000] = '!';
    json_t *props = json_pack("{s:s, s:s}", "v", value, "email", "ann@acme.com");
    kw_flag_budget budget;
    kw_flag_budget_init(&budget);
    kw_flag_context ctx = {.distinct_id = "u", .person_properties = props, .regexes = rx,
                           .budget = &budget};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    size_t i;
    json_t *flag;
    json_array_foreach(flags, i, flag) {
        kw_flag_result r;
        assert_int_equal(kw_flag_evaluate(flag, &ctx, &r), KW_OK);
        if (i < 20) assert_false(r.enabled);
    }
    double took = seconds_since(&t0);
    assert_true(took < 1.0);  /* the budget is 50 ms, plus one match */
    assert_true(budget.skipped > 0);
    print_message("400 hostile matches: %.3f s, %u skipped\n", took, budget.skipped);

    /* a fresh budget: ordinary patterns match; still nothing compiled */
    json_t *plain_props = json_pack("{s:s}", "email", "ann@acme.com");
    kw_flag_budget_init(&budget);
    ctx.person_properties = plain_props;
    kw_flag_result r;
    assert_int_equal(kw_flag_evaluate(json_array_get(flags, 20), &ctx, &r), KW_OK);
    assert_true(r.enabled);
    assert_int_equal(kw_flag_regex_compiles(), compiles);

    /* without a table (no cached set) every match is still step-bounded */
    ctx.regexes = NULL;
    ctx.person_properties = props;
    kw_flag_budget_init(&budget);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(kw_flag_evaluate(json_array_get(flags, 0), &ctx, &r), KW_OK);
    assert_false(r.enabled);
    assert_true(seconds_since(&t0) < 1.0);
    kw_flag_regexes_free(rx);
    json_decref(plain_props);
    json_decref(props);
    json_decref(flags);
}

/* A flag stored before the limits were enforced: only its first
 * KW_FLAG_REGEX_MAX_PER_FLAG regex filters are compiled; the rest never
 * match, and patterns over KW_FLAG_REGEX_MAX_BYTES are not compiled. */
static void test_regex_limits_at_evaluation(void **state)
{
    (void)state;
    json_t *flags = regex_flags(1, KW_FLAG_REGEX_MAX_PER_FLAG + 1, "^zzz");
    json_t *last = json_array_get(json_object_get(json_object_get(json_array_get(flags, 0),
                                                                  "filters"), "groups"),
                                  KW_FLAG_REGEX_MAX_PER_FLAG);
    json_object_set_new(json_array_get(json_object_get(last, "properties"), 0), "value",
                        json_string("a"));
    static char long_pattern[KW_FLAG_REGEX_MAX_BYTES + 2];
    memset(long_pattern, 'a', KW_FLAG_REGEX_MAX_BYTES + 1);
    json_t *more = regex_flags(1, 1, long_pattern);
    json_array_extend(flags, more);
    json_decref(more);
    kw_flag_regexes *rx;
    assert_int_equal(kw_flag_regexes_build(flags, &rx), KW_OK);
    json_t *props = json_pack("{s:s}", "v", long_pattern);
    kw_flag_budget budget;
    kw_flag_budget_init(&budget);
    kw_flag_context ctx = {.distinct_id = "u", .person_properties = props, .regexes = rx,
                           .budget = &budget};
    kw_flag_result r;
    assert_int_equal(kw_flag_evaluate(json_array_get(flags, 0), &ctx, &r), KW_OK);
    assert_false(r.enabled); /* "a" would match, but it is the 21st */
    assert_int_equal(kw_flag_evaluate(json_array_get(flags, 1), &ctx, &r), KW_OK);
    assert_false(r.enabled); /* the long pattern would match itself */
    ctx.regexes = NULL;      /* nor is it compiled on the fly */
    assert_int_equal(kw_flag_evaluate(json_array_get(flags, 1), &ctx, &r), KW_OK);
    assert_false(r.enabled);
    kw_flag_regexes_free(rx);
    json_decref(props);
    json_decref(flags);
}

static void test_invalid_input(void **state)
{
    (void)state;
    kw_flag_result r;
    kw_flag_context ctx = {.distinct_id = "u"};
    assert_int_equal(kw_flag_evaluate(NULL, &ctx, &r), KW_ERR_INVALID);
    assert_false(r.enabled);
    json_t *nokey = must_parse("{\"active\":true}");
    assert_int_equal(kw_flag_evaluate(nokey, &ctx, &r), KW_ERR_INVALID);
    json_t *flag = must_parse("{\"key\":\"k\",\"active\":true,\"filters\":{\"groups\":[{}]}}");
    kw_flag_context noid = {0};
    assert_int_equal(kw_flag_evaluate(flag, &noid, &r), KW_ERR_INVALID);
    assert_int_equal(kw_flag_evaluate(flag, NULL, &r), KW_ERR_INVALID);
    /* An empty condition matches everyone; filters null is "no conditions". */
    assert_int_equal(kw_flag_evaluate(flag, &ctx, &r), KW_OK);
    assert_true(r.enabled);
    json_t *nofilters = must_parse("{\"key\":\"k\",\"active\":true,\"filters\":null}");
    assert_int_equal(kw_flag_evaluate(nofilters, &ctx, &r), KW_OK);
    assert_false(r.enabled);
    assert_string_equal(r.reason_code, "no_condition_match");
    assert_int_equal(r.condition_index, -1);
    /* A non-numeric rollout makes its condition not match. */
    json_t *badpct = must_parse("{\"key\":\"k\",\"active\":true,\"filters\":{\"groups\":"
                                "[{\"rollout_percentage\":\"50\"}]}}");
    assert_int_equal(kw_flag_evaluate(badpct, &ctx, &r), KW_OK);
    assert_false(r.enabled);
    assert_string_equal(r.reason_code, "no_condition_match");
    assert_string_equal(kw_flag_reason_code((kw_flag_reason)99), "unknown");
    json_decref(nokey);
    json_decref(flag);
    json_decref(nofilters);
    json_decref(badpct);
}

static void test_payload_is_borrowed(void **state)
{
    (void)state;
    json_t *flag = must_parse(
        "{\"key\":\"p\",\"active\":true,\"filters\":{\"groups\":[{\"rollout_percentage\":100,"
        "\"variant\":\"b\"}],\"multivariate\":{\"variants\":[{\"key\":\"a\",\"rollout_percentage\":50},"
        "{\"key\":\"b\",\"rollout_percentage\":50}]},\"payloads\":{\"b\":{\"x\":1},\"true\":\"t\"}}}");
    kw_flag_context ctx = {.distinct_id = "u"};
    kw_flag_result r;
    assert_int_equal(kw_flag_evaluate(flag, &ctx, &r), KW_OK);
    assert_true(r.enabled);
    assert_string_equal(r.variant, "b");
    json_t *want = json_object_get(json_object_get(json_object_get(flag, "filters"), "payloads"), "b");
    assert_ptr_equal(r.payload, want);
    /* The variant string is borrowed from the flag too. */
    assert_ptr_equal(r.variant, json_string_value(json_object_get(
        json_array_get(json_object_get(json_object_get(json_object_get(flag, "filters"),
                                                       "multivariate"), "variants"), 1), "key")));
    json_decref(flag);
}

static char *fixture_path(char *buf, size_t n)
{
    snprintf(buf, n, "%s/flags/cases.json", KW_TEST_FIXTURES);
    return buf;
}

static json_t *load_fixture(void)
{
    char path[1024];
    json_error_t err;
    json_t *doc = json_load_file(fixture_path(path, sizeof path), 0, &err);
    if (!doc) fail_msg("%s: %s (line %d)", path, err.text, err.line);
    return doc;
}

static void test_fixture_hashes(void **state)
{
    (void)state;
    json_t *doc = load_fixture();
    json_t *hashes = json_object_get(doc, "hashes");
    assert_true(json_array_size(hashes) > 0);
    size_t i;
    json_t *h;
    json_array_foreach(hashes, i, h) {
        double got = kw_flag_hash(json_string_value(json_object_get(h, "key")),
                                  json_string_value(json_object_get(h, "distinct_id")),
                                  json_string_value(json_object_get(h, "salt")));
        double want = json_real_value(json_object_get(h, "hash"));
        if (got != want) fail_msg("hash %zu: got %.17g want %.17g", i, got, want);
    }
    json_decref(doc);
}

/* Every case posthog-python decided, replayed through kw_flag_evaluate. */
static void test_fixture_cases(void **state)
{
    (void)state;
    json_t *doc = load_fixture();
    json_t *cases = json_object_get(doc, "cases");
    assert_true(json_array_size(cases) >= 50);
    size_t i;
    json_t *c;
    int failures = 0;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *exp = json_object_get(c, "expect");
        kw_flag_context ctx = {
            .distinct_id = json_string_value(json_object_get(c, "distinct_id")),
            .person_properties = json_object_get(c, "person_properties"),
            .groups = json_object_get(c, "groups"),
            .group_properties = json_object_get(c, "group_properties"),
            .group_type_mapping = json_object_get(c, "group_type_mapping"),
        };
        kw_flag_result r;
        int rc = kw_flag_evaluate(json_object_get(c, "flag"), &ctx, &r);
        const char *want_variant = json_string_value(json_object_get(exp, "variant"));
        json_t *want_index = json_object_get(exp, "condition_index");
        int want_idx = json_is_integer(want_index) ? (int)json_integer_value(want_index) : -1;
        json_t *want_payload = json_object_get(exp, "payload");
        int payload_ok = json_is_null(want_payload) ? r.payload == NULL
                                                    : json_equal(r.payload, want_payload);
        int ok = rc == KW_OK &&
                 r.enabled == json_is_true(json_object_get(exp, "enabled")) &&
                 (want_variant ? r.variant && !strcmp(r.variant, want_variant) : r.variant == NULL) &&
                 !strcmp(r.reason_code, json_string_value(json_object_get(exp, "reason"))) &&
                 r.condition_index == want_idx &&
                 !strcmp(r.reason_description, json_string_value(json_object_get(exp, "description"))) &&
                 payload_ok;
        if (!ok) {
            failures++;
            print_error("case %zu \"%s\": got enabled=%d variant=%s reason=%s index=%d \"%s\" payload=%s\n",
                        i, name, r.enabled, r.variant ? r.variant : "(null)", r.reason_code,
                        r.condition_index, r.reason_description, payload_ok ? "ok" : "WRONG");
        }
    }
    json_decref(doc);
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_known_values),
        cmocka_unit_test(test_hash_long_input),
        cmocka_unit_test(test_rollout_over_1000_ids),
        cmocka_unit_test(test_multivariate_distribution),
        cmocka_unit_test(test_operators_edges),
        cmocka_unit_test(test_icontains_large_overlapping),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_regex_budget),
        cmocka_unit_test(test_regex_limits_at_evaluation),
        cmocka_unit_test(test_payload_is_borrowed),
        cmocka_unit_test(test_fixture_hashes),
        cmocka_unit_test(test_fixture_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
