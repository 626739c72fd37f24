/*
 * worker/command.h: the client's WebSocket protocol (DESIGN.md, "Client wire
 * protocol"): parsing one text frame into a command, and encoding the
 * server's replies.
 *
 * Parsing takes the frame as (pointer, length) and never trusts it: any
 * problem yields one of the protocol's error codes (MC_ERROR_* of common/wire.h), which the
 * caller sends back as {"error":CODE}; the socket stays open. "room" may be
 * a JSON number or a string of decimal digits; ids in replies are strings,
 * byte for byte as the multichat example sends them.
 *
 * Encoders return a malloc'd, NUL-terminated JSON text in *out that the
 * caller frees, and 0 or MC_ENOMEM. Strings given to them are NUL-terminated
 * and borrowed.
 */
#ifndef MC_WORKER_COMMAND_H
#define MC_WORKER_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"
#include "common/wire.h"
#include "worker/store.h"

#define WRK_MESSAGE_MAX_DEFAULT 4096 /* bytes of one chat message */
#define WRK_HISTORY_DEFAULT 50       /* messages in a join reply, and a history page */
#define WRK_HISTORY_MAX 100          /* the largest history page */
#define WRK_SOCKET_ROOMS_DEFAULT 100 /* rooms one socket may be in (TOO_MANY_ROOMS past it) */
/* The most that limit may be set to: an envelope carries at most
 * MC_ENVELOPE_MAX_GROUPS of a socket's groups, its rooms and the few it
 * has besides (room list, user, session), and joins answered after the
 * limit was checked need room too. */
#define WRK_SOCKET_ROOMS_MAX (MC_ENVELOPE_MAX_GROUPS / 2)
/* The most bytes a reply listing messages or whispers (a join's history, a
 * history page, whispers) takes as the text of its envelope, where its
 * JSON is escaped a second time (a quote costs 4 bytes there, a control
 * character 7): half the channel layer's 1 MiB payload limit, so the rest
 * of the envelope never brings it near. Longer lists are cut, keeping the
 * newest, and say "truncated":true. */
#define WRK_REPLY_BUDGET (512 * 1024)
/* The most one chat message may cost in such a reply, so that every stored
 * message fits in one with room to spare (MESSAGE_TOO_LONG beyond). */
#define WRK_MESSAGE_COST_MAX (WRK_REPLY_BUDGET / 4)

typedef enum wrk_command_kind {
    WRK_CMD_JOIN,
    WRK_CMD_LEAVE,
    WRK_CMD_SEND,
    WRK_CMD_HISTORY,
    WRK_CMD_EDIT,
    WRK_CMD_DELETE,
    WRK_CMD_WHISPER,
    WRK_CMD_WHO,
    WRK_CMD_WHISPERS,
} wrk_command_kind_t;

typedef struct wrk_command {
    wrk_command_kind_t kind;
    const char *name; /* static "join", ...; NULL when the command is unknown */
    int has_room;     /* room was given and valid */
    int64_t room;
    int has_since; /* join, whispers */
    int64_t since;
    int has_before; /* history; without it, the newest messages */
    int64_t before;
    long limit;    /* history: 1..WRK_HISTORY_MAX, default WRK_HISTORY_DEFAULT */
    int64_t id;    /* edit, delete: the message */
    char *message; /* send, edit, whisper: owned, NUL-terminated */
    size_t message_len;
    char to[MC_USERNAME_MAX + 1]; /* whisper */
    /* send, edit, delete, whisper: the client's name for the command,
     * optional, "" when absent */
    char client_id[WRK_CLIENT_ID_MAX + 1];
} wrk_command_t;

/* Parses text[0..len) into *cmd (which need not be initialised; release it
 * with wrk_command_clear, also after an error). message_max bounds a
 * message in bytes. Returns 0, or MC_EINVAL with *code set to a static
 * WRK_E_* string; cmd->name, cmd->room and cmd->client_id then say what
 * could be understood, for the error reply. MC_ENOMEM sets *code to MC_ERROR_SERVER_BUSY.
 *   BAD_REQUEST       not JSON, not an object, a field missing or mistyped
 *   UNKNOWN_COMMAND   "command" names no command
 *   ROOM_INVALID      "room" is not a positive whole number or such a string
 *   MESSAGE_EMPTY     the message is empty or only white space
 *   BAD_REQUEST       the message holds a control character other than
 *                     tab and newline (C0, DEL, C1)
 *   MESSAGE_TOO_LONG  the message exceeds message_max bytes, or would cost
 *                     more than WRK_MESSAGE_COST_MAX in a reply
 *   USER_INVALID      "to" is empty or longer than a username may be */
int wrk_command_parse(const char *text, size_t len, size_t message_max, wrk_command_t *cmd,
                      const char **code);
void wrk_command_clear(wrk_command_t *cmd);

/* The encoders of lists below keep the reply within budget bytes as the
 * text of an envelope (mc_envelope_string_len; WRK_REPLY_BUDGET in the
 * worker): they leave out the oldest entries that do not fit and then say
 * "truncated":true, as they do when the list itself was cut. They return
 * MC_ETOOBIG when the reply exceeds budget without any entry. */

/* {"join":"ID","title":T} and, when history is not NULL, "history":[...]
 * (with "truncated":true when it was cut), and when members is not NULL,
 * "members":[NAMES]. */
int wrk_reply_join(int64_t room, const char *title, const wrk_message_list_t *history,
                   const char *const *members, size_t nmembers, size_t budget, char **out);
/* {"leave":"ID"} */
int wrk_reply_leave(int64_t room, char **out);
/* {"room":"ID","message":M,"username":U,"msg_type":0,"id":N,"ts":MS},
 * plus "edited":MS when edited, plus "own":true when own. */
int wrk_reply_message(const wrk_message_t *m, int own, char **out);
/* {"room":"ID","message":null,"username":U,"msg_type":T} */
int wrk_reply_notice(int64_t room, const char *username, mc_msg_type_t type, char **out);
/* {"error":CODE}, plus "room":"ID" when room > 0, plus "command":C when
 * command is not NULL, plus "client_id":ID when client_id is neither NULL
 * nor "". */
int wrk_reply_error(const char *code, int64_t room, const char *command, const char *client_id,
                    char **out);
/* {"history":"ID","messages":[...]} plus "truncated":true when cut: older
 * messages remain, before the first one given. */
int wrk_reply_history(int64_t room, const wrk_message_list_t *list, size_t budget, char **out);
/* The events below add "client_id":ID when client_id is neither NULL nor
 * "": the copy for the socket whose command caused them. */
/* {"edited":N,"room":"ID","message":M,"ts":MS} */
int wrk_reply_edited(const wrk_message_t *m, const char *client_id, char **out);
/* {"deleted":N,"room":"ID"} */
int wrk_reply_deleted(int64_t id, int64_t room, const char *client_id, char **out);
/* {"whisper":N,"from":F,"to":T,"message":M,"ts":MS} */
int wrk_reply_whisper(const wrk_whisper_t *w, const char *client_id, char **out);
/* {"whispers":[{"whisper":N,...}...]} plus "truncated":true when cut. */
int wrk_reply_whispers(const wrk_whisper_list_t *list, size_t budget, char **out);
/* {"who":"ID","members":[NAMES]} */
int wrk_reply_who(int64_t room, const char *const *members, size_t n, char **out);
/* {"rooms":[{"id":"ID","title":T,"staff_only":B}...]} */
int wrk_reply_rooms(const wrk_room_t *rooms, size_t n, char **out);

#endif
