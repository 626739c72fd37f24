#include "tests/support/redis.h"
#include "tests/support/proc.h"

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int redis_ping_ready(int port, int timeout_ms)
{
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 5 * 1000 * 1000};
    for (int waited = 0; waited <= timeout_ms; waited += 5) {
        redisContext *c = redisConnect("127.0.0.1", port);
        if (c && !c->err) {
            redisReply *reply = redisCommand(c, "PING");
            int ok = reply && reply->type == REDIS_REPLY_STATUS;
            freeReplyObject(reply);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        nanosleep(&pause, NULL); /* polling a condition, bounded by timeout_ms */
    }
    return -1;
}

static int redis_launch(ts_redis_t *r)
{
    char port[16], log[96], conf[96], master[16], sock[96];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    snprintf(conf, sizeof(conf), "%s/sentinel.conf", r->dir);
    snprintf(master, sizeof(master), "%d", r->replica_of);
    snprintf(sock, sizeof(sock), "%s/redis.sock", r->dir);
    const char *argv[32] = {r->sentinel ? "redis-sentinel" : "redis-server"};
    int n = 1;
    if (r->sentinel) {
        /* a sentinel needs a configuration file of its own to rewrite */
        FILE *f = fopen(conf, "a");
        if (!f)
            return -1;
        fclose(f);
        argv[n++] = conf;
    }
    const char *common[] = {"--port",    port, "--bind",      "127.0.0.1", "--dir",      r->dir,
                            "--logfile", log,  "--daemonize", "no",        "--loglevel", "notice"};
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
        argv[n++] = common[i];
    if (!r->sentinel) {
        /* no files; a replica gets its copy at once instead of after 5 s */
        const char *server[] = {"--save", "", "--appendonly", "no", "--repl-diskless-sync-delay",
                                "0"};
        for (size_t i = 0; i < sizeof(server) / sizeof(server[0]); i++)
            argv[n++] = server[i];
    }
    if (r->unix_socket) {
        argv[n++] = "--unixsocket";
        argv[n++] = sock;
        argv[n++] = "--unixsocketperm";
        argv[n++] = "700";
    }
    if (r->replica_of) {
        argv[n++] = "--replicaof";
        argv[n++] = "127.0.0.1";
        argv[n++] = master;
    }
    argv[n] = NULL;
    r->pid = ts_spawn(argv, NULL);
    if (r->pid < 0 || redis_ping_ready(r->port, 5000) != 0) {
        ts_redis_halt(r, 1);
        return -1;
    }
    return 0;
}

static int redis_start(ts_redis_t *r, int replica_of, int sentinel, int unix_socket)
{
    memset(r, 0, sizeof(*r));
    r->replica_of = replica_of;
    r->sentinel = sentinel;
    r->unix_socket = unix_socket;
    snprintf(r->dir, sizeof(r->dir), "/tmp/mc-redis-XXXXXX");
    if (!mkdtemp(r->dir))
        return -1;
    for (int attempt = 0; attempt < 5; attempt++) {
        r->port = ts_free_port();
        if (unix_socket)
            snprintf(r->url, sizeof(r->url), "unix://%s/redis.sock", r->dir);
        else
            snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", r->port);
        if (r->port > 0 && redis_launch(r) == 0)
            return 0;
    }
    return -1;
}

int ts_redis_start(ts_redis_t *r)
{
    return redis_start(r, 0, 0, 0);
}

int ts_redis_start_unix(ts_redis_t *r)
{
    return redis_start(r, 0, 0, 1);
}

int ts_redis_start_replica(ts_redis_t *r, int master_port)
{
    return redis_start(r, master_port, 0, 0);
}

int ts_redis_start_sentinel(ts_redis_t *r)
{
    return redis_start(r, 0, 1, 0);
}

void ts_redis_halt(ts_redis_t *r, int hard)
{
    if (r->pid > 0)
        ts_kill_wait(r->pid, hard ? SIGKILL : SIGTERM);
    r->pid = 0;
}

int ts_redis_restart(ts_redis_t *r)
{
    ts_redis_halt(r, 0);
    return redis_launch(r);
}

void ts_redis_stop(ts_redis_t *r)
{
    ts_redis_halt(r, 0);
    if (r->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", r->dir);
        r->dir[0] = '\0';
    }
}

long long ts_redis_int(const ts_redis_t *r, const char *fmt, ...)
{
    redisContext *c = redisConnect("127.0.0.1", r->port);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return -1;
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = redisvCommand(c, fmt, ap);
    va_end(ap);
    long long v = -1;
    if (reply) {
        if (reply->type == REDIS_REPLY_INTEGER)
            v = reply->integer;
        else if (reply->type == REDIS_REPLY_ARRAY)
            v = (long long)reply->elements;
        else if (reply->type == REDIS_REPLY_STRING)
            v = (long long)reply->len;
        else if (reply->type == REDIS_REPLY_NIL)
            v = 0;
        freeReplyObject(reply);
    }
    redisFree(c);
    return v;
}

long ts_redis_calls(const ts_redis_t *r, const char *command)
{
    redisContext *c = redisConnect("127.0.0.1", r->port);
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return -1;
    }
    redisReply *reply = redisCommand(c, "INFO commandstats");
    long calls = -1;
    if (reply && reply->type == REDIS_REPLY_STRING) {
        char needle[64];
        snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", command);
        const char *at = strstr(reply->str, needle);
        calls = at ? strtol(at + strlen(needle), NULL, 10) : 0;
    }
    freeReplyObject(reply);
    redisFree(c);
    return calls;
}
