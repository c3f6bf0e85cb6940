/* test_scope.c — scope parsing, write-implies-read, wildcard, subsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "keyward/keyward.h"

static int allows(const kw_scopes *s, const char *scope)
{
    int obj;
    kw_scope_action act;
    assert_int_equal(kw_scope_parse(scope, &obj, &act), KW_OK);
    return kw_scopes_allow(s, obj, act);
}

static void test_parse_valid_and_invalid(void **state)
{
    (void)state;
    kw_scopes s = {0, 0, 0};
    assert_int_equal(kw_scopes_add(&s, "feature_flag:read"), KW_OK);
    assert_int_equal(kw_scopes_add(&s, "personal_api_key:write"), KW_OK);
    const char *bad[] = {"feature_flag", "feature_flag:", ":read", "feature_flag:admin", "bogus:read",
                         "Feature_Flag:read", "feature_flag:read ", "**", "", "feature_flag:read:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(kw_scopes_add(&s, bad[i]), KW_ERR_INVALID);
}

static void test_write_implies_read(void **state)
{
    (void)state;
    kw_scopes s = {0, 0, 0};
    kw_scopes_add(&s, "project:write");
    assert_true(allows(&s, "project:read"));
    assert_true(allows(&s, "project:write"));
    assert_false(allows(&s, "feature_flag:read"));
    kw_scopes r = {0, 0, 0};
    kw_scopes_add(&r, "project:read");
    assert_true(allows(&r, "project:read"));
    assert_false(allows(&r, "project:write"));
}

static void test_wildcard_and_empty(void **state)
{
    (void)state;
    kw_scopes all = {0, 0, 0};
    kw_scopes_add(&all, "*");
    for (int i = 0; i < kw_scope_object_count(); i++) {
        assert_true(kw_scopes_allow(&all, i, KW_SCOPE_WRITE));
        assert_non_null(kw_scope_object_name(i));
    }
    kw_scopes none = {0, 0, 0};
    assert_true(kw_scopes_empty(&none));
    assert_false(kw_scopes_allow(&none, 0, KW_SCOPE_READ));
    assert_false(kw_scopes_empty(&all));
}

static void test_within(void **state)
{
    (void)state;
    kw_scopes outer = {0, 0, 0}, inner = {0, 0, 0}, all = {0, 0, 0};
    kw_scopes_add(&outer, "feature_flag:write");
    kw_scopes_add(&inner, "feature_flag:read");
    kw_scopes_add(&all, "*");
    assert_true(kw_scopes_within(&inner, &outer));
    assert_false(kw_scopes_within(&outer, &inner));
    assert_false(kw_scopes_within(&all, &outer));  /* "*" is never within a finite set */
    assert_true(kw_scopes_within(&all, &all));
    assert_true(kw_scopes_within(&outer, &all));
    kw_scopes other = {0, 0, 0};
    kw_scopes_add(&other, "project:read");
    assert_false(kw_scopes_within(&other, &outer));
}

static void test_object_names(void **state)
{
    (void)state;
    const char *needed[] = {"action", "activity_log", "annotation", "cohort", "dashboard", "endpoint",
                            "experiment", "feature_flag", "insight", "organization",
                            "organization_member", "person", "project", "query", "user", "webhook",
                            "personal_api_key"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        assert_true(kw_scope_object_index(needed[i], strlen(needed[i])) >= 0);
    assert_int_equal(kw_scope_object_index("nope", 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid_and_invalid), cmocka_unit_test(test_write_implies_read),
        cmocka_unit_test(test_wildcard_and_empty),      cmocka_unit_test(test_within),
        cmocka_unit_test(test_object_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
