/* test_lifecycle.c — key lifecycle with a pinned clock: expiry at
 * its exact edge, through the store and through the verification cache;
 * the per-key rate limit as the verifier applies it; scope usage noted in
 * memory and merged into the store only by a flush; the report's flags at
 * 89/90/91 days and its least-scope suggestion; ISO-8601 parsing; and the
 * validation of expires_at / rate_limit_per_minute by the key service; and
 * that a revocation forgets the revoked key only. */
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

#include <sqlite3.h>

#include "keyward/auth.h"
#include "keyward/keyward.h"
#include "keyward/report.h"
#include "keyward/service.h"
#include "keyward/store.h"
#include "keyward/usage.h"

#define T0 ((int64_t)1767225600 * 1000000) /* 2026-01-01T00:00:00Z */
#define DAY KW_REPORT_DAY_US

struct fx {
    char path[64];
    kw_store *store;
    int64_t user_id;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "/tmp/kw-life-%d-XXXXXX", (int)getpid());
    int fd = mkstemp(f->path);
    if (fd < 0) return -1;
    close(fd);
    kw_clock_set(T0);
    if (kw_store_open(f->path, &f->store)) return -1;
    kw_user u;
    memset(&u, 0, sizeof u);
    snprintf(u.email, sizeof u.email, "life@example.com");
    u.is_active = 1;
    if (kw_store_user_create(f->store, &u)) return -1;
    f->user_id = u.id;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    kw_store_close(f->store);
    char side[80];
    unlink(f->path);
    snprintf(side, sizeof side, "%s-wal", f->path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", f->path);
    unlink(side);
    free(f);
    kw_clock_set(0);
    return 0;
}

