/*
 * common/error_reply.h: the error a process answers a client's WebSocket
 * text frame with when the frame is not handled, so that the client knows
 * which of its messages it was: {"error":CODE} plus, when the frame is a
 * JSON object that holds them, its "command", its "room" (a string of
 * digits, as every reply names rooms) and its "client_id".
 *
 * An interface that cannot queue a frame for the workers answers
 * SERVER_BUSY this way; a page that keeps its unacknowledged messages
 * sends that one again, with the same client_id, a moment later.
 */
#ifndef MC_COMMON_ERROR_REPLY_H
#define MC_COMMON_ERROR_REPLY_H

#include <stddef.h>

#define MC_CLIENT_ID_MAX 64    /* bytes of a client_id echoed; longer ones are left out */
#define MC_COMMAND_NAME_MAX 32 /* bytes of a command name echoed */

/* Writes the error reply to frame[0..len) (any bytes; what is not a JSON
 * object yields {"error":CODE} alone) into a malloc'd NUL-terminated text
 * *out that the caller frees. code is one of common/wire.h's MC_ERROR_*.
 * Returns 0 or MC_ENOMEM. */
int mc_error_reply(const char *code, const char *frame, size_t len, char **out);

#endif
