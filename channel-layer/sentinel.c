/* Finding and connecting to a shard's server, by way of its sentinels. */
#include "channel-layer/sentinel.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct timeval ms_tv(long ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

/* Connects to s over TCP, or over its Unix socket (port 0). */
static redisContext *open_server(const chl__server_t *s, long connect_ms, long command_ms)
{
    redisContext *c = s->port ? redisConnectWithTimeout(s->host, s->port, ms_tv(connect_ms))
                              : redisConnectUnixWithTimeout(s->host, ms_tv(connect_ms));
    if (c && !c->err && redisSetTimeout(c, ms_tv(command_ms)) == REDIS_OK)
        return c;
    if (c)
        redisFree(c);
    return NULL;
}

/* The error of a failed command: its error reply or the context's. */
static const char *failure(const redisContext *c, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR)
        return r->str;
    return c->err ? c->errstr : "unexpected reply";
}

/* AUTH and SELECT, as shard a asks. Returns 0 or MC_EREDIS with why. */
static int prepare(redisContext *c, const chl__addr_t *a, const chl__server_t *s, char *why,
                   size_t n)
{
    char at[CHL__SERVER_TEXT];
    chl__server_text(s, at);
    if (a->password[0]) {
        redisReply *r = redisCommand(c, "AUTH %b", a->password, strlen(a->password));
        int ok = r && r->type == REDIS_REPLY_STATUS;
        if (!ok)
            snprintf(why, n, "%s refuses AUTH: %.100s", at, failure(c, r));
        freeReplyObject(r);
        if (!ok)
            return MC_EREDIS;
    }
    if (a->db) {
        redisReply *r = redisCommand(c, "SELECT %d", a->db);
        int ok = r && r->type == REDIS_REPLY_STATUS;
        if (!ok)
            snprintf(why, n, "%s refuses SELECT %d: %.100s", at, a->db, failure(c, r));
        freeReplyObject(r);
        if (!ok)
            return MC_EREDIS;
    }
    return 0;
}

/* The master that sentinel s names: 0 and *master, MC_ENOTFOUND when it
 * does not know the name, MC_EREDIS when it does not answer. */
static int ask_sentinel(const chl__server_t *s, const char *name, chl__server_t *master)
{
    redisContext *c = open_server(s, CHL__SENTINEL_TIMEOUT_MS, CHL__SENTINEL_TIMEOUT_MS);
    if (!c)
        return MC_EREDIS;
    redisReply *r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", name);
    int rc = MC_EREDIS;
    if (r && r->type == REDIS_REPLY_NIL) {
        rc = MC_ENOTFOUND;
    } else if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
               r->element[0]->type == REDIS_REPLY_STRING &&
               r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len > 0 &&
               r->element[0]->len <= CHL__HOST_MAX) {
        char *end;
        long port = strtol(r->element[1]->str, &end, 10);
        if (*end == '\0' && port > 0 && port <= 65535) {
            memcpy(master->host, r->element[0]->str, r->element[0]->len + 1);
            master->port = (int)port;
            rc = 0;
        }
    }
    freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* Whether ROLE on c says "master"; otherwise why says what it is. */
static int is_master(redisContext *c, const chl__server_t *s, char *why, size_t n)
{
    redisReply *r = redisCommand(c, "ROLE");
    int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_STRING;
    if (!ok)
        snprintf(why, n, "ROLE fails on %s:%d: %.100s", s->host, s->port, failure(c, r));
    else if (strcmp(r->element[0]->str, "master") != 0)
        snprintf(why, n, "%s:%d is a %.20s, not a master (failover under way?)", s->host, s->port,
                 r->element[0]->str);
    ok = ok && strcmp(r->element[0]->str, "master") == 0;
    freeReplyObject(r);
    return ok;
}

static int connect_plain(const chl__addr_t *a, long connect_ms, long command_ms, chl__server_t *at,
                         redisContext **out, char *why, size_t n)
{
    memcpy(at->host, a->host, sizeof(at->host));
    at->port = a->port;
    redisContext *c = open_server(at, connect_ms, command_ms);
    if (!c) {
        char text[CHL__SERVER_TEXT];
        snprintf(why, n, "%s does not answer", chl__server_text(at, text));
        return MC_EREDIS;
    }
    if (prepare(c, a, at, why, n) != 0) {
        redisFree(c);
        return MC_EREDIS;
    }
    *out = c;
    return 0;
}