/* A stored personal key; its plaintext in value. */
static void add_key(struct fx *f, const char *id, int64_t expires_at, int rate,
                    char value[KW_KEY_LEN + 1])
{
    kw_pkey k;
    memset(&k, 0, sizeof k);
    snprintf(k.id, sizeof k.id, "%s", id);
    k.user_id = f->user_id;
    snprintf(k.label, sizeof k.label, "%s", id);
    assert_int_equal(kw_key_generate(KW_KEY_PERSONAL, value), KW_OK);
    assert_int_equal(kw_key_hash(value, KW_KEY_LEN, k.secure_value), KW_OK);
    kw_key_mask(value, KW_KEY_LEN, k.mask_value);
    k.created_at = kw_now();
    snprintf(k.scopes, sizeof k.scopes, "[\"*\"]");
    k.expires_at = expires_at;
    k.rate_limit_per_minute = rate;
    assert_int_equal(kw_store_pkey_insert(f->store, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
}

static void test_expiry_edge(void **state)
{
    struct fx *f = *state;
    char value[KW_KEY_LEN + 1];
    const int64_t at = T0 + 10 * 1000000;
    add_key(f, "exp", at, 0, value);
    kw_verifier *v;
    assert_int_equal(kw_verifier_new(f->store, &v), KW_OK);
    kw_principal p;
    /* One microsecond before: fine, and now cached. */
    kw_clock_set(at - 1);
    assert_int_equal(kw_verify_personal(v, value, KW_KEY_LEN, &p), KW_VERIFY_OK);
    assert_int_equal(p.expires_at, at);
    /* At exactly expires_at: expired, from the cache entry. */
    kw_clock_set(at);
    assert_int_equal(kw_verify_personal(v, value, KW_KEY_LEN, &p), KW_VERIFY_EXPIRED);
    /* And from the store, with nothing cached. */
    kw_verifier_drop_cache(v);
    assert_int_equal(kw_verify_personal(v, value, KW_KEY_LEN, &p), KW_VERIFY_EXPIRED);
    kw_clock_set(at + DAY);
    assert_int_equal(kw_verify_personal(v, value, KW_KEY_LEN, &p), KW_VERIFY_EXPIRED);
    /* An unknown key is still just invalid. */
    char other[KW_KEY_LEN + 1];
    kw_key_generate(KW_KEY_PERSONAL, other);
    assert_int_equal(kw_verify_personal(v, other, KW_KEY_LEN, &p), KW_VERIFY_INVALID);
    kw_verifier_free(v);
}

static void test_rate_limit(void **state)
{
    struct fx *f = *state;
    char value[KW_KEY_LEN + 1];
    add_key(f, "rl", 0, 3, value);
    kw_verifier *v;
    assert_int_equal(kw_verifier_new(f->store, &v), KW_OK);
    kw_principal p;
    assert_int_equal(kw_verify_personal(v, value, KW_KEY_LEN, &p), KW_VERIFY_OK);
    assert_int_equal(p.rate_limit_per_minute, 3);
    for (int i = 0; i < 3; i++) assert_int_equal(kw_verifier_rate_take(v, &p), 0);
    /* 3/min refills one token every 20 s. */
    assert_int_equal(kw_verifier_rate_take(v, &p), 20);
    kw_clock_set(T0 + 19 * 1000000);
    assert_int_equal(kw_verifier_rate_take(v, &p), 1);
    kw_clock_set(T0 + 20 * 1000000);
    assert_int_equal(kw_verifier_rate_take(v, &p), 0);
    /* no limit, no bucket */
    p.rate_limit_per_minute = 0;
    for (int i = 0; i < 100; i++) assert_int_equal(kw_verifier_rate_take(v, &p), 0);
    kw_verifier_free(v);
}

/* What the HTTP layer does with a route's scope: parse, then note. */
static void note_scope(kw_verifier *v, const kw_principal *p, const char *scope)
{
    int object;
    kw_scope_action action;
    if (kw_scope_parse(scope, &object, &action) == KW_OK)
        kw_verifier_note_scope(v, p, object, action);
}

static void test_usage_flush(void **state)
{
    struct fx *f = *state;
    char value[KW_KEY_LEN + 1];
    add_key(f, "use", 0, 0, value);
    kw_verifier *v;
    assert_int_equal(kw_verifier_new(f->store, &v), KW_OK);
    kw_principal p;
    assert_int_equal(kw_verify_personal(v, value, KW_KEY_LEN, &p), KW_VERIFY_OK);
    for (int i = 0; i < 1000; i++) note_scope(v, &p, "feature_flag:read");
    note_scope(v, &p, "project:write");
    kw_pkey row;
    /* Nothing is written per request: the store sees it only after a flush
     * (the clock is pinned, so the periodic flush never comes due). */
    assert_int_equal(kw_store_pkey_get(f->store, f->user_id, "use", &row), KW_OK);
    assert_string_equal(row.scopes_used, "");
    assert_int_equal(kw_verifier_flush_usage(v), KW_OK);
    assert_int_equal(kw_store_pkey_get(f->store, f->user_id, "use", &row), KW_OK);
    assert_string_equal(row.scopes_used, "[\"feature_flag:read\",\"project:write\"]");
    /* Seen bits are not written again; a new one is merged in. */
    note_scope(v, &p, "feature_flag:read");
    note_scope(v, &p, "activity_log:read");
    kw_verifier_free(v);  /* the last flush */
    assert_int_equal(kw_store_pkey_get(f->store, f->user_id, "use", &row), KW_OK);
    assert_string_equal(row.scopes_used,
                        "[\"activity_log:read\",\"feature_flag:read\",\"project:write\"]");
}

/* A flush larger than one store batch, spread over every shard: each key
 * gets exactly its own bits. */
static void test_usage_flush_many(void **state)
{
    struct fx *f = *state;
    enum { N = 1500 };
    assert_int_equal(kw_store_begin(f->store), KW_OK);
    for (int i = 0; i < N; i++) {
        kw_pkey k;
        memset(&k, 0, sizeof k);
        unsigned n = (unsigned)i % 10000u; /* four digits, as the compiler can see */
        snprintf(k.id, sizeof k.id, "many-%04u", n);
        k.user_id = f->user_id;
        snprintf(k.label, sizeof k.label, "%s", k.id);
        snprintf(k.secure_value, sizeof k.secure_value, "sha256$many-%04u", n);
        snprintf(k.mask_value, sizeof k.mask_value, "phx_...%04u", n);
        k.created_at = kw_now();
        snprintf(k.scopes, sizeof k.scopes, "[\"*\"]");
        assert_int_equal(kw_store_pkey_insert(f->store, &k, N), KW_OK);
    }
    assert_int_equal(kw_store_commit(f->store), KW_OK);
    kw_usage *u;
    assert_int_equal(kw_usage_new(16 * 1024, &u), KW_OK);
    int project, flag;
    kw_scope_action action;
    assert_int_equal(kw_scope_parse("project:read", &project, &action), KW_OK);
    assert_int_equal(kw_scope_parse("feature_flag:write", &flag, &action), KW_OK);
    char id[KW_ID_LEN + 1];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "many-%04d", i);
        kw_usage_note(u, KW_KEY_PERSONAL, id, project, KW_SCOPE_READ);
        if (i % 3 == 0) kw_usage_note(u, KW_KEY_PERSONAL, id, flag, KW_SCOPE_WRITE);
    }
    assert_int_equal(kw_usage_dropped(u), 0);
    assert_int_equal(kw_usage_flush(u, f->store), KW_OK);
    for (int i = 0; i < N; i++) {
        kw_pkey row;
        snprintf(id, sizeof id, "many-%04d", i);
        assert_int_equal(kw_store_pkey_get(f->store, f->user_id, id, &row), KW_OK);
        assert_string_equal(row.scopes_used, i % 3 == 0
                                                 ? "[\"feature_flag:write\",\"project:read\"]"
                                                 : "[\"project:read\"]");
    }
    kw_usage_free(u);
}

