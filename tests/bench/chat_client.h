/*
 * tests/bench/chat_client.h: chat-bench's WebSockets, the client side of
 * the protocol on one libuv loop.
 *
 * A socket connects (from its source address, to its server: socket i
 * goes to server (i / R) mod T, so that with several servers every room
 * has members on each), sends the upgrade with its user's cookies (none in
 * the echo mode) and checks Sec-WebSocket-Accept; then it writes masked
 * frames and reads the server's, answering pings and closes by itself,
 * compressing and inflating where permessage-deflate was agreed. What the
 * scenario must know arrives through b->hooks (chat_state.h): a socket
 * opened, a text message, a closed handle, every socket connected.
 *
 * The measured sockets b->clients[0 .. --clients) are connected by
 * client_connect_more, at most --connect-parallel handshakes at a time;
 * b->connecting, connected, failed and closed_early count them (flooders
 * are not counted). Nothing here blocks, and nothing is freed under a
 * running callback: a closed socket's memory stays in its array.
 */
#ifndef MC_TESTS_BENCH_CHAT_CLIENT_H
#define MC_TESTS_BENCH_CHAT_CLIENT_H

#include "tests/bench/chat_state.h"

/* Starts connecting socket c (its state, b, idx set; handle not open). */
void client_connect(bench_t *b, client_t *c);

/* Connects measured sockets while fewer than --connect-parallel are in
 * flight and some are left (phase 0); once every one is open or failed,
 * calls b->hooks->all_connected. */
void client_connect_more(bench_t *b);

/* Sends one frame with FIN set, masked as a client must: a text or binary
 * message is compressed when the socket agreed permessage-deflate and it
 * shrinks. What the socket does not take now is queued; a socket that
 * cannot write is closed. Nothing happens on a closed socket. */
void client_send_frame(client_t *c, int opcode, const void *payload, size_t len);

/* Closes c's socket (once; a socket never opened is left alone); its
 * handle is closed later, then b->hooks->closed runs. */
void client_close(client_t *c);

#endif
