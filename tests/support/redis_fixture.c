/* tests/support/redis_fixture.c: one redis-server for a group of tests
 * (see redis_fixture.h). */
#include "tests/support/redis_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

ts_redis_t ts_redis_fixture;

int ts_redis_fixture_start(void **state)
{
    (void)state;
    return ts_redis_start(&ts_redis_fixture);
}

int ts_redis_fixture_stop(void **state)
{
    (void)state;
    ts_redis_stop(&ts_redis_fixture);
    return 0;
}

int ts_redis_fixture_flush(void **state)
{
    (void)state;
    ts_redis_int(&ts_redis_fixture,
                 "FLUSHALL"); /* a status reply, which ts_redis_int reads as -1 */
    return ts_redis_int(&ts_redis_fixture, "DBSIZE") == 0 ? 0 : -1;
}

chl_config_t ts_redis_fixture_config(void)
{
    chl_config_t cfg;
    chl_config_defaults(&cfg);
    cfg.redis_urls = ts_redis_fixture.url;
    return cfg;
}

chl_t *ts_redis_fixture_client(const chl_config_t *cfg, const char *name)
{
    chl_config_t defaults = ts_redis_fixture_config();
    chl_t *chl = NULL;
    assert_int_equal(chl_open(&chl, cfg ? cfg : &defaults, name), 0);
    assert_non_null(chl);
    return chl;
}