static void test_usage_table_bounded(void **state)
{
    (void)state;
    kw_usage *u;
    assert_int_equal(kw_usage_new(64, &u), KW_OK);  /* 64 shards × 8 slots minimum */
    char id[40];
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "key-%d", i);
        kw_usage_note(u, KW_KEY_PERSONAL, id, 1, KW_SCOPE_READ);
    }
    assert_true(kw_usage_dropped(u) > 0);  /* full of unflushed keys: dropped, not grown */
    kw_usage_free(u);
}

static void test_report_flags(void **state)
{
    (void)state;
    kw_report_opts o;
    kw_report_opts_init(&o);
    o.now = T0 + 200 * DAY;
    kw_report_flags f;
    kw_report_flags_of(o.now - 89 * DAY, 0, o.now, 0, &o, &f);
    assert_false(f.not_rotated);
    kw_report_flags_of(o.now - 90 * DAY, 0, o.now, 0, &o, &f);
    assert_false(f.not_rotated);
    kw_report_flags_of(o.now - 91 * DAY, 0, o.now, 0, &o, &f);
    assert_true(f.not_rotated);
    /* rolling resets the clock */
    kw_report_flags_of(o.now - 150 * DAY, o.now - 89 * DAY, o.now, 0, &o, &f);
    assert_false(f.not_rotated);
    o.rotation_days = 30;
    kw_report_flags_of(o.now - 31 * DAY, 0, o.now, 0, &o, &f);
    assert_true(f.not_rotated);
    o.rotation_days = 90;
    /* unused: never, or not within 30 days */
    kw_report_flags_of(o.now, 0, 0, 0, &o, &f);
    assert_true(f.unused);
    kw_report_flags_of(o.now - 40 * DAY, 0, o.now - 30 * DAY, 0, &o, &f);
    assert_false(f.unused);
    kw_report_flags_of(o.now - 40 * DAY, 0, o.now - 31 * DAY, 0, &o, &f);
    assert_true(f.unused);
    /* expiring soon: less than 14 days left; expired at the edge */
    kw_report_flags_of(o.now, 0, o.now, o.now + 13 * DAY, &o, &f);
    assert_true(f.expiring_soon);
    assert_false(f.expired);
    kw_report_flags_of(o.now, 0, o.now, o.now + 14 * DAY, &o, &f);
    assert_false(f.expiring_soon);
    kw_report_flags_of(o.now, 0, o.now, o.now, &o, &f);
    assert_false(f.expiring_soon);
    assert_true(f.expired);
}

static void expect_suggestion(const char *granted, const char *used, const char *want_list,
                              const char *want_action)
{
    const char *action;
    json_t *list = kw_report_suggest(granted, used, &action);
    char *text = json_dumps(list, JSON_COMPACT);
    assert_string_equal(text, want_list);
    assert_string_equal(action, want_action);
    free(text);
    json_decref(list);
}

static void test_least_scope(void **state)
{
    (void)state;
    /* "*" becomes the explicit list of what was used */
    expect_suggestion("[\"*\"]", "[\"project:read\",\"feature_flag:write\",\"feature_flag:read\"]",
                      "[\"feature_flag:write\",\"project:read\"]", "narrow");
    /* exactly what is used: keep */
    expect_suggestion("[\"feature_flag:read\"]", "[\"feature_flag:read\"]", "[\"feature_flag:read\"]",
                      "keep");
    /* write granted, only read used: narrow to read */
    expect_suggestion("[\"feature_flag:write\"]", "[\"feature_flag:read\"]",
                      "[\"feature_flag:read\"]", "narrow");
    /* nothing used: revoke */
    expect_suggestion("[\"*\"]", "", "[]", "revoke");
    expect_suggestion("[\"project:read\"]", "[]", "[]", "revoke");
    /* used before being narrowed: never suggest more than granted */
    expect_suggestion("[\"project:read\"]", "[\"project:write\",\"insight:read\"]",
                      "[\"project:read\"]", "keep");
    /* legacy NULL scopes grant nothing */
    expect_suggestion("", "[\"project:read\"]", "[]", "revoke");
}

