#include "common/config.h"
#include "common/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

struct settings {
    const char *listen;
    long capacity;
    int verbose;
};

#define OPTIONS(s)                                                                                 \
    {                                                                                              \
        {"--listen", "MC_TEST_LISTEN", MC_OPT_STRING, &(s)->listen, 0, 0, "address"},              \
            {"--capacity", "MC_TEST_CAPACITY", MC_OPT_INT, &(s)->capacity, 1, 1000, "capacity"},   \
            {"--verbose", NULL, MC_OPT_BOOL, &(s)->verbose, 0, 0, "more output"},                  \
    }

static int parse(struct settings *s, int argc, const char **argv, int *first, char *err)
{
    mc_option_t opts[] = OPTIONS(s);
    return mc_config_parse(opts, 3, argc, (char **)argv, first, err, 128);
}

static int setup(void **state)
{
    (void)state;
    unsetenv("MC_TEST_LISTEN");
    unsetenv("MC_TEST_CAPACITY");
    return 0;
}

static void defaults_stay_when_nothing_is_given(void **state)
{
    (void)state;
    struct settings s = {"127.0.0.1:8000", 100, 0};
    const char *argv[] = {"prog"};
    char err[128];
    int first = -1;
    assert_int_equal(parse(&s, 1, argv, &first, err), 0);
    assert_string_equal(s.listen, "127.0.0.1:8000");
    assert_int_equal(s.capacity, 100);
    assert_int_equal(first, 1);
}

static void flags_beat_environment_which_beats_defaults(void **state)
{
    (void)state;
    struct settings s = {"default", 100, 0};
    setenv("MC_TEST_LISTEN", "from-env", 1);
    setenv("MC_TEST_CAPACITY", "7", 1);
    const char *argv[] = {"prog", "--capacity=9", "--verbose", "sub", "--listen"};
    char err[128];
    int first = 0;
    assert_int_equal(parse(&s, 5, argv, &first, err), 0);
    assert_string_equal(s.listen, "from-env");
    assert_int_equal(s.capacity, 9);
    assert_int_equal(s.verbose, 1);
    assert_int_equal(first, 3); /* parsing stops at the subcommand */
}

static void bad_input_is_refused_with_a_sentence(void **state)
{
    (void)state;
    struct settings s = {"x", 100, 0};
    char err[128];
    const char *unknown[] = {"prog", "--colour", "red"};
    assert_int_equal(parse(&s, 3, unknown, NULL, err), MC_EINVAL);
    assert_non_null(strstr(err, "unknown option --colour"));

    const char *range[] = {"prog", "--capacity", "1001"};
    assert_int_equal(parse(&s, 3, range, NULL, err), MC_EINVAL);
    assert_non_null(strstr(err, "from 1 to 1000"));
    assert_int_equal(s.capacity, 100);

    const char *junk[] = {"prog", "--capacity", "12abc"};
    assert_int_equal(parse(&s, 3, junk, NULL, err), MC_EINVAL);

    const char *missing[] = {"prog", "--listen"};
    assert_int_equal(parse(&s, 2, missing, NULL, err), MC_EINVAL);
    assert_non_null(strstr(err, "needs a value"));

    const char *boolean[] = {"prog", "--verbose=maybe"};
    assert_int_equal(parse(&s, 2, boolean, NULL, err), MC_EINVAL);

    setenv("MC_TEST_CAPACITY", "0", 1);
    const char *none[] = {"prog"};
    assert_int_equal(parse(&s, 1, none, NULL, err), MC_EINVAL);
    assert_non_null(strstr(err, "MC_TEST_CAPACITY"));
}

static void a_boolean_takes_the_word_after_it(void **state)
{
    (void)state;
    struct settings s = {"x", 100, 1};
    char err[128];
    int first = 0;
    const char *off[] = {"prog", "--verbose", "off", "--capacity", "5"};
    assert_int_equal(parse(&s, 5, off, &first, err), 0);
    assert_int_equal(s.verbose, 0);
    assert_int_equal(s.capacity, 5); /* the flags after it still count */
    assert_int_equal(first, 5);
    const char *alone[] = {"prog", "--verbose", "sub"};
    assert_int_equal(parse(&s, 3, alone, &first, err), 0);
    assert_int_equal(s.verbose, 1);
    assert_int_equal(first, 2); /* "sub" is not a boolean: a subcommand */
}

static void a_program_without_arguments_refuses_them(void **state)
{
    (void)state;
    struct settings s = {"x", 100, 0};
    char err[128];
    const char *stray[] = {"prog", "--capacity", "5", "stray", "--listen", "y"};
    assert_int_equal(parse(&s, 6, stray, NULL, err), MC_EINVAL);
    assert_non_null(strstr(err, "unexpected argument \"stray\""));
}

static void help_is_recognised(void **state)
{
    (void)state;
    struct settings s = {"x", 100, 0};
    char err[128];
    const char *argv[] = {"prog", "--help"};
    assert_int_equal(parse(&s, 2, argv, NULL, err), MC_CONFIG_HELP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(defaults_stay_when_nothing_is_given, setup),
        cmocka_unit_test_setup(flags_beat_environment_which_beats_defaults, setup),
        cmocka_unit_test_setup(bad_input_is_refused_with_a_sentence, setup),
        cmocka_unit_test_setup(a_boolean_takes_the_word_after_it, setup),
        cmocka_unit_test_setup(a_program_without_arguments_refuses_them, setup),
        cmocka_unit_test_setup(help_is_recognised, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
