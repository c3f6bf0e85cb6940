/* test_flags_render.c — the /flags?v=2 answer assembled from pre-rendered
 * pieces equals, flag for flag, the detail jansson builds from the same
 * evaluation: over flags of every shape (rollouts, property targeting,
 * multivariate with payloads, condition overrides, boolean payloads,
 * inactive flags, names and variants needing escapes, a payload stored as
 * raw JSON) and many callers.  Also: the pieces are rendered once per
 * version of the flags, and the answer is valid JSON with the request id
 * and time given.  Runs on a temp SQLite file. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/flags_render.h"
#include "keyward/flagcache.h"
#include "keyward/flags.h"
#include "keyward/keyward.h"
#include "keyward/store.h"

struct fixture {
    char path[256];
    kw_store *store;
    kw_flagcache *cache;
    int64_t project;
};

static const char *const FILTERS[] = {
    "{\"groups\":[{\"properties\":[],\"rollout_percentage\":37}]}",
    "{\"groups\":[{\"properties\":[{\"key\":\"plan\",\"value\":[\"enterprise\"],"
    "\"operator\":\"exact\",\"type\":\"person\"}],\"rollout_percentage\":80}]}",
    "{\"groups\":[{\"properties\":[],\"rollout_percentage\":100}],"
    "\"multivariate\":{\"variants\":[{\"key\":\"control\",\"rollout_percentage\":50},"
    "{\"key\":\"t\\\"est\\u00e9\",\"rollout_percentage\":50}]},"
    "\"payloads\":{\"control\":\"{\\\"color\\\":\\\"blue\\\"}\",\"t\\\"est\\u00e9\":{\"raw\":[1,2]}}}",
    "{\"groups\":[{\"properties\":[{\"key\":\"email\",\"value\":\"@acme.io\","
    "\"operator\":\"icontains\",\"type\":\"person\"}],\"rollout_percentage\":100,"
    "\"variant\":\"internal\"},{\"properties\":[],\"rollout_percentage\":40}],"
    "\"multivariate\":{\"variants\":[{\"key\":\"internal\",\"rollout_percentage\":0},"
    "{\"key\":\"public\",\"rollout_percentage\":100}]}}",
    "{\"groups\":[{\"properties\":[],\"rollout_percentage\":60}],"
    "\"payloads\":{\"true\":\"{\\\"limit\\\":10}\"}}",
    "{\"groups\":[]}",
};

static void add_flag(kw_store *s, int64_t project, int i, int active)
{
    kw_flag f;
    memset(&f, 0, sizeof f);
    f.project_id = project;
    snprintf(f.key, sizeof f.key, "flag-%02d%s", i, i == 2 ? "-\"quoted\\" : "");
    if (i % 3) snprintf(f.name, sizeof f.name, "Flag \"%d\" \xc3\xa9\n", i);  /* else "" */
    f.filters = strdup(FILTERS[i % (sizeof FILTERS / sizeof FILTERS[0])]);
    f.active = active;
    int rc = kw_store_flag_insert(s, &f);
    kw_flag_clear(&f);
    assert_int_equal(rc, KW_OK);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/kw-test-flags-render-%ld.db", (long)getpid());
    if (kw_store_open(f->path, &f->store)) return -1;
    kw_org o;
    memset(&o, 0, sizeof o);
    snprintf(o.name, sizeof o.name, "Org");
    if (kw_store_org_create(f->store, &o)) return -1;
    kw_project p;
    memset(&p, 0, sizeof p);
    snprintf(p.org_id, sizeof p.org_id, "%s", o.id);
    snprintf(p.name, sizeof p.name, "Project");
    snprintf(p.api_token, sizeof p.api_token, "phc_render");
    if (kw_store_project_create(f->store, &p)) return -1;
    f->project = p.id;
    for (int i = 0; i < 14; i++) add_flag(f->store, f->project, i, i != 7);
    if (kw_flagcache_new(f->store, 64, 0, &f->cache)) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    kw_flagcache_free(f->cache);
    kw_store_close(f->store);
    unlink(f->path);
    char side[300];
    snprintf(side, sizeof side, "%s-wal", f->path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", f->path);
    unlink(side);
    free(f);
    return 0;
}

