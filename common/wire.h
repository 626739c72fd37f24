/*
 * common/wire.h: the names and numbers that cross process boundaries, so
 * that interfaces, workers and the browser client agree on each of them in
 * one place: WebSocket close codes, the protocol's error codes and message
 * types, the worker queue, the names of the groups workers put sockets in,
 * and the names workers give the group sends of chat messages, edits,
 * deletions and whispers. docs/protocol.md lists them
 * for clients; web/static/chat.js acts on the close codes.
 */
#ifndef MC_COMMON_WIRE_H
#define MC_COMMON_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Close codes: RFC 6455 section 7.4.1 and the IANA registry, then ours
 * (4000-4999 are for applications). */
typedef enum mc_close_code {
    MC_CLOSE_NORMAL = 1000,
    MC_CLOSE_GOING_AWAY = 1001,
    MC_CLOSE_PROTOCOL_ERROR = 1002,
    MC_CLOSE_UNSUPPORTED_DATA = 1003,
    MC_CLOSE_NO_STATUS = 1005, /* never sent: "the close frame had no code" */
    MC_CLOSE_ABNORMAL = 1006,  /* never sent: "the connection dropped" */
    MC_CLOSE_INVALID_DATA = 1007,
    MC_CLOSE_POLICY_VIOLATION = 1008,
    MC_CLOSE_TOO_BIG = 1009,
    MC_CLOSE_MANDATORY_EXTENSION = 1010,
    MC_CLOSE_INTERNAL_ERROR = 1011,
    MC_CLOSE_SERVICE_RESTART = 1012,
    MC_CLOSE_TRY_AGAIN_LATER = 1013,
    MC_CLOSE_SESSION_ENDED = 4001,  /* the login is over: the page goes to the login form */
    MC_CLOSE_RIGHTS_CHANGED = 4002, /* still logged in, with other rights (staff gained or
                                     * lost): the page reconnects at once for a fresh scope */
} mc_close_code_t;

/* The reasons that go with our close codes, in the close frame. */
#define MC_CLOSE_REASON_SESSION_ENDED "session ended"
#define MC_CLOSE_REASON_RIGHTS_CHANGED "rights changed"

/* The reason a close frame with code carries: one of the above, or NULL
 * (the RFC's codes say enough). */
const char *mc_close_reason(int code);

/* The protocol's error codes: {"error":CODE}. */
#define MC_ERROR_BAD_REQUEST "BAD_REQUEST"
#define MC_ERROR_UNKNOWN_COMMAND "UNKNOWN_COMMAND"
#define MC_ERROR_MESSAGE_EMPTY "MESSAGE_EMPTY"
#define MC_ERROR_MESSAGE_TOO_LONG "MESSAGE_TOO_LONG"
#define MC_ERROR_MESSAGE_INVALID "MESSAGE_INVALID"
#define MC_ERROR_ROOM_INVALID "ROOM_INVALID"
#define MC_ERROR_ROOM_ACCESS_DENIED "ROOM_ACCESS_DENIED"
#define MC_ERROR_USER_HAS_TO_LOGIN "USER_HAS_TO_LOGIN"
#define MC_ERROR_USER_INVALID "USER_INVALID"
#define MC_ERROR_NOT_ALLOWED "NOT_ALLOWED"
#define MC_ERROR_RATE_LIMITED "RATE_LIMITED"
#define MC_ERROR_SERVER_BUSY "SERVER_BUSY"
#define MC_ERROR_TOO_MANY_ROOMS "TOO_MANY_ROOMS"

/* The event that tells a socket that messages for it may have been lost
 * (its interface lost Redis for a while): {"resync":true}. Its client
 * joins its rooms again with since, asks for whispers since, and sends
 * again what it has not seen come back. */
#define MC_EVENT_RESYNC "resync"

/* msg_type of a room event, as the multichat example numbers them. */
typedef enum mc_msg_type {
    MC_MSG_MESSAGE = 0,
    MC_MSG_WARNING = 1,
    MC_MSG_ALERT = 2,
    MC_MSG_MUTED = 3,
    MC_MSG_ENTER = 4,
    MC_MSG_LEAVE = 5,
} mc_msg_type_t;

/* The reliable queue interfaces push every envelope for workers onto. */
#define MC_WORKER_QUEUE "worker"

/* Groups every socket joins, besides its rooms. */
#define MC_GROUP_ROOMS "rooms"             /* non-staff sockets: the room list */
#define MC_GROUP_ROOMS_STAFF "rooms-staff" /* staff sockets: the room list */

/* The longest group name below, with its NUL. */
#define MC_GROUP_NAME_MAX 32

/* Writes the name of a group into buf (MC_GROUP_NAME_MAX bytes):
 * room 5 is "room-5"; every socket of user 7 is in "user-7"; every socket
 * opened with session 9 (its id, never its token) is in "session-9". */
void mc_group_room(char buf[MC_GROUP_NAME_MAX], int64_t room);
void mc_group_user(char buf[MC_GROUP_NAME_MAX], int64_t user_id);
void mc_group_session(char buf[MC_GROUP_NAME_MAX], int64_t session_id);
/* Whether group is a room's group ("room-<id>"). */
int mc_group_is_room(const char *group);

/* The names of group sends that a replay must not deliver twice (a chat
 * message needs none: its id is its seq, chl_group_msg_t). The longest,
 * with its NUL: */
#define MC_ONCE_NAME_MAX 32

/* The name of the room's copy of an edit of message id by user_id, which
 * the client named key (its client_id, else the interface's id of the
 * envelope; its first 256 bytes): "edit-" and 24 hex digits of their
 * SHA-256. The same edit
 * handled again (a replay, or the client sending it again) is named alike;
 * another edit, of the same text or not, is not. */
void mc_once_edit(char buf[MC_ONCE_NAME_MAX], int64_t id, int64_t user_id, const char *key);
/* The name of the room's copy of the deletion of message id: "del-<id>"
 * (a message is deleted once, by whoever deletes it first). */
void mc_once_delete(char buf[MC_ONCE_NAME_MAX], int64_t id);
/* The names of whisper id's copies to its recipient's sockets and to its
 * sender's: "wsp-<id>-to" and "wsp-<id>-from". */
void mc_once_whisper(char buf[MC_ONCE_NAME_MAX], int64_t id, int to_sender);

#endif
