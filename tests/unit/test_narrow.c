/* test_narrow.c — "never broader than the caller", dimension by dimension:
 * for each dimension a target one step broader than the caller is refused
 * (naming the field), and equal or one step narrower is allowed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "keyward/keyward.h"
#include "keyward/narrow.h"

static kw_principal key(const char *scopes, const char *teams, const char *orgs, int64_t expires,
                        int32_t rate)
{
    kw_principal p;
    memset(&p, 0, sizeof p);
    p.kind = KW_KEY_PERSONAL;
    kw_principal_load_scopes(&p, scopes, teams, orgs);
    p.expires_at = expires;
    p.rate_limit_per_minute = rate;
    return p;
}

static const char *refused(const kw_principal *actor, const kw_principal *target,
                           kw_narrow_what what, int actor_level, int target_level)
{
    static kw_problem p;
    if (!kw_narrow_check(actor, actor_level, target, target_level, what, &p)) return NULL;
    assert_int_equal(p.status, 403);
    return p.attr ? p.attr : "";
}

static void test_each_dimension(void **state)
{
    (void)state;
    const int64_t T = 1000000000;
    kw_principal caller = key("[\"personal_api_key:write\",\"feature_flag:read\"]", "[1,2]",
                              "[\"o1\",\"o2\"]", T, 50);
    static const struct {
        const char *scopes, *teams, *orgs;
        int64_t expires;
        int32_t rate;
        const char *attr;  /* NULL: allowed */
    } CASES[] = {
        /* equal, and narrower in each dimension */
        {"[\"personal_api_key:write\",\"feature_flag:read\"]", "[1,2]", "[\"o1\",\"o2\"]", T, 50, NULL},
        {"[\"feature_flag:read\"]", "[1,2]", "[\"o1\",\"o2\"]", T, 50, NULL},
        {"[\"personal_api_key:read\"]", "[1,2]", "[\"o1\",\"o2\"]", T, 50, NULL},
        {"[\"feature_flag:read\"]", "[2]", "[\"o1\",\"o2\"]", T, 50, NULL},
        {"[\"feature_flag:read\"]", "[1,2]", "[\"o2\"]", T, 50, NULL},
        {"[\"feature_flag:read\"]", "[1,2]", "[\"o1\",\"o2\"]", T - 1, 50, NULL},
        {"[\"feature_flag:read\"]", "[1,2]", "[\"o1\",\"o2\"]", T, 49, NULL},
        /* one step broader in one dimension */
        {"[\"feature_flag:write\"]", "[1,2]", "[\"o1\",\"o2\"]", T, 50, "scopes"},
        {"[\"*\"]", "[1,2]", "[\"o1\",\"o2\"]", T, 50, "scopes"},
        {"[\"feature_flag:read\"]", "[1,3]", "[\"o1\",\"o2\"]", T, 50, "scoped_teams"},
        {"[\"feature_flag:read\"]", NULL, "[\"o1\",\"o2\"]", T, 50, "scoped_teams"},
        {"[\"feature_flag:read\"]", "[1,2]", "[\"o3\"]", T, 50, "scoped_organizations"},
        {"[\"feature_flag:read\"]", "[1,2]", NULL, T, 50, "scoped_organizations"},
        {"[\"feature_flag:read\"]", "[1,2]", "[\"o1\",\"o2\"]", T + 1, 50, "expires_at"},
        {"[\"feature_flag:read\"]", "[1,2]", "[\"o1\",\"o2\"]", 0, 50, "expires_at"},
        {"[\"feature_flag:read\"]", "[1,2]", "[\"o1\",\"o2\"]", T, 51, "rate_limit_per_minute"},
        {"[\"feature_flag:read\"]", "[1,2]", "[\"o1\",\"o2\"]", T, 0, "rate_limit_per_minute"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        kw_principal target = key(CASES[i].scopes, CASES[i].teams, CASES[i].orgs, CASES[i].expires,
                                  CASES[i].rate);
        const char *got = refused(&caller, &target, KW_NARROW_KEY, 0, 0);
        if (!CASES[i].attr) {
            if (got) fail_msg("case %zu: refused on %s", i, got);
        } else if (!got || strcmp(got, CASES[i].attr) != 0) {
            fail_msg("case %zu: want refusal on %s, got %s", i, CASES[i].attr, got ? got : "allowed");
        }
    }
    /* an unlimited caller admits anything of its own kind or below */
    kw_principal wide = key("[\"*\"]", NULL, NULL, 0, 0);
    kw_principal target = key("[\"*\"]", NULL, NULL, 0, 0);
    assert_null(refused(&wide, &target, KW_NARROW_KEY, 0, 0));
    /* kind: a project secret key manages nothing stronger than itself */
    kw_principal secret = key("[\"feature_flag:read\"]", NULL, NULL, 0, 0);
    secret.kind = KW_KEY_SECRET;
    target = key("[\"feature_flag:read\"]", NULL, NULL, 0, 0);
    assert_non_null(refused(&secret, &target, KW_NARROW_KEY, 0, 0));
    assert_null(refused(&wide, &secret, KW_NARROW_KEY, 0, 0));
}

