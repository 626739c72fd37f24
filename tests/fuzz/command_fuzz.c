/* Fuzz target of worker/command.c: any frame parses or yields a protocol
 * error code, and a parsed command encodes back without trouble. */
#include "worker/command.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wrk_command_t cmd;
    const char *code;
    int rc = wrk_command_parse((const char *)data, size, 256, &cmd, &code);
    char *out = NULL;
    if (rc == 0) {
        if (cmd.message && strlen(cmd.message) != cmd.message_len)
            __builtin_trap();
        wrk_message_t m = {.id = 1,
                           .room_id = cmd.room,
                           .username = "fuzz",
                           .body = cmd.message ? cmd.message : (char *)"",
                           .created_ms = 1};
        m.body_len = strlen(m.body);
        if (wrk_reply_message(&m, 1, &out) == 0)
            free(out);
    } else {
        if (!code)
            __builtin_trap();
        if (wrk_reply_error(code, cmd.has_room ? cmd.room : 0, cmd.name, cmd.client_id, &out) == 0)
            free(out);
    }
    wrk_command_clear(&cmd);
    return 0;
}
