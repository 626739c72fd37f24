/* hiredis on libuv, with socket errors passed on and output written once
 * a loop turn (adapter.h). */
#include "channel-layer/adapter.h"

#include <stdlib.h>

typedef struct uv_events {
    redisAsyncContext *ac; /* NULL once hiredis let go of it */
    uv_poll_t poll;
    uv_check_t check;     /* after the turn's I/O callbacks: writes what they queued */
    uv_prepare_t prepare; /* before the loop waits: writes what timers queued */
    int events;           /* what the poll handle watches now */
    int queued;           /* output waits for the end of the turn */
    int writing;          /* inside redisAsyncHandleWrite */
    int handles;          /* uv handles not closed yet */
} uv_events_t;

static void on_poll(uv_poll_t *handle, int status, int events);

/* Watches what is asked, touching the poll handle (an epoll_ctl or two)
 * only when that changes. */
static void watch(uv_events_t *e, int events)
{
    if (events == e->events)
        return;
    e->events = events;
    if (events)
        uv_poll_start(&e->poll, events, on_poll);
    else
        uv_poll_stop(&e->poll);
}

static void write_out(uv_events_t *e)
{
    e->writing = 1;
    redisAsyncHandleWrite(e->ac); /* may free the context: then e->ac is NULL */
    e->writing = 0;
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    uv_events_t *e = handle->data;
    if (status < 0) {
        /* libuv has stopped the handle. Reading finds the socket's error
         * (or the end of the stream) and makes hiredis give up on the
         * connection, running its connect or disconnect callback; should
         * the read find nothing, hiredis asks to read again. */
        e->events = 0;
        if (e->ac)
            redisAsyncHandleRead(e->ac);
        return;
    }
    if (e->ac && (events & UV_READABLE))
        redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE))
        write_out(e);
}

static void unqueue(uv_events_t *e)
{
    if (!e->queued)
        return;
    e->queued = 0;
    uv_check_stop(&e->check);
    uv_prepare_stop(&e->prepare);
}

static void flush(uv_events_t *e)
{
    unqueue(e);
    if (e->ac)
        write_out(e);
}

static void on_check(uv_check_t *h)
{
    flush(h->data);
}

static void on_prepare(uv_prepare_t *h)
{
    flush(h->data);
}

/* hiredis keeps asking to read after every read and write: only the first
 * ask changes anything. */
static void add_read(void *priv)
{
    uv_events_t *e = priv;
    watch(e, e->events | UV_READABLE);
}

static void del_read(void *priv)
{
    uv_events_t *e = priv;
    watch(e, e->events & ~UV_READABLE);
}

/* A command was queued. Rather than wait for the socket to be writable (it
 * nearly always is: a turn of the loop, and an epoll_ctl to watch for it
 * and another to stop), everything queued in one turn is written at its
 * end, in one write(2). Only a connect in progress, or a write that the
 * socket did not take whole, waits for writability. */
static void add_write(void *priv)
{
    uv_events_t *e = priv;
    if (e->events & UV_WRITABLE)
        return;
    if (e->writing || !(e->ac->c.flags & REDIS_CONNECTED)) {
        unqueue(e);
        watch(e, e->events | UV_WRITABLE);
        return;
    }
    if (!e->queued) {
        e->queued = 1;
        uv_check_start(&e->check, on_check);
        uv_prepare_start(&e->prepare, on_prepare);
    }
}

static void del_write(void *priv)
{
    uv_events_t *e = priv;
    unqueue(e);
    watch(e, e->events & ~UV_WRITABLE);
}

static void on_closed(uv_handle_t *handle)
{
    uv_events_t *e = handle->data;
    if (--e->handles == 0)
        free(e);
}

static void cleanup(void *priv)
{
    uv_events_t *e = priv;
    e->ac = NULL; /* hiredis is freeing it */
    unqueue(e);
    uv_close((uv_handle_t *)&e->poll, on_closed);
    uv_close((uv_handle_t *)&e->check, on_closed);
    uv_close((uv_handle_t *)&e->prepare, on_closed);
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
    uv_check_init(loop, &e->check);
    uv_prepare_init(loop, &e->prepare);
    e->handles = 3;
    e->ac = ac;
    e->poll.data = e->check.data = e->prepare.data = e;
    ac->ev.data = e;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return REDIS_OK;
}
