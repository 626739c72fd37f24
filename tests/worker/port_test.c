/* The output port (worker/port.c) in a world (tests/support/world.h): the
 * outbox publishes a batch's chat messages together, in order, before
 * anything else; notices can be switched off. */
#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "worker/port.h"
#include "tests/support/world.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void a_batch_publishes_its_messages_together_and_in_order(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);

    /* Two messages in a batch wait for its end... */
    ts_ws_send_in_batch(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"one\"}");
    ts_ws_send_in_batch(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"two\"}");
    assert_false(ts_pending(w, a.channel));
    assert_false(ts_pending(w, b.channel));
    /* ...or for anything else the worker sends, which they never trail. */
    ts_ws_send_in_batch(w, &b, "{\"command\":\"who\",\"room\":1}");
    ts_expect_text_has(w, b.channel, "\"message\":\"one\"");
    ts_expect_text_has(w, b.channel, "\"message\":\"two\",\"username\":\"bob\"");
    ts_expect_text_has(w, b.channel, "{\"who\":\"1\"");
    ts_expect_text_has(w, a.channel, "\"message\":\"one\",\"username\":\"ann\"");
    ts_expect_text_has(w, a.channel, "\"message\":\"two\"");
    ts_ws_send_in_batch(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"three\"}");
    assert_false(ts_pending(w, b.channel));
    wrk_port_flush(&w->app.port);
    ts_expect_text_has(w, b.channel, "\"message\":\"three\"");
    ts_expect_text_has(w, a.channel, "\"own\":true");
}

static void notices_can_be_switched_off(void **state)
{
    ts_world_t *w = *state;
    w->app.port.notify_enter_leave = 0;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    assert_false(ts_pending(w, a.channel));
}

#define T(name) cmocka_unit_test_setup_teardown(name, ts_world_setup, ts_world_teardown)

int main(void)
{
    mc_log_init("port_test", MC_LOG_OFF);
    const struct CMUnitTest tests[] = {
        T(a_batch_publishes_its_messages_together_and_in_order),
        T(notices_can_be_switched_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
