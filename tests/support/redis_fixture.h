/*
 * tests/support/redis_fixture.h: cmocka fixtures for a test program whose
 * tests share one private redis-server (tests/support/redis.h): started
 * before the group, emptied before each test, stopped after the group;
 * channel-layer settings that point at it, and blocking clients of it.
 *
 *   cmocka_unit_test_setup(a_test, ts_redis_fixture_flush), ...
 *   cmocka_run_group_tests(tests, ts_redis_fixture_start, ts_redis_fixture_stop);
 */
#ifndef MC_TESTS_SUPPORT_REDIS_FIXTURE_H
#define MC_TESTS_SUPPORT_REDIS_FIXTURE_H

#include "channel-layer/chl.h"
#include "tests/support/redis.h"

/* The server, once ts_redis_fixture_start has run. */
extern ts_redis_t ts_redis_fixture;

/* Group setup and teardown: start and stop the server. 0, or -1. */
int ts_redis_fixture_start(void **state);
int ts_redis_fixture_stop(void **state);

/* Test setup: empties the server (FLUSHALL). 0, or -1 when it is not. */
int ts_redis_fixture_flush(void **state);

/* The channel layer's defaults, with the server as its Redis. */
chl_config_t ts_redis_fixture_config(void);

/* A blocking client (chl_open) with cfg, or the fixture's settings when
 * cfg is NULL, named name (NULL: a name of its own). Fails the test
 * (cmocka) when it cannot open. */
chl_t *ts_redis_fixture_client(const chl_config_t *cfg, const char *name);

#endif
