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

/* An edit is named by what makes it one edit: its message, its author and
 * the client's name for it; never by its text. */
static void edits_deletions_and_whispers_are_named(void **state)
{
    (void)state;
    char a[MC_ONCE_NAME_MAX], b[MC_ONCE_NAME_MAX];
    mc_once_edit(a, 7, 1, "c1");
    mc_once_edit(b, 7, 1, "c1");
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 5 + 24);
    assert_memory_equal(a, "edit-", 5);
    mc_once_edit(b, 7, 1, "c2");
    assert_string_not_equal(a, b);
    mc_once_edit(b, 8, 1, "c1");
    assert_string_not_equal(a, b);
    mc_once_edit(b, 7, 2, "c1");
    assert_string_not_equal(a, b);
    char key[600];
    memset(key, 'k', sizeof(key) - 1);
    key[sizeof(key) - 1] = '\0';
    mc_once_edit(b, INT64_MAX, INT64_MAX, key); /* fits, whatever the key */
    assert_int_equal(strlen(b), 5 + 24);

    mc_once_delete(a, INT64_MAX);
    assert_string_equal(a, "del-9223372036854775807");
    mc_once_whisper(a, INT64_MAX, 0);
    assert_string_equal(a, "wsp-9223372036854775807-to");
    mc_once_whisper(a, 3, 1);
    assert_string_equal(a, "wsp-3-from");
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
        cmocka_unit_test(edits_deletions_and_whispers_are_named),
        cmocka_unit_test(a_room_s_group_is_told_from_the_others),
        cmocka_unit_test(close_codes_have_their_reasons),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
