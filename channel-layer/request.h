/*
 * channel-layer/request.h: commands of the process endpoint on its command
 * links (request.c): a command whose outcome nothing waits for, and a
 * script call whose sender learns its outcome once.
 *
 * Everything here acts on the endpoint's links (link.h) and reads only
 * what they share: the endpoint's name, stats, closing flag and the
 * scripts' SHAs. A script call is kept until its reply, so that a server
 * that lost the script (NOSCRIPT) is asked again with the script itself.
 * A Redis out of memory ("OOM ...") refuses like a full list, not like a
 * Redis that is down.
 */
#ifndef MC_CHANNEL_LAYER_REQUEST_H
#define MC_CHANNEL_LAYER_REQUEST_H

#include "channel-layer/internal.h"
#include "channel-layer/link.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stddef.h>

/* An asynchronous script call. The caller fills in script, cb, arg, argc
 * and argv[2..] (with lens[i] for arguments that are not strings; 0 means
 * strlen); argv[0] and argv[1] are the request's. bufs and frame hold what
 * the arguments point to. */
typedef struct chl__req {
    chl__links_t *links;
    enum chl__script_id script;
    chl_send_cb cb;
    void *arg;
    int retried;
    int argc;
    const char *argv[10];
    size_t lens[10];
    char *frame; /* owned */
    char bufs[6][CHL__KEY_MAX];
} chl__req_t;

/* A zeroed request, or NULL when out of memory. */
chl__req_t *chl__req_new(void);

/* Frees req and its frame. */
void chl__req_free(chl__req_t *req);

/* Sends req on the command link of shard. Returns 0 (the reply callback
 * owns req now: req->cb runs once with 0, MC_EFULL, MC_EREDIS or
 * MC_ECLOSED) or an error (req is freed, no callback runs): MC_ECLOSED,
 * MC_EREDIS (the link is down), MC_ENOMEM. */
int chl__req_send(chl__links_t *links, size_t shard, chl__req_t *req);

/* Writes a command in RESP and hands it to hiredis on link l (hiredis's
 * printf-like formatting of each argument cost more than the rest of a
 * push). Returns 0, MC_ENOMEM or MC_EREDIS; the caller counts it sent
 * (chl__link_sent) on 0. */
int chl__command_send(chl__link_t *l, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                      const size_t *lens);

/* The reply callback of a command whose outcome nothing waits for. */
void chl__on_plain_reply(redisAsyncContext *ac, void *reply, void *priv);

/* Whether r is Redis's refusal for want of memory ("OOM ..."). */
int chl__out_of_memory(const redisReply *r);

#endif
