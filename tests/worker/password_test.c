#include "common/error.h"
#include "common/clock.h"
#include "worker/password.h"
#include "worker/token.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* Small parameters keep the test fast; the defaults are checked separately. */
#define TEST_M 256
#define TEST_T 2

static void a_hash_verifies_its_password_only(void **state)
{
    (void)state;
    wrk_password_t pw;
    assert_int_equal(wrk_password_init(&pw, TEST_M, TEST_T, 1), 0);
    char hash[WRK_PASSWORD_HASH_MAX];
    assert_int_equal(wrk_password_hash(&pw, "s3cret", 6, hash), 0);
    assert_non_null(strstr(hash, "$argon2id$v=19$m=256,t=2,p=1$"));
    assert_int_equal(wrk_password_verify(&pw, hash, "s3cret", 6), 0);
    assert_int_equal(wrk_password_verify(&pw, hash, "s3cres", 6), MC_EDENIED);
    assert_int_equal(wrk_password_verify(&pw, hash, "s3cre", 5), MC_EDENIED);
    assert_int_equal(wrk_password_verify(&pw, hash, "", 0), MC_EDENIED);
}

static void the_same_password_hashes_differently(void **state)
{
    (void)state;
    wrk_password_t pw;
    assert_int_equal(wrk_password_init(&pw, TEST_M, TEST_T, 1), 0);
    char a[WRK_PASSWORD_HASH_MAX], b[WRK_PASSWORD_HASH_MAX];
    assert_int_equal(wrk_password_hash(&pw, "pw", 2, a), 0);
    assert_int_equal(wrk_password_hash(&pw, "pw", 2, b), 0);
    assert_string_not_equal(a, b);
}

static void no_user_and_bad_hashes_never_match(void **state)
{
    (void)state;
    wrk_password_t pw;
    assert_int_equal(wrk_password_init(&pw, TEST_M, TEST_T, 1), 0);
    assert_int_equal(wrk_password_verify(&pw, NULL, "anything", 8), MC_EDENIED);
    assert_int_equal(wrk_password_verify(&pw, "not a hash", "x", 1), MC_EDENIED);
    assert_int_equal(wrk_password_verify(&pw, "", "", 0), MC_EDENIED);
}

static void an_unknown_user_costs_one_verification(void **state)
{
    (void)state;
    /* Parameters large enough that argon2 dominates the time measured. */
    wrk_password_t pw;
    assert_int_equal(wrk_password_init(&pw, 4096, 3, 1), 0);
    char hash[WRK_PASSWORD_HASH_MAX];
    assert_int_equal(wrk_password_hash(&pw, "right", 5, hash), 0);
    int64_t known = 0, unknown = 0;
    for (int i = 0; i < 3; i++) {
        int64_t t0 = mc_mono_ms();
        wrk_password_verify(&pw, hash, "wrong", 5);
        int64_t t1 = mc_mono_ms();
        wrk_password_verify(&pw, NULL, "wrong", 5);
        int64_t t2 = mc_mono_ms();
        known += t1 - t0;
        unknown += t2 - t1;
    }
    /* Within a factor of two either way (the noise of a shared machine). */
    assert_true(unknown * 2 + 6 >= known);
    assert_true(known * 2 + 6 >= unknown);
}

static void over_long_passwords_are_refused(void **state)
{
    (void)state;
    wrk_password_t pw;
    assert_int_equal(wrk_password_init(&pw, TEST_M, TEST_T, 1), 0);
    size_t n = WRK_PASSWORD_MAX_BYTES + 1;
    char *big = calloc(1, n + 1);
    memset(big, 'x', n);
    char hash[WRK_PASSWORD_HASH_MAX];
    assert_int_equal(wrk_password_hash(&pw, big, n, hash), MC_ETOOBIG);
    assert_int_equal(wrk_password_hash(&pw, big, n - 1, hash), 0);
    assert_int_equal(wrk_password_verify(&pw, hash, big, n), MC_EDENIED);
    assert_int_equal(wrk_password_verify(&pw, hash, big, n - 1), 0);
    free(big);
}

static void bad_parameters_are_refused(void **state)
{
    (void)state;
    wrk_password_t pw;
    assert_int_equal(wrk_password_init(&pw, 1, 1, 1), MC_EINVAL);
    assert_int_equal(wrk_password_init(&pw, TEST_M, 0, 1), MC_EINVAL);
}

static void defaults_meet_the_owasp_minimum(void **state)
{
    (void)state;
    assert_true(WRK_PASSWORD_DEFAULT_M_KIB >= 19456);
    assert_true(WRK_PASSWORD_DEFAULT_T >= 2);
    assert_true(WRK_PASSWORD_DEFAULT_P >= 1);
}

static void tokens_are_fresh_hex(void **state)
{
    (void)state;
    char a[WRK_TOKEN_HEX_LEN + 1], b[WRK_TOKEN_HEX_LEN + 1];
    assert_int_equal(wrk_token_new(a), 0);
    assert_int_equal(wrk_token_new(b), 0);
    assert_int_equal(strlen(a), 32);
    assert_true(wrk_token_valid(a, strlen(a)));
    assert_string_not_equal(a, b);
    assert_false(wrk_token_valid("0123", 4));
    assert_false(wrk_token_valid("0123456789abcdef0123456789abcdeG", 32));
    assert_false(wrk_token_valid("0123456789ABCDEF0123456789abcdef", 32));
    assert_true(wrk_token_equal(a, 32, a, 32));
    assert_false(wrk_token_equal(a, 32, b, 32));
    assert_false(wrk_token_equal(a, 32, a, 31));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_hash_verifies_its_password_only),
        cmocka_unit_test(the_same_password_hashes_differently),
        cmocka_unit_test(no_user_and_bad_hashes_never_match),
        cmocka_unit_test(an_unknown_user_costs_one_verification),
        cmocka_unit_test(over_long_passwords_are_refused),
        cmocka_unit_test(bad_parameters_are_refused),
        cmocka_unit_test(defaults_meet_the_owasp_minimum),
        cmocka_unit_test(tokens_are_fresh_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
