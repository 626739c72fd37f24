#include "common/error.h"
#include "common/log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void every_code_has_a_name_and_a_text(void **state)
{
    (void)state;
    for (int code = MC_OK; code >= MC_ECLOSED; code--) {
        assert_string_not_equal(mc_strerror(code), "unknown error");
        assert_string_not_equal(mc_error_name(code), "MC_E?");
    }
    assert_string_equal(mc_error_name(MC_EFULL), "MC_EFULL");
    assert_string_equal(mc_strerror(MC_EFULL), "channel is full");
}

static void unknown_codes_are_reported_as_unknown(void **state)
{
    (void)state;
    assert_string_equal(mc_strerror(-9999), "unknown error");
    assert_string_equal(mc_error_name(42), "MC_E?");
}

static void log_levels_parse_and_filter(void **state)
{
    (void)state;
    enum mc_log_level level = MC_LOG_INFO;
    assert_int_equal(mc_log_parse_level("warn", &level), 0);
    assert_int_equal(level, MC_LOG_WARN);
    assert_int_equal(mc_log_parse_level("loud", &level), MC_EINVAL);
    assert_int_equal(level, MC_LOG_WARN);

    mc_log_init("error_test", MC_LOG_WARN);
    assert_false(mc_log_enabled(MC_LOG_INFO));
    assert_true(mc_log_enabled(MC_LOG_ERROR));
    mc_log_init("error_test", MC_LOG_OFF);
    assert_false(mc_log_enabled(MC_LOG_ERROR));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_has_a_name_and_a_text),
        cmocka_unit_test(unknown_codes_are_reported_as_unknown),
        cmocka_unit_test(log_levels_parse_and_filter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