static void test_time_parse(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(kw_time_parse("2026-01-01T00:00:00Z", &t), KW_OK);
    assert_int_equal(t, T0);
    assert_int_equal(kw_time_parse("2026-01-01T01:30:00.5+01:30", &t), KW_OK);
    assert_int_equal(t, T0 + 500000);
    assert_int_equal(kw_time_parse("2026-01-01 00:00", &t), KW_OK);
    assert_int_equal(t, T0);
    assert_int_equal(kw_time_parse("2025-12-31T23:00:00-0100", &t), KW_OK);
    assert_int_equal(t, T0);
    char text[KW_TIME_TEXT];
    kw_time_format(T0 + 123456, text);
    assert_int_equal(kw_time_parse(text, &t), KW_OK);
    assert_int_equal(t, T0 + 123456);
    assert_int_equal(kw_time_parse("2026-01-01", &t), KW_OK);  /* a bare date: midnight UTC */
    assert_int_equal(t, T0);
    const char *bad[] = {"", "2026-01-01T", "2026-13-01T00:00Z", "2026-02-30T00:00Z", "tomorrow",
                         "2026-01-01T00:00:00Zjunk", "2026-01-01T24:00Z", "2026-01-01T00:00:00."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(kw_time_parse(bad[i], &t), KW_ERR_INVALID);
}

/* Through the service: texts and attrs, past expiry refused at create and
 * on roll but allowed by update, roll keeps or resets. */
static void test_service_fields(void **state)
{
    struct fx *f = *state;
    kw_principal me;
    memset(&me, 0, sizeof me);
    me.session = 1;
    me.user_id = f->user_id;
    me.scopes.wildcard = 1;
    me.n_scoped_teams = me.n_scoped_orgs = -1;
    kw_call c = {.store = f->store, .actor = &me};
    static kw_pkey k;
    char value[KW_KEY_LEN + 1];
    kw_problem p;
    json_t *b = json_pack("{s:s, s:[s], s:s}", "label", "x", "scopes", "*", "expires_at",
                          "2025-12-31T23:59:59Z");
    assert_int_equal(kw_pkey_create(&c, b, &k, value, &p), 1);
    assert_int_equal(p.status, 400);
    assert_string_equal(p.attr, "expires_at");
    json_decref(b);
    b = json_pack("{s:s, s:[s], s:i}", "label", "x", "scopes", "*", "expires_at", 5);
    assert_int_equal(kw_pkey_create(&c, b, &k, value, &p), 1);
    assert_string_equal(p.code, "invalid");
    json_decref(b);
    b = json_pack("{s:s, s:[s], s:i}", "label", "x", "scopes", "*", "rate_limit_per_minute", 0);
    assert_int_equal(kw_pkey_create(&c, b, &k, value, &p), 1);
    assert_string_equal(p.attr, "rate_limit_per_minute");
    assert_string_equal(p.detail, "Ensure this value is greater than or equal to 1.");
    json_decref(b);
    b = json_pack("{s:s, s:[s], s:i}", "label", "x", "scopes", "*", "rate_limit_per_minute", 1000001);
    assert_int_equal(kw_pkey_create(&c, b, &k, value, &p), 1);
    assert_string_equal(p.detail, "Ensure this value is less than or equal to 1000000.");
    json_decref(b);
    b = json_pack("{s:s, s:[s], s:s, s:i}", "label", "x", "scopes", "*", "expires_at",
                  "2026-02-01T00:00:00Z", "rate_limit_per_minute", 1000000);
    assert_int_equal(kw_pkey_create(&c, b, &k, value, &p), 0);
    json_decref(b);
    assert_int_equal(k.expires_at, T0 + 31 * DAY);
    assert_int_equal(k.rate_limit_per_minute, 1000000);
    char id[KW_ID_LEN + 1];
    strcpy(id, k.id);
    /* roll without a body keeps the expiry */
    assert_int_equal(kw_pkey_roll(&c, id, NULL, &k, value, &p), 0);
    assert_int_equal(k.expires_at, T0 + 31 * DAY);
    /* update may set a past time: the key stops now */
    b = json_pack("{s:s}", "expires_at", "2025-06-01T00:00:00Z");
    assert_int_equal(kw_pkey_update(&c, id, b, &k, &p), 0);
    json_decref(b);
    /* roll refuses a past time, accepts null (never) */
    b = json_pack("{s:s}", "expires_at", "2025-06-01T00:00:00Z");
    assert_int_equal(kw_pkey_roll(&c, id, b, &k, value, &p), 1);
    assert_string_equal(p.attr, "expires_at");
    json_decref(b);
    b = json_pack("{s:n}", "expires_at");
    assert_int_equal(kw_pkey_roll(&c, id, b, &k, value, &p), 0);
    json_decref(b);
    assert_int_equal(kw_store_pkey_get(f->store, f->user_id, id, &k), KW_OK);
    assert_int_equal(k.expires_at, 0);
    assert_int_equal(k.rate_limit_per_minute, 1000000);
}

/* Roll with a grace period: the old value verifies as the key
 * until exactly T+N (store and cache alike), rolling again or deleting
 * the key ends it at once, and the field is validated. */
static void test_roll_grace(void **state)
{
    struct fx *f = *state;
    kw_verifier *v;
    assert_int_equal(kw_verifier_new(f->store, &v), KW_OK);
    kw_principal me;
    memset(&me, 0, sizeof me);
    me.session = 1;
    me.user_id = f->user_id;
    me.scopes.wildcard = 1;
    me.n_scoped_teams = me.n_scoped_orgs = -1;
    kw_call c = {.store = f->store, .actor = &me, .verifier = v};
    static kw_pkey k;
    char v0[KW_KEY_LEN + 1], v1[KW_KEY_LEN + 1], v2[KW_KEY_LEN + 1], v3[KW_KEY_LEN + 1];
    kw_problem p;
    kw_principal who;
    json_t *b = json_pack("{s:s, s:[s]}", "label", "grace", "scopes", "*");
    assert_int_equal(kw_pkey_create(&c, b, &k, v0, &p), 0);
    json_decref(b);
    char id[KW_ID_LEN + 1];
    strcpy(id, k.id);
    assert_int_equal(kw_verify_personal(v, v0, KW_KEY_LEN, &who), KW_VERIFY_OK);  /* cached */

    /* Refused: out of range, not an integer, null. */
    const char *bad[] = {"{\"expire_previous_in_seconds\": 604801}",
                         "{\"expire_previous_in_seconds\": -1}",
                         "{\"expire_previous_in_seconds\": \"60\"}",
                         "{\"expire_previous_in_seconds\": 1.5}",
                         "{\"expire_previous_in_seconds\": true}",
                         "{\"expire_previous_in_seconds\": null}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = json_loads(bad[i], 0, NULL);
        assert_non_null(b);
        assert_int_equal(kw_pkey_roll(&c, id, b, &k, v1, &p), 1);
        assert_int_equal(p.status, 400);
        assert_string_equal(p.attr, "expire_previous_in_seconds");
        json_decref(b);
    }
    assert_int_equal(kw_verify_personal(v, v0, KW_KEY_LEN, &who), KW_VERIFY_OK);  /* not rolled */

    const int64_t n = 60;
    b = json_pack("{s:I}", "expire_previous_in_seconds", (json_int_t)n);
    assert_int_equal(kw_pkey_roll(&c, id, b, &k, v1, &p), 0);
    json_decref(b);
    const int64_t until = T0 + n * 1000000;
    kw_time listed;
    assert_int_equal(kw_store_rolled_expiry(f->store, KW_KEY_PERSONAL, id, kw_now(), &listed), KW_OK);
    assert_int_equal(listed, until);
    /* Both values are the key; the old one carries its window's end. */
    assert_int_equal(kw_verify_personal(v, v1, KW_KEY_LEN, &who), KW_VERIFY_OK);
    assert_int_equal(who.grace_value, 0);
    assert_int_equal(kw_verify_personal(v, v0, KW_KEY_LEN, &who), KW_VERIFY_OK);
    assert_string_equal(who.key_id, id);
    assert_int_equal(who.user_id, f->user_id);
    assert_int_equal(who.grace_value, 1);
    assert_int_equal(who.expires_at, until);
    /* T+N-1 s: still fine, from the cache and from the store. */
    kw_clock_set(until - 1000000);
    assert_int_equal(kw_verify_personal(v, v0, KW_KEY_LEN, &who), KW_VERIFY_OK);
    kw_verifier_drop_cache(v);
    assert_int_equal(kw_verify_personal(v, v0, KW_KEY_LEN, &who), KW_VERIFY_OK);
    /* T+N: refused as unknown (not "expired"), cached entry and store alike. */
    kw_clock_set(until);
    assert_int_equal(kw_verify_personal(v, v0, KW_KEY_LEN, &who), KW_VERIFY_INVALID);
    kw_verifier_drop_cache(v);
    assert_int_equal(kw_verify_personal(v, v0, KW_KEY_LEN, &who), KW_VERIFY_INVALID);
    assert_int_equal(kw_verify_personal(v, v1, KW_KEY_LEN, &who), KW_VERIFY_OK);
    assert_int_equal(kw_store_rolled_expiry(f->store, KW_KEY_PERSONAL, id, kw_now(), &listed), KW_OK);
    assert_int_equal(listed, 0);

    /* A key expiring inside the window bounds the old value as an expiry. */
    b = json_pack("{s:I, s:s}", "expire_previous_in_seconds", (json_int_t)3600, "expires_at",
                  "2026-01-01T00:01:30Z");
    assert_int_equal(kw_pkey_roll(&c, id, b, &k, v2, &p), 0);
    json_decref(b);
    assert_int_equal(kw_verify_personal(v, v1, KW_KEY_LEN, &who), KW_VERIFY_OK);
    assert_int_equal(who.grace_value, 0);
    assert_int_equal(who.expires_at, T0 + 90 * 1000000);

    /* Rolling again with 0 ends the previous value at once. */
    b = json_pack("{s:i}", "expire_previous_in_seconds", 0);
    assert_int_equal(kw_pkey_roll(&c, id, b, &k, v3, &p), 0);
    json_decref(b);
    assert_int_equal(kw_verify_personal(v, v1, KW_KEY_LEN, &who), KW_VERIFY_INVALID);
    assert_int_equal(kw_verify_personal(v, v2, KW_KEY_LEN, &who), KW_VERIFY_INVALID);
    assert_int_equal(kw_verify_personal(v, v3, KW_KEY_LEN, &who), KW_VERIFY_OK);

    /* Deleting the key removes its previous values. */
    b = json_pack("{s:i}", "expire_previous_in_seconds", 30);
    assert_int_equal(kw_pkey_roll(&c, id, b, &k, v0, &p), 0);
    json_decref(b);
    int64_t live = 0;
    assert_int_equal(kw_store_rolled_live(f->store, kw_now(), &live), KW_OK);
    assert_int_equal(live, 1);
    assert_int_equal(kw_verify_personal(v, v3, KW_KEY_LEN, &who), KW_VERIFY_OK);
    assert_int_equal(kw_pkey_delete(&c, id, &p), 0);
    assert_int_equal(kw_verify_personal(v, v3, KW_KEY_LEN, &who), KW_VERIFY_INVALID);
    assert_int_equal(kw_store_rolled_live(f->store, kw_now(), &live), KW_OK);
    assert_int_equal(live, 0);
    kw_verifier_free(v);
}

/* Renames the key table under the store's feet (raw SQLite), so a cache
 * miss fails like a database outage while the generation still reads. */
static void cut_keys(const char *path, int cut)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, cut ? "ALTER TABLE personal_api_keys RENAME TO pk_cut"
                                          : "ALTER TABLE pk_cut RENAME TO personal_api_keys",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
}

