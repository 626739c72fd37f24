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
