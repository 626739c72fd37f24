/* hiredis on libuv, with socket errors passed on (adapter.h). */
#include "channel-layer/adapter.h"

#include <stdlib.h>

typedef struct uv_events {
    redisAsyncContext *ac; /* NULL once hiredis let go of it */
    uv_poll_t poll;
    int events;
} uv_events_t;

static void on_poll(uv_poll_t *handle, int status, int events)
{
    uv_events_t *e = handle->data;
    if (status < 0) {
        /* libuv has stopped the handle. Reading finds the socket's error
         * (or the end of the stream) and makes hiredis give up on the
         * connection, running its connect or disconnect callback; should
         * the read find nothing, hiredis asks to read again. */
        if (e->ac)
            redisAsyncHandleRead(e->ac);
        return;
    }
    if (e->ac && (events & UV_READABLE))
        redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE))
        redisAsyncHandleWrite(e->ac);
}

/* Starts (or restarts: libuv may have stopped the handle) what is asked. */
static void update(uv_events_t *e, int events)
{
    e->events = events;
    if (events)
        uv_poll_start(&e->poll, events, on_poll);
    else
        uv_poll_stop(&e->poll);
}

static void add_read(void *priv)
{
    uv_events_t *e = priv;
    update(e, e->events | UV_READABLE);
}

static void del_read(void *priv)
{
    uv_events_t *e = priv;
    update(e, e->events & ~UV_READABLE);
}

static void add_write(void *priv)
{
    uv_events_t *e = priv;
    update(e, e->events | UV_WRITABLE);
}

static void del_write(void *priv)
{
    uv_events_t *e = priv;
    update(e, e->events & ~UV_WRITABLE);
}

static void on_closed(uv_handle_t *handle)
{
    free(handle->data);
}

static void cleanup(void *priv)
{
    uv_events_t *e = priv;
    e->ac = NULL; /* hiredis is freeing it */
    uv_close((uv_handle_t *)&e->poll, on_closed);
}

int chl__uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (ac->ev.data)
        return REDIS_ERR;
    uv_events_t *e = calloc(1, sizeof(*e));
    if (!e)
        return REDIS_ERR;
    if (uv_poll_init(loop, &e->poll, ac->c.fd) != 0) {
        free(e);
        return REDIS_ERR;
    }
    e->ac = ac;
    e->poll.data = e;
    ac->ev.data = e;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return REDIS_OK;
}