/* A local revocation (the service's commit calls kw_verifier_invalidate)
 * forgets that key at once and keeps every other key's cached answer, so
 * they still verify with the store unreachable.  It used to drop them all. */
static void test_revoke_forgets_that_key_only(void **state)
{
    struct fx *f = *state;
    char a[KW_KEY_LEN + 1], b[KW_KEY_LEN + 1];
    add_key(f, "key-a", 0, 0, a);
    add_key(f, "key-b", 0, 0, b);
    kw_verifier *v;
    assert_int_equal(kw_verifier_new(f->store, &v), KW_OK);
    kw_principal p;
    assert_int_equal(kw_verify_personal(v, a, KW_KEY_LEN, &p), KW_VERIFY_OK);
    assert_int_equal(kw_verify_personal(v, b, KW_KEY_LEN, &p), KW_VERIFY_OK);
    assert_int_equal(kw_store_pkey_delete(f->store, f->user_id, "key-a"), KW_OK);
    kw_verifier_invalidate(v);
    assert_int_equal(kw_verify_personal(v, a, KW_KEY_LEN, &p), KW_VERIFY_INVALID);
    cut_keys(f->path, 1);
    assert_int_equal(kw_verify_personal(v, b, KW_KEY_LEN, &p), KW_VERIFY_OK);  /* cached */
    assert_string_equal(p.key_id, "key-b");
    assert_int_equal(kw_verify_personal(v, a, KW_KEY_LEN, &p), KW_VERIFY_UNAVAILABLE);
    kw_verifier_drop_cache(v);
    assert_int_equal(kw_verify_personal(v, b, KW_KEY_LEN, &p), KW_VERIFY_UNAVAILABLE);
    cut_keys(f->path, 0);
    assert_int_equal(kw_verify_personal(v, b, KW_KEY_LEN, &p), KW_VERIFY_OK);
    kw_verifier_free(v);
}

