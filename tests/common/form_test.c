#include "common/error.h"
#include "common/form.h"
#include "tests/support/guard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static int parse(mc_form_t *f, const char *s)
{
    guard_t g;
    const char *p = (const char *)guard_copy(&g, s, strlen(s));
    int rc = mc_form_parse(f, p, strlen(s));
    guard_free(&g);
    return rc;
}

static void fields_are_decoded(void **state)
{
    (void)state;
    mc_form_t f;
    assert_int_equal(parse(&f, "username=ann&password=a+b%21%2B&next=%2F"), 0);
    assert_int_equal(f.nfields, 3);
    assert_string_equal(mc_form_get(&f, "username", NULL), "ann");
    size_t len;
    assert_string_equal(mc_form_get(&f, "password", &len), "a b!+");
    assert_int_equal(len, 5);
    assert_string_equal(mc_form_get(&f, "next", NULL), "/");
    assert_null(mc_form_get(&f, "missing", NULL));
    mc_form_clear(&f);
    mc_form_clear(&f);
}

static void empty_fields_and_missing_values(void **state)
{
    (void)state;
    mc_form_t f;
    assert_int_equal(parse(&f, "&&a&b=&=c&&"), 0);
    assert_int_equal(f.nfields, 3);
    assert_string_equal(mc_form_get(&f, "a", NULL), "");
    assert_string_equal(mc_form_get(&f, "b", NULL), "");
    assert_string_equal(mc_form_get(&f, "", NULL), "c");
    mc_form_clear(&f);
    assert_int_equal(parse(&f, ""), 0);
    assert_int_equal(f.nfields, 0);
    mc_form_clear(&f);
}

static void first_of_repeated_names_wins(void **state)
{
    (void)state;
    mc_form_t f;
    assert_int_equal(parse(&f, "a=1&a=2"), 0);
    assert_string_equal(mc_form_get(&f, "a", NULL), "1");
    mc_form_clear(&f);
}

static void nul_bytes_keep_their_length(void **state)
{
    (void)state;
    mc_form_t f;
    assert_int_equal(parse(&f, "a=x%00y"), 0);
    size_t len;
    const char *v = mc_form_get(&f, "a", &len);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "x\0y", 3);
    mc_form_clear(&f);
}

static void bad_escapes_are_refused(void **state)
{
    (void)state;
    mc_form_t f;
    assert_int_equal(parse(&f, "a=%"), MC_EINVAL);
    assert_int_equal(parse(&f, "a=%4"), MC_EINVAL);
    assert_int_equal(parse(&f, "a=%zz"), MC_EINVAL);
    assert_int_equal(parse(&f, "%g1=b"), MC_EINVAL);
    assert_null(f.buf);
}

static void limits_are_enforced(void **state)
{
    (void)state;
    mc_form_t f;
    char *big = malloc(MC_FORM_MAX_BYTES + 2);
    memset(big, 'a', MC_FORM_MAX_BYTES + 1);
    big[MC_FORM_MAX_BYTES + 1] = '\0';
    assert_int_equal(mc_form_parse(&f, big, MC_FORM_MAX_BYTES + 1), MC_ETOOBIG);
    assert_int_equal(mc_form_parse(&f, big, MC_FORM_MAX_BYTES), 0);
    mc_form_clear(&f);
    /* MC_FORM_MAX_FIELDS fields pass, one more does not. */
    size_t n = 0;
    for (int i = 0; i <= MC_FORM_MAX_FIELDS; i++) {
        big[n++] = 'k';
        big[n++] = '&';
    }
    assert_int_equal(mc_form_parse(&f, big, n - 2), 0);
    assert_int_equal(f.nfields, MC_FORM_MAX_FIELDS);
    mc_form_clear(&f);
    assert_int_equal(mc_form_parse(&f, big, n), MC_ETOOBIG);
    free(big);
}

static void every_prefix_parses_without_overread(void **state)
{
    (void)state;
    const char *s = "username=ann%20b&password=x+y&next=%2Fchat%2F";
    for (size_t cut = 0; cut <= strlen(s); cut++) {
        guard_t g;
        const char *p = (const char *)guard_copy(&g, s, cut);
        mc_form_t f;
        int rc = mc_form_parse(&f, p, cut);
        assert_true(rc == 0 || rc == MC_EINVAL);
        mc_form_clear(&f);
        guard_free(&g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_are_decoded),
        cmocka_unit_test(empty_fields_and_missing_values),
        cmocka_unit_test(first_of_repeated_names_wins),
        cmocka_unit_test(nul_bytes_keep_their_length),
        cmocka_unit_test(bad_escapes_are_refused),
        cmocka_unit_test(limits_are_enforced),
        cmocka_unit_test(every_prefix_parses_without_overread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
