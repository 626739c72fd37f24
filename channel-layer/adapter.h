/*
 * channel-layer/adapter.h: hiredis's asynchronous contexts on a libuv loop.
 *
 * It does what hiredis's adapters/libuv.h does, plus one thing that decides
 * how fast a lost Redis is noticed: when the poll reports a socket error
 * (libuv then stops the handle and calls back with an error status, as it
 * does for a refused or reset connection), hiredis's adapter returns
 * without a word and the context waits until something else drops it.
 * Here the error is handed to hiredis, which reads it from the socket: a
 * connecting context's connect callback runs with REDIS_ERR, a connected
 * context's disconnect callback runs with REDIS_ERR, at once.
 *
 * And it writes differently: hiredis asks to watch the socket for writing
 * after each command and to stop once written, and to read after every
 * read and write, which libuv's poll handle turns into an epoll_ctl to
 * remove the socket and one to add it back, each time, with a turn of the
 * loop to learn that the socket is writable. Here the commands queued in
 * one turn of the loop are written at its end, in one write(2), and the
 * socket is watched for writing only while a connect is in progress or a
 * write was not taken whole; a steady exchange touches epoll not at all.
 */
#ifndef MC_CHANNEL_LAYER_ADAPTER_H
#define MC_CHANNEL_LAYER_ADAPTER_H

#include <hiredis/async.h>
#include <uv.h>

/* Attaches ac (just created, not attached yet) to loop. The adapter's
 * state is freed by hiredis's cleanup hook when ac is freed. Returns
 * REDIS_OK or REDIS_ERR (then ac is unchanged; the caller frees it). */
int chl__uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