/* The project-token digest memo (verify.c) maps a token to its digest
 * and nothing more: tokens sharing a memo slot never answer for each
 * other, and a rotated token is refused like before.  The slot is FNV-1a
 * of the token modulo 16, as verify.c computes it; the test makes the
 * tokens collide on purpose. */
static uint32_t memo_slot(const char *t)
{
    uint32_t h = 2166136261u;
    for (; *t; t++) h = (h ^ (uint8_t)*t) * 16777619u;
    return h % 16;
}

static void colliding_token(const char *with, char out[KW_KEY_MAX_LEN + 1])
{
    do assert_int_equal(kw_key_generate(KW_KEY_PROJECT, out), KW_OK);
    while (memo_slot(out) != memo_slot(with) || strcmp(out, with) == 0);
}

static void test_project_token_memo(void **state)
{
    struct fx *f = *state;
    kw_org org;
    memset(&org, 0, sizeof org);
    snprintf(org.name, sizeof org.name, "O");
    assert_int_equal(kw_store_org_create(f->store, &org), KW_OK);
    kw_project a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    snprintf(a.org_id, sizeof a.org_id, "%s", org.id);
    snprintf(b.org_id, sizeof b.org_id, "%s", org.id);
    snprintf(a.name, sizeof a.name, "A");
    snprintf(b.name, sizeof b.name, "B");
    assert_int_equal(kw_key_generate(KW_KEY_PROJECT, a.api_token), KW_OK);
    colliding_token(a.api_token, b.api_token);
    assert_int_equal(kw_store_project_create(f->store, &a), KW_OK);
    assert_int_equal(kw_store_project_create(f->store, &b), KW_OK);
    char unknown[KW_KEY_MAX_LEN + 1];
    colliding_token(a.api_token, unknown);
    kw_verifier *v;
    assert_int_equal(kw_verifier_new(f->store, &v), KW_OK);
    kw_principal p;
    for (int round = 0; round < 2; round++) {  /* the second from the memo */
        assert_int_equal(kw_verify_project(v, a.api_token, strlen(a.api_token), &p), KW_VERIFY_OK);
        assert_int_equal(p.project_id, a.id);
        assert_int_equal(kw_verify_project(v, b.api_token, strlen(b.api_token), &p), KW_VERIFY_OK);
        assert_int_equal(p.project_id, b.id);
        assert_int_equal(kw_verify_project(v, unknown, strlen(unknown), &p), KW_VERIFY_INVALID);
    }
    /* a prefix of a known token is not that token */
    assert_int_equal(kw_verify_project(v, a.api_token, strlen(a.api_token) - 1, &p),
                     KW_VERIFY_INVALID);
    /* rotated: the old value is refused although its digest is memoized */
    char fresh[KW_KEY_MAX_LEN + 1];
    assert_int_equal(kw_key_generate(KW_KEY_PROJECT, fresh), KW_OK);
    assert_int_equal(kw_store_project_set_token(f->store, a.id, fresh), KW_OK);
    kw_verifier_drop_cache(v);
    assert_int_equal(kw_verify_project(v, a.api_token, strlen(a.api_token), &p), KW_VERIFY_INVALID);
    assert_int_equal(kw_verify_project(v, fresh, strlen(fresh), &p), KW_VERIFY_OK);
    assert_int_equal(p.project_id, a.id);
    assert_int_equal(kw_verify_project(v, b.api_token, strlen(b.api_token), &p), KW_VERIFY_OK);
    kw_verifier_free(v);
}

