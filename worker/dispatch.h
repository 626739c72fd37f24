/*
 * worker/dispatch.h: the top of the worker: one envelope from the worker
 * queue in, decoded, and handed by its type to the views (http.request)
 * or the consumer (websocket.connect, receive, disconnect).
 *
 * Called by chat-worker's loop (worker/service.h) for each envelope it
 * pops, with the worker's state (worker/app.h). Handling never fails on bad
 * input: a bad request is answered (an HTTP status, {"error":CODE},
 * websocket.close); only a database or memory failure returns an error, and
 * the envelope is then answered with 500 / SERVER_BUSY where that is
 * possible. Chat messages wait in the port's outbox until the loop flushes
 * it (wrk_port_flush).
 */
#ifndef MC_WORKER_DISPATCH_H
#define MC_WORKER_DISPATCH_H

#include <stddef.h>

#include "worker/app.h"

/* Handles one envelope, data[0..len) (JSON). An envelope that does not
 * decode, or of a type a worker does not handle, is logged and dropped
 * (returns MC_EINVAL). Returns 0 once answered. */
int wrk_dispatch_envelope(wrk_app_t *app, const char *data, size_t len);

#endif
