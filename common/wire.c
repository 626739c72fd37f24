/*
 * common/wire.c: the close reasons, group and once names of common/wire.h.
 */
#include "common/wire.h"
#include "common/sha256.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define ROOM_PREFIX "room-"

const char *mc_close_reason(int code)
{
    switch (code) {
    case MC_CLOSE_SESSION_ENDED:
        return MC_CLOSE_REASON_SESSION_ENDED;
    case MC_CLOSE_RIGHTS_CHANGED:
        return MC_CLOSE_REASON_RIGHTS_CHANGED;
    default:
        return NULL;
    }
}

void mc_group_room(char buf[MC_GROUP_NAME_MAX], int64_t room)
{
    snprintf(buf, MC_GROUP_NAME_MAX, ROOM_PREFIX "%" PRId64, room);
}

void mc_group_user(char buf[MC_GROUP_NAME_MAX], int64_t user_id)
{
    snprintf(buf, MC_GROUP_NAME_MAX, "user-%" PRId64, user_id);
}

void mc_group_session(char buf[MC_GROUP_NAME_MAX], int64_t session_id)
{
    snprintf(buf, MC_GROUP_NAME_MAX, "session-%" PRId64, session_id);
}

int mc_group_is_room(const char *group)
{
    return strncmp(group, ROOM_PREFIX, sizeof(ROOM_PREFIX) - 1) == 0;
}

void mc_once_message(char buf[MC_ONCE_NAME_MAX], int64_t id)
{
    snprintf(buf, MC_ONCE_NAME_MAX, "msg-%" PRId64, id);
}

void mc_once_edit(char buf[MC_ONCE_NAME_MAX], int64_t id, int64_t user_id, const char *key)
{
    char text[64 + 256];
    int n = snprintf(text, sizeof(text), "%" PRId64 ":%" PRId64 ":%s", id, user_id, key);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
    char hex[MC_SHA256_HEX_LEN + 1];
    mc_sha256_hex(text, len, hex);
    snprintf(buf, MC_ONCE_NAME_MAX, "edit-%.24s", hex);
}

void mc_once_delete(char buf[MC_ONCE_NAME_MAX], int64_t id)
{
    snprintf(buf, MC_ONCE_NAME_MAX, "del-%" PRId64, id);
}

void mc_once_whisper(char buf[MC_ONCE_NAME_MAX], int64_t id, int to_sender)
{
    snprintf(buf, MC_ONCE_NAME_MAX, "wsp-%" PRId64 "-%s", id, to_sender ? "from" : "to");
}