/* The reference: each flag's detail built by jansson, keyed by flag. */
static json_t *reference(const kw_flagset *set, const kw_flag_context *ctx)
{
    json_t *flags = json_object();
    size_t i;
    const json_t *def;
    json_array_foreach(set->flags, i, def) {
        kw_flag_result r;
        const char *key = json_string_value(json_object_get(def, "key"));
        if (!key || kw_flag_evaluate(def, ctx, &r) != KW_OK) continue;
        json_object_set_new(flags, key, kw_flags_detail_v2(def, key, &r));
    }
    return flags;
}

static void test_pieces_equal_reference(void **state)
{
    struct fixture *f = *state;
    const kw_flagset *set;
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &set), KW_OK);
    json_t *people[] = {
        json_pack("{s:s, s:s}", "email", "jane@acme.io", "plan", "enterprise"),
        json_pack("{s:s}", "plan", "free"),
        json_object(),
    };
    int enabled = 0, variants = 0, payloads = 0;
    for (int n = 0; n < 300; n++) {
        char id[32];
        snprintf(id, sizeof id, "user-%d", n);
        kw_flag_context ctx;
        memset(&ctx, 0, sizeof ctx);
        ctx.distinct_id = id;
        ctx.person_properties = people[n % 3];
        ctx.regexes = set->regexes;
        kw_flag_budget budget;
        kw_flag_budget_init(&budget);
        ctx.budget = &budget;
        char *text;
        size_t len;
        assert_int_equal(kw_flags_render_v2(set, &ctx, "0b6e4c1e-2a4f-4d7e-9c1a-3f5b6d7e8f90",
                                            1700000000123LL, &text, &len), KW_OK);
        assert_int_equal(strlen(text), len);
        json_error_t err;
        json_t *got = json_loadb(text, len, 0, &err);
        if (!got) fail_msg("invalid JSON (%s): %s", err.text, text);
        json_t *want = reference(set, &ctx);
        if (!json_equal(json_object_get(got, "flags"), want)) {
            char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
            fail_msg("differs for %s:\n got %s\nwant %s", id, text, w);
        }
        assert_true(json_is_false(json_object_get(got, "errorsWhileComputingFlags")));
        assert_string_equal(json_string_value(json_object_get(got, "requestId")),
                            "0b6e4c1e-2a4f-4d7e-9c1a-3f5b6d7e8f90");
        assert_int_equal(json_integer_value(json_object_get(got, "evaluatedAt")), 1700000000123LL);
        assert_int_equal(json_object_size(got), 4);
        const char *key;
        json_t *d;
        json_object_foreach(want, key, d) {
            enabled += json_is_true(json_object_get(d, "enabled"));
            variants += json_is_string(json_object_get(d, "variant"));
            payloads += json_is_string(json_object_get(json_object_get(d, "metadata"), "payload"));
        }
        json_decref(got);
        json_decref(want);
        free(text);
    }
    /* every kind of answer was compared, not only "off" */
    assert_true(enabled > 300 && variants > 300 && payloads > 300);
    for (size_t i = 0; i < 3; i++) json_decref(people[i]);
    kw_flagset_release(set);
}

static void test_pieces_rendered_once_per_version(void **state)
{
    struct fixture *f = *state;
    const kw_flagset *set;
    assert_int_equal(kw_flagcache_get(f->cache, f->project, &set), KW_OK);
    kw_flag_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.distinct_id = "someone";
    char *text;
    size_t len;
    assert_int_equal(kw_flags_render_v2(set, &ctx, "x", 1, &text, &len), KW_OK);
    free(text);
    kw_flagset_attachment *pieces = kw_flagset_attachment_get(set, KW_FLAGSET_EVALUATION);
    assert_non_null(pieces);
    assert_int_equal(kw_flags_render_v2(set, &ctx, "x", 1, &text, &len), KW_OK);
    free(text);
    assert_ptr_equal(kw_flagset_attachment_get(set, KW_FLAGSET_EVALUATION), pieces);
    kw_flagset_release(set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pieces_equal_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pieces_rendered_once_per_version, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