int chl__server_connect(const chl__addr_t *a, long connect_timeout_ms, long command_timeout_ms,
                        size_t *next, chl__server_t *at, redisContext **out, char *why,
                        size_t why_size)
{
    *out = NULL;
    why[0] = '\0';
    if (!a->master[0])
        return connect_plain(a, connect_timeout_ms, command_timeout_ms, at, out, why, why_size);
    size_t answered = 0;
    for (size_t k = 0; k < a->nsentinels; k++) {
        size_t i = (*next + k) % a->nsentinels;
        chl__server_t master;
        int rc = ask_sentinel(&a->sentinels[i], a->master, &master);
        if (rc == MC_EREDIS)
            continue;
        answered++;
        if (rc != 0)
            continue;
        redisContext *c = open_server(&master, connect_timeout_ms, command_timeout_ms);
        if (!c) {
            snprintf(why, why_size, "master %s at %s:%d does not answer", a->master, master.host,
                     master.port);
            continue;
        }
        if (prepare(c, a, &master, why, why_size) != 0 || !is_master(c, &master, why, why_size)) {
            redisFree(c);
            continue;
        }
        *next = i;
        *at = master;
        *out = c;
        return 0;
    }
    if (answered == 0)
        snprintf(why, why_size, "no sentinel of master %s answers", a->master);
    else if (!why[0])
        snprintf(why, why_size, "the sentinels do not know master %s", a->master);
    return MC_EREDIS;
}

/* ---- +switch-master ----------------------------------------------------- */

#define SWITCH_CHANNEL "+switch-master"
#define WATCH_READS_MAX 64 /* reads of one poll: a flood does not hold the caller */

int chl__switch_parse(const char *payload, size_t len, const char *master, chl__server_t *to)
{
    const char *field[5];
    size_t flen[5], n = 0, i = 0;
    while (i < len && n < 5) {
        size_t start = i;
        while (i < len && payload[i] != ' ')
            i++;
        if (i == start)
            return MC_EPROTO; /* an empty field: two spaces, or one at an end */
        field[n] = payload + start;
        flen[n++] = i - start;
        if (i < len)
            i++; /* past the space */
    }
    if (n != 5 || i != len || payload[len - 1] == ' ')
        return MC_EPROTO;
    if (flen[3] > CHL__HOST_MAX || flen[4] > 5)
        return MC_EPROTO;
    long port = 0;
    for (size_t k = 0; k < flen[4]; k++) {
        if (field[4][k] < '0' || field[4][k] > '9')
            return MC_EPROTO;
        port = port * 10 + (field[4][k] - '0');
    }
    if (port < 1 || port > 65535 || memchr(field[3], '\0', flen[3]))
        return MC_EPROTO;
    if (flen[0] != strlen(master) || memcmp(field[0], master, flen[0]) != 0)
        return MC_ENOTFOUND;
    memcpy(to->host, field[3], flen[3]);
    to->host[flen[3]] = '\0';
    to->port = (int)port;
    return 0;
}

int chl__switch_event(const redisReply *r, const char *master, chl__server_t *to)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return MC_ENOTFOUND;
    const redisReply *kind = r->element[0], *channel = r->element[1], *payload = r->element[2];
    if (kind->type != REDIS_REPLY_STRING || strcmp(kind->str, "message") != 0 ||
        channel->type != REDIS_REPLY_STRING || strcmp(channel->str, SWITCH_CHANNEL) != 0 ||
        payload->type != REDIS_REPLY_STRING)
        return MC_ENOTFOUND;
    return chl__switch_parse(payload->str, payload->len, master, to);
}

void chl__watch_close(chl__watch_t *w)
{
    if (w->ctx)
        redisFree(w->ctx);
    w->ctx = NULL;
}

/* Subscribes to +switch-master on the first sentinel of a that answers,
 * from w->next on. Returns 0 or MC_EREDIS. */
static int watch_open(chl__watch_t *w, const chl__addr_t *a)
{
    for (size_t k = 0; k < a->nsentinels; k++) {
        size_t i = (w->next + k) % a->nsentinels;
        redisContext *c =
            open_server(&a->sentinels[i], CHL__SENTINEL_TIMEOUT_MS, CHL__SENTINEL_TIMEOUT_MS);
        if (!c)
            continue;
        redisReply *r = redisCommand(c, "SUBSCRIBE %s", SWITCH_CHANNEL);
        int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                 r->element[0]->type == REDIS_REPLY_STRING &&
                 strcmp(r->element[0]->str, "subscribe") == 0;
        freeReplyObject(r);
        if (ok) {
            w->ctx = c;
            w->next = i;
            return 0;
        }
        redisFree(c);
    }
    return MC_EREDIS;
}

