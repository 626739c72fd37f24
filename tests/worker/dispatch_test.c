/* The dispatch of envelopes (worker/dispatch.c) in a world
 * (tests/support/world.h). */
#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "worker/dispatch.h"
#include "tests/support/world.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void undecodable_envelopes_are_dropped(void **state)
{
    ts_world_t *w = *state;
    assert_int_equal(wrk_dispatch_envelope(&w->app, "nope", 4), MC_EINVAL);
    const char *send = "{\"type\":\"websocket.send\",\"text\":\"x\"}";
    assert_int_equal(wrk_dispatch_envelope(&w->app, send, strlen(send)), MC_EINVAL);
    assert_int_equal(w->fake.nout, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, ts_world_setup, ts_world_teardown)

int main(void)
{
    mc_log_init("dispatch_test", MC_LOG_OFF);
    const struct CMUnitTest tests[] = {
        T(undecodable_envelopes_are_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