/* Past the degraded grace (no good poll of the store for that long) this
 * instance cannot learn of revocations, so no cached answer is used for
 * any kind of credential: the store is asked, and here it fails.  Project
 * tokens used to be served from the cache regardless. */
static void test_cache_not_trusted_past_grace(void **state)
{
    struct fx *f = *state;
    char key[KW_KEY_LEN + 1];
    add_key(f, "graced", 0, 0, key);
    kw_org org;
    memset(&org, 0, sizeof org);
    snprintf(org.name, sizeof org.name, "O");
    assert_int_equal(kw_store_org_create(f->store, &org), KW_OK);
    kw_project project;
    memset(&project, 0, sizeof project);
    snprintf(project.org_id, sizeof project.org_id, "%s", org.id);
    snprintf(project.name, sizeof project.name, "P");
    assert_int_equal(kw_key_generate(KW_KEY_PROJECT, project.api_token), KW_OK);
    assert_int_equal(kw_store_project_create(f->store, &project), KW_OK);
    const char *token = project.api_token;
    kw_verifier *v;
    assert_int_equal(kw_verifier_new(f->store, &v), KW_OK);
    kw_verifier_set_grace(v, 1000000);
    kw_principal p;
    assert_int_equal(kw_verify_personal(v, key, strlen(key), &p), KW_VERIFY_OK);
    assert_int_equal(kw_verify_project(v, token, strlen(token), &p), KW_VERIFY_OK);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, "ALTER TABLE kw_meta RENAME TO kw_meta_gone;"
                                      "ALTER TABLE projects RENAME TO projects_gone;"
                                      "ALTER TABLE personal_api_keys RENAME TO keys_gone;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    kw_clock_set(T0 + 500000);  /* within the grace: both from the cache */
    assert_int_equal(kw_verify_personal(v, key, strlen(key), &p), KW_VERIFY_OK);
    assert_int_equal(kw_verify_project(v, token, strlen(token), &p), KW_VERIFY_OK);
    assert_int_equal(p.project_id, project.id);
    kw_clock_set(T0 + 3000000);  /* past it: the store is asked, and fails */
    assert_int_equal(kw_verify_personal(v, key, strlen(key), &p), KW_VERIFY_UNAVAILABLE);
    assert_int_equal(kw_verify_project(v, token, strlen(token), &p), KW_VERIFY_UNAVAILABLE);
    kw_verifier_free(v);
}

