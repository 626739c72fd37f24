/* Tests of common/utf8.c: each sequence fed whole, split at every byte and
 * one byte at a time, ending on a guard page. */
#include "common/utf8.h"
#include "common/error.h"
#include "tests/support/guard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

typedef struct run {
    mc_utf8_t v;
    int failed;
    int expect_valid;
} run_t;

static void run_reset(void *ctx)
{
    run_t *r = ctx;
    mc_utf8_init(&r->v);
    r->failed = 0;
}

static void run_feed(void *ctx, const uint8_t *data, size_t len)
{
    run_t *r = ctx;
    if (!r->failed && mc_utf8_feed(&r->v, data, len) != 0)
        r->failed = 1;
}

static void run_check(void *ctx)
{
    run_t *r = ctx;
    int valid = !r->failed && mc_utf8_complete(&r->v);
    assert_int_equal(valid, r->expect_valid);
}

static const guard_driver_t DRIVER = {run_reset, run_feed, run_check};

static void expect(const char *s, size_t len, int valid)
{
    run_t r = {.expect_valid = valid};
    guard_feed_all_ways(&DRIVER, &r, s, len);
    guard_t g;
    uint8_t *copy = guard_copy(&g, s, len);
    assert_int_equal(mc_utf8_check(copy, len), valid ? 0 : MC_EINVAL);
    guard_free(&g);
}

#define VALID(s) expect(s, sizeof(s) - 1, 1)
#define INVALID(s) expect(s, sizeof(s) - 1, 0)

static void well_formed_sequences_pass(void **state)
{
    (void)state;
    VALID("");
    VALID("plain ascii \x01\x7f");
    VALID("\xc2\x80\xdf\xbf");                 /* U+0080, U+07FF */
    VALID("\xe0\xa0\x80\xef\xbf\xbf");         /* U+0800, U+FFFF */
    VALID("\xed\x9f\xbf\xee\x80\x80");         /* U+D7FF, U+E000 around surrogates */
    VALID("\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"); /* U+10000, U+10FFFF */
    VALID("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!");
    VALID("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5");
}

static void overlongs_are_refused(void **state)
{
    (void)state;
    INVALID("\xc0\xaf");
    INVALID("\xc1\xbf");
    INVALID("\xe0\x80\xaf");
    INVALID("\xe0\x9f\xbf");
    INVALID("\xf0\x80\x80\xaf");
    INVALID("\xf0\x8f\xbf\xbf");
}

static void surrogates_and_out_of_range_are_refused(void **state)
{
    (void)state;
    INVALID("\xed\xa0\x80");
    INVALID("\xed\xbf\xbf");
    INVALID("\xed\xa0\x80\xed\xb0\x80");
    INVALID("\xf4\x90\x80\x80");
    INVALID("\xf5\x80\x80\x80");
    INVALID("\xff");
    INVALID("\xfe");
}

static void broken_sequences_are_refused(void **state)
{
    (void)state;
    INVALID("\x80");
    INVALID("a\xbf");
    INVALID("\xc2"); /* truncated at the end */
    INVALID("\xe2\x82");
    INVALID("\xf0\x90\x80");
    INVALID("\xc2\x41"); /* lead without continuation */
    INVALID("\xe2\x82\x41");
    INVALID("\xc2\xc2\x80");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(well_formed_sequences_pass),
        cmocka_unit_test(overlongs_are_refused),
        cmocka_unit_test(surrogates_and_out_of_range_are_refused),
        cmocka_unit_test(broken_sequences_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
