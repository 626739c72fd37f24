/* Device cookies (worker/device.c): made, checked, and refused when
 * altered in any byte, cut, signed with another key or malformed. */
#include "common/error.h"
#include "worker/device.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static const char key[] = "k-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd";

static void a_made_cookie_checks_out(void **state)
{
    (void)state;
    char c[WRK_DEVICE_MAX + 1], d[WRK_DEVICE_MAX + 1], id[WRK_DEVICE_ID_LEN + 1];
    assert_int_equal(wrk_device_make(key, 42, c), 0);
    assert_int_equal(wrk_device_make(key, 42, d), 0);
    assert_string_not_equal(c, d); /* a fresh device id each time */
    assert_int_equal(strncmp(c, "42.", 3), 0);
    int64_t uid = 0;
    assert_int_equal(wrk_device_check(key, c, strlen(c), &uid, id), 0);
    assert_int_equal(uid, 42);
    assert_memory_equal(id, c + 3, WRK_DEVICE_ID_LEN);
    assert_int_equal(strlen(id), WRK_DEVICE_ID_LEN);
}

static void any_altered_byte_is_refused(void **state)
{
    (void)state;
    char c[WRK_DEVICE_MAX + 1], id[WRK_DEVICE_ID_LEN + 1];
    int64_t uid;
    assert_int_equal(wrk_device_make(key, 7, c), 0);
    size_t n = strlen(c);
    for (size_t i = 0; i < n; i++) {
        char saved = c[i];
        c[i] = saved == '1' ? '2' : '1';
        if (wrk_device_check(key, c, n, &uid, id) == 0)
            fail_msg("byte %zu altered and still accepted", i);
        c[i] = saved;
    }
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(wrk_device_check(key, c, cut, &uid, id), MC_EINVAL);
    assert_int_equal(wrk_device_check("another key", c, n, &uid, id), MC_EINVAL);
    assert_int_equal(wrk_device_check(key, c, n, &uid, id), 0);
}

static void malformed_cookies_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "7",
        "0.0123456789abcdef0123456789abcdef."
        "0123456789abcdef0123456789abcdef0123456789abcdef01234567"
        "89abcdef",
        "-7.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef0123456789abcdef012345"
        "6789abcdef",
        "99999999999999999999.0123456789abcdef0123456789abcdef.0123456789abcdef0123456789abcdef0123"
        "456789abcdef0123456789abcdef",
        "7.0123456789ABCDEF0123456789abcdef.0123456789abcdef0123456789abcdef0123456789abcdef0123456"
        "789abcdef",
    };
    int64_t uid;
    char id[WRK_DEVICE_ID_LEN + 1];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(wrk_device_check(key, bad[i], strlen(bad[i]), &uid, id), MC_EINVAL);
    char big[WRK_DEVICE_MAX + 2];
    memset(big, '1', sizeof(big));
    assert_int_equal(wrk_device_check(key, big, sizeof(big), &uid, id), MC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_made_cookie_checks_out),
        cmocka_unit_test(any_altered_byte_is_refused),
        cmocka_unit_test(malformed_cookies_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
