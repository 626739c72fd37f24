/*
 * common/wire.c: the close reasons, group and once names of common/wire.h.
 */
#include "common/wire.h"
#include "common/json_out.h"
#include "common/sha256.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define ROOM_PREFIX "room-"

/* prefix and v in decimal into buf: the names that go with every message
 * are written without printf. */
static void prefixed(char *buf, const char *prefix, size_t prefix_len, int64_t v)
{
    memcpy(buf, prefix, prefix_len);
    mc_json_int_text(buf + prefix_len, v);
}
#define PREFIXED(buf, literal, v) prefixed(buf, literal, sizeof(literal) - 1, v)
_Static_assert(sizeof("session-") - 1 + MC_JSON_INT_MAX <= MC_GROUP_NAME_MAX,
               "the longest group name fits");
_Static_assert(sizeof("del-") - 1 + MC_JSON_INT_MAX <= MC_ONCE_NAME_MAX,
               "the longest deletion's once name fits");

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
    PREFIXED(buf, ROOM_PREFIX, room);
}

void mc_group_user(char buf[MC_GROUP_NAME_MAX], int64_t user_id)
{
    PREFIXED(buf, "user-", user_id);
}

void mc_group_session(char buf[MC_GROUP_NAME_MAX], int64_t session_id)
{
    PREFIXED(buf, "session-", session_id);
}

int mc_group_is_room(const char *group)
{
    return strncmp(group, ROOM_PREFIX, sizeof(ROOM_PREFIX) - 1) == 0;
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
    PREFIXED(buf, "del-", id);
}

void mc_once_whisper(char buf[MC_ONCE_NAME_MAX], int64_t id, int to_sender)
{
    snprintf(buf, MC_ONCE_NAME_MAX, "wsp-%" PRId64 "-%s", id, to_sender ? "from" : "to");
}