static void test_sessions_invites_accounts(void **state)
{
    (void)state;
    kw_principal session, member;
    kw_narrow_person(&session, NULL);
    kw_narrow_person(&member, "o1");
    /* a session is the person's authority: only the level counts */
    kw_principal target = key("[\"*\"]", NULL, NULL, 0, 0);
    assert_null(refused(&session, &target, KW_NARROW_KEY, 0, 0));
    assert_null(refused(&session, &member, KW_NARROW_INVITE, 8, 8));
    assert_string_equal(refused(&session, &member, KW_NARROW_INVITE, 8, 15), "level");
    /* an invitation makes a person: only a key as wide as a person may */
    kw_principal wide = key("[\"*\"]", NULL, NULL, 0, 0);
    assert_null(refused(&wide, &member, KW_NARROW_INVITE, 15, 15));
    assert_string_equal(refused(&wide, &member, KW_NARROW_INVITE, 8, 15), "level");
    kw_principal k = key("[\"organization_member:write\"]", NULL, NULL, 0, 0);
    assert_string_equal(refused(&k, &member, KW_NARROW_INVITE, 15, 1), "scopes");
    k = key("[\"*\"]", "[1]", NULL, 0, 0);
    assert_string_equal(refused(&k, &member, KW_NARROW_INVITE, 15, 1), "scoped_teams");
    k = key("[\"*\"]", NULL, "[\"o2\"]", 0, 0);
    assert_string_equal(refused(&k, &member, KW_NARROW_INVITE, 15, 1), "scoped_organizations");
    k = key("[\"*\"]", NULL, "[\"o1\"]", 0, 0);
    assert_null(refused(&k, &member, KW_NARROW_INVITE, 15, 1));
    k = key("[\"*\"]", NULL, NULL, 123, 0);
    assert_string_equal(refused(&k, &member, KW_NARROW_INVITE, 15, 1), "expires_at");
    k = key("[\"*\"]", NULL, NULL, 0, 10);
    assert_string_equal(refused(&k, &member, KW_NARROW_INVITE, 15, 1), "rate_limit_per_minute");
    /* an account: reach and level only (the caller gains nothing) */
    k = key("[\"user:write\"]", NULL, NULL, 123, 10);
    assert_null(refused(&k, &member, KW_NARROW_ACCOUNT, 8, 8));
    assert_string_equal(refused(&k, &member, KW_NARROW_ACCOUNT, 8, 15), "level");
    k = key("[\"user:write\"]", NULL, "[\"o2\"]", 0, 0);
    assert_string_equal(refused(&k, &member, KW_NARROW_ACCOUNT, 15, 1), "scoped_organizations");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_dimension),
        cmocka_unit_test(test_sessions_invites_accounts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