/* Made-up legacy-length keys cost a (budgeted, off-thread) PBKDF2 check
 * only while some key is stored in a pbkdf2 form.  Once the last such row
 * is gone they are refused at once again, within a second: the count used
 * to be re-read only while it was zero, so it stayed positive until a
 * restart. */
static void test_legacy_check_ends_with_the_last_pbkdf2_row(void **state)
{
    struct fx *f = *state;
    const char *imported = "phx_importedlegacykey0000000000000000000000000";
    kw_pkey k;
    memset(&k, 0, sizeof k);
    snprintf(k.id, sizeof k.id, "legacy-row");
    k.user_id = f->user_id;
    snprintf(k.label, sizeof k.label, "imported");
    assert_int_equal(kw_key_legacy_form(imported, strlen(imported), 0, k.secure_value,
                                        sizeof k.secure_value), KW_OK);
    snprintf(k.mask_value, sizeof k.mask_value, "phx_...0000");
    k.created_at = kw_now();
    snprintf(k.scopes, sizeof k.scopes, "[\"*\"]");
    assert_int_equal(kw_store_pkey_insert(f->store, &k, KW_MAX_PERSONAL_KEYS), KW_OK);
    kw_verifier *v;
    assert_int_equal(kw_verifier_new(f->store, &v), KW_OK);
    const char *made_up = "phx_madeuplegacykey00000000000000000000000000";
    kw_principal p;
    assert_int_equal(kw_verify_personal_begin(v, made_up, strlen(made_up), "10.0.0.9", &p),
                     KW_VERIFY_SLOW);
    assert_int_equal(kw_verify_personal_legacy(v, made_up, strlen(made_up), &p),
                     KW_VERIFY_INVALID);
    assert_int_equal(kw_store_pkey_delete(f->store, f->user_id, "legacy-row"), KW_OK);
    kw_clock_set(T0 + 2000000);
    assert_int_equal(kw_verify_personal_begin(v, made_up, strlen(made_up), "10.0.0.9", &p),
                     KW_VERIFY_INVALID);
    kw_verifier_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_expiry_edge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_flush_many, setup, teardown),
        cmocka_unit_test(test_usage_table_bounded),
        cmocka_unit_test(test_report_flags),
        cmocka_unit_test(test_least_scope),
        cmocka_unit_test(test_time_parse),
        cmocka_unit_test_setup_teardown(test_service_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roll_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoke_forgets_that_key_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_project_token_memo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_not_trusted_past_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_legacy_check_ends_with_the_last_pbkdf2_row, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("lifecycle", tests, NULL, NULL);
}
