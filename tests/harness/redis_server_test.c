/* The private Redis that the integration tests stand on: it starts on a free
 * port, answers, survives a restart on the same port, and goes away. */
#include "tests/support/redis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

static void private_redis_starts_restarts_and_stops(void **state)
{
    (void)state;
    ts_redis_t r;
    assert_int_equal(ts_redis_start(&r), 0);
    assert_true(r.port > 0);
    assert_int_equal(ts_redis_int(&r, "RPUSH probe %s", "x"), 1);
    assert_int_equal(ts_redis_int(&r, "LLEN probe"), 1);

    int port = r.port;
    assert_int_equal(ts_redis_restart(&r), 0);
    assert_int_equal(r.port, port);
    assert_int_equal(ts_redis_int(&r, "LLEN probe"), 0); /* it saves nothing */

    char dir[64];
    snprintf(dir, sizeof(dir), "%s", r.dir);
    ts_redis_stop(&r);
    assert_int_equal(ts_redis_int(&r, "PING"), -1);
    assert_int_not_equal(access(dir, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(private_redis_starts_restarts_and_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