/* The replies that have come on w, without waiting: 1 and *to when one of
 * them moved a's master, else 0. *lost is set when the connection is gone
 * (closed by the sentinel, or not a subscription's). */
static int watch_read(chl__watch_t *w, const chl__addr_t *a, chl__server_t *to, int *lost)
{
    int moved = 0;
    *lost = 0;
    for (int reads = 0;;) {
        void *r = NULL;
        if (redisGetReplyFromReader(w->ctx, &r) != REDIS_OK) {
            *lost = 1;
            return moved;
        }
        if (r) {
            chl__server_t at;
            if (chl__switch_event(r, a->master, &at) == 0) {
                *to = at;
                moved = 1;
            }
            freeReplyObject(r);
            continue;
        }
        struct pollfd pfd = {.fd = w->ctx->fd, .events = POLLIN};
        if (reads++ == WATCH_READS_MAX || poll(&pfd, 1, 0) <= 0)
            return moved;
        if (redisBufferRead(w->ctx) != REDIS_OK) { /* the sentinel closed it, or an error */
            *lost = 1;
            return moved;
        }
    }
}

int chl__watch_poll(chl__watch_t *w, const chl__addr_t *a, size_t i, chl__server_t *to)
{
    if (!a->master[0] || a->nsentinels == 0)
        return 0;
    if (!w->ctx) {
        int64_t now = mc_mono_ms();
        if (now < w->retry_at)
            return 0;
        if (watch_open(w, a) != 0) {
            w->backoff_ms = w->backoff_ms ? 2 * w->backoff_ms : CHL__WATCH_BACKOFF_MIN_MS;
            if (w->backoff_ms > CHL__WATCH_BACKOFF_MAX_MS)
                w->backoff_ms = CHL__WATCH_BACKOFF_MAX_MS;
            w->retry_at = now + w->backoff_ms;
            w->next = (w->next + 1) % a->nsentinels;
            if (!w->warned)
                mc_warn("channel-layer: shard %zu: no sentinel of master %s can be heard; "
                        "a failover is found when the master fails",
                        i, a->master);
            w->warned = 1;
            return 0;
        }
        if (w->warned)
            mc_info("channel-layer: shard %zu: listening to sentinel %s:%d again", i,
                    a->sentinels[w->next].host, a->sentinels[w->next].port);
        w->warned = 0;
        w->backoff_ms = 0;
    }
    int lost, moved = watch_read(w, a, to, &lost);
    if (lost) { /* another sentinel is asked at the next call */
        chl__watch_close(w);
        w->next = (w->next + 1) % a->nsentinels;
    }
    return moved;
}

int chl__not_master(const char *error)
{
    return strncmp(error, "READONLY", 8) == 0 || strncmp(error, "UNBLOCKED", 9) == 0;
}

struct chl__finding {
    uv_work_t work;
    chl__addr_t addr; /* a copy: the owner may be gone before the thread */
    long timeout_ms;
    size_t next;
    int status;
    chl__server_t at;
    char why[256];
    chl__found_cb cb; /* NULL once cancelled */
    void *arg;
};

static void find_in_thread(uv_work_t *w)
{
    chl__finding_t *f = w->data;
    redisContext *c = NULL;
    f->status = chl__server_connect(&f->addr, f->timeout_ms, f->timeout_ms, &f->next, &f->at, &c,
                                    f->why, sizeof(f->why));
    if (c)
        redisFree(c);
}

static void found(uv_work_t *w, int status)
{
    chl__finding_t *f = w->data;
    if (status != 0 && f->status == 0) { /* the work never ran */
        f->status = MC_EREDIS;
        snprintf(f->why, sizeof(f->why), "the search was not run: %s", uv_strerror(status));
    }
    if (f->cb)
        f->cb(f->arg, f->status, &f->at, f->next, f->why);
    free(f);
}

chl__finding_t *chl__server_find(uv_loop_t *loop, const chl__addr_t *a, long connect_timeout_ms,
                                 size_t next, chl__found_cb cb, void *arg)
{
    chl__finding_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->work.data = f;
    f->addr = *a;
    f->timeout_ms = connect_timeout_ms;
    f->next = next;
    f->cb = cb;
    f->arg = arg;
    if (uv_queue_work(loop, &f->work, find_in_thread, found) != 0) {
        free(f);
        return NULL;
    }
    return f;
}

void chl__server_find_cancel(chl__finding_t *f)
{
    if (f)
        f->cb = NULL;
}
