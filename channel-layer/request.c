/*
 * channel-layer/request.c: commands of the process endpoint on its command
 * links (see request.h): the RESP writing of a command, the reply of one
 * nothing waits for, and script calls that are asked again with the
 * script itself when the server lost it.
 */
#include "channel-layer/request.h"
#include "common/error.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

chl__req_t *chl__req_new(void)
{
    return calloc(1, sizeof(chl__req_t));
}

void chl__req_free(chl__req_t *req)
{
    free(req->frame);
    free(req);
}

void chl__on_plain_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    redisReply *r = reply;
    chl__link_replied(ac);
    if (r && r->type == REDIS_REPLY_ERROR)
        chl__link_not_master(ac, r->str);
}

int chl__out_of_memory(const redisReply *r)
{
    return r->type == REDIS_REPLY_ERROR && strncmp(r->str, "OOM", 3) == 0;
}

static void on_req_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    chl__req_t *req = priv;
    chl__links_t *links = req->links;
    redisReply *r = reply;
    int status;
    chl__link_replied(ac);
    if (!r) {
        status = *links->closing ? MC_ECLOSED : MC_EREDIS;
    } else if (chl__out_of_memory(r)) {
        /* Redis is out of memory: full, like a list at its capacity, and
         * not down; what the sender learns is the same. */
        links->stats->full++;
        status = MC_EFULL;
    } else if (r->type == REDIS_REPLY_ERROR) {
        int demoted = chl__link_not_master(ac, r->str);
        if (!demoted && !req->retried && strncmp(r->str, "NOSCRIPT", 8) == 0 && !*links->closing) {
            /* EVAL with the body runs it and caches it again. */
            req->retried = 1;
            req->argv[0] = "EVAL";
            req->argv[1] = chl__script(req->script);
            req->lens[0] = 4;
            req->lens[1] = strlen(req->argv[1]);
            if (redisAsyncCommandArgv(ac, on_req_reply, req, req->argc, req->argv, req->lens) ==
                REDIS_OK) {
                chl__link_sent(ac->data);
                return;
            }
        }
        if (!demoted)
            mc_warn("channel-layer: %s: script failed: %.120s", links->name, r->str);
        links->stats->redis_errors++;
        status = MC_EREDIS;
    } else if (req->script == CHL__S_SEND) {
        status = (r->type == REDIS_REPLY_INTEGER && r->integer == 1) ? 0 : MC_EFULL;
        if (status == 0)
            links->stats->sent++;
        else
            links->stats->full++;
    } else {
        status = 0;
    }
    if (req->cb)
        req->cb(req->arg, status);
    chl__req_free(req);
}

int chl__command_send(chl__link_t *l, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                      const size_t *lens)
{
    size_t size = chl__resp_size(argc, lens);
    char small[2048], *command = size <= sizeof(small) ? small : malloc(size);
    if (!command)
        return MC_ENOMEM;
    size_t len = chl__resp_write(command, argc, argv, lens);
    int ok = redisAsyncFormattedCommand(l->ac, fn, priv, command, len) == REDIS_OK;
    if (command != small)
        free(command);
    return ok ? 0 : MC_EREDIS;
}

int chl__req_send(chl__links_t *links, size_t shard, chl__req_t *req)
{
    chl__link_t *l = &links->cmd[shard];
    if (*links->closing) {
        chl__req_free(req);
        return MC_ECLOSED;
    }
    if (!l->up || !l->ac) {
        chl__req_free(req);
        return MC_EREDIS;
    }
    req->links = links;
    req->argv[0] = "EVALSHA";
    req->argv[1] = links->sha[req->script];
    for (int i = 0; i < req->argc; i++)
        if (i < 2 || !req->lens[i])
            req->lens[i] = strlen(req->argv[i]);
    int rc = chl__command_send(l, on_req_reply, req, req->argc, req->argv, req->lens);
    if (rc != 0) {
        chl__req_free(req);
        return rc;
    }
    chl__link_sent(l);
    return 0;
}
