/* scan_fixture.h — the cmocka fixture the scanner and redactor unit tests
 * share: the built-in rules, their compiled engine and one scratch.
 * Header-only: each test file is its own executable.  Include after
 * cmocka.h. */
#ifndef KW_TEST_SCAN_FIXTURE_H
#define KW_TEST_SCAN_FIXTURE_H

#include <stdlib.h>

#include "keyward/keyward.h"
#include "keyward/scan.h"

typedef struct fixture {
    kw_scan_rules *rules;
    kw_scan_engine *engine;
    kw_scan_scratch *scratch;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    char err[256];
    assert_int_equal(kw_scan_rules_new(&fx->rules), KW_OK);
    assert_int_equal(kw_scan_engine_new(fx->rules, &fx->engine, err, sizeof err), KW_OK);
    assert_int_equal(kw_scan_scratch_new(fx->engine, &fx->scratch), KW_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    kw_scan_scratch_free(fx->scratch);
    kw_scan_engine_free(fx->engine);
    kw_scan_rules_free(fx->rules);
    free(fx);
    return 0;
}

#endif
