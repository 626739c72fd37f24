/* The error that answers a frame names the frame's command, room and
 * client_id, whatever the frame holds. */
#include "common/error_reply.h"
#include "common/wire.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void expect(const char *frame, const char *want)
{
    char *out;
    assert_int_equal(mc_error_reply(MC_ERROR_SERVER_BUSY, frame, frame ? strlen(frame) : 0, &out),
                     0);
    assert_string_equal(out, want);
    free(out);
}

static void a_send_is_named_by_its_command_room_and_client_id(void **state)
{
    (void)state;
    expect("{\"command\":\"send\",\"room\":5,\"message\":\"hi\",\"client_id\":\"c-1\"}",
           "{\"error\":\"SERVER_BUSY\",\"command\":\"send\",\"room\":\"5\",\"client_id\":\"c-1\"}");
    expect("{\"command\":\"join\",\"room\":\"12\"}",
           "{\"error\":\"SERVER_BUSY\",\"command\":\"join\",\"room\":\"12\"}");
    expect("{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"x\",\"client_id\":\"w\\\"1\"}",
           "{\"error\":\"SERVER_BUSY\",\"command\":\"whisper\",\"client_id\":\"w\\\"1\"}");
}

static void what_cannot_be_named_is_left_out(void **state)
{
    (void)state;
    const char *bare = "{\"error\":\"SERVER_BUSY\"}";
    expect(NULL, bare);
    expect("", bare);
    expect("not json", bare);
    expect("[1,2]", bare);
    expect("{\"command\":\"send\"", bare); /* cut short */
    expect("{\"room\":0}", bare);
    expect("{\"room\":-3}", bare);
    expect("{\"room\":1.5}", bare);
    expect("{\"room\":\"007\"}", bare);
    expect("{\"room\":\"5a\"}", bare);
    expect("{\"room\":1e300}", bare);
    expect("{\"command\":7,\"client_id\":null}", bare);
    expect("{\"command\":\"\"}", bare);
    char big[200];
    memset(big, 'x', sizeof(big));
    memcpy(big, "{\"client_id\":\"", 14);
    memcpy(big + sizeof(big) - 3, "\"}", 3); /* a client_id over 64 bytes */
    expect(big, bare);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_send_is_named_by_its_command_room_and_client_id),
        cmocka_unit_test(what_cannot_be_named_is_left_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
