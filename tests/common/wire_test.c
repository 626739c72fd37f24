/* The names that cross process boundaries: every process must spell them
 * alike, and the largest ids must fit their buffers. */
#include "common/wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void group_names(void **state)
{
    (void)state;
    char buf[MC_GROUP_NAME_MAX];
    mc_group_room(buf, 5);
    assert_string_equal(buf, "room-5");
    mc_group_user(buf, 7);
    assert_string_equal(buf, "user-7");
    mc_group_session(buf, INT64_MAX);
    assert_string_equal(buf, "session-9223372036854775807");
}

static void a_room_s_group_is_told_from_the_others(void **state)
{
    (void)state;
    char buf[MC_GROUP_NAME_MAX];
    mc_group_room(buf, 12);
    assert_true(mc_group_is_room(buf));
    mc_group_user(buf, 12);
    assert_false(mc_group_is_room(buf));
    mc_group_session(buf, 12);
    assert_false(mc_group_is_room(buf));
    assert_false(mc_group_is_room(MC_GROUP_ROOMS));
    assert_false(mc_group_is_room(MC_GROUP_ROOMS_STAFF));
}

static void a_chat_message_s_send_is_named_by_its_id(void **state)
{
    (void)state;
    char buf[MC_ONCE_NAME_MAX];
    mc_once_message(buf, 42);
    assert_string_equal(buf, "msg-42");
    mc_once_message(buf, INT64_MAX);
    assert_string_equal(buf, "msg-9223372036854775807");
}

/* Our close codes say why in the frame, the RFC's need no reason. */
static void close_codes_have_their_reasons(void **state)
{
    (void)state;
    assert_string_equal(mc_close_reason(MC_CLOSE_SESSION_ENDED), "session ended");
    assert_string_equal(mc_close_reason(MC_CLOSE_RIGHTS_CHANGED), "rights changed");
    assert_null(mc_close_reason(MC_CLOSE_POLICY_VIOLATION));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(group_names),
        cmocka_unit_test(a_room_s_group_is_told_from_the_others),
        cmocka_unit_test(a_chat_message_s_send_is_named_by_its_id),
        cmocka_unit_test(close_codes_have_their_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
