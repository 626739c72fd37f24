/* channel-layer/keys.c: names, keys, clocks and configuration shared by both
 * front ends (see internal.h). */
#include "channel-layer/internal.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

void chl_config_defaults(chl_config_t *cfg)
{
    cfg->redis_urls = "redis://127.0.0.1:6379";
    cfg->prefix = "mc:";
    cfg->expiry_ms = 60000;
    cfg->capacity = 100;
    cfg->process_capacity = 10000;
    cfg->process_bytes = 32L << 20;
    cfg->queue_capacity = 10000;
    cfg->group_expiry_s = 86400;
    cfg->heartbeat_ttl_ms = 10000;
    cfg->gather_us = 0;
}

void chl_message_free(chl_message_t *msg)
{
    if (!msg)
        return;
    free(msg->channel);
    free(msg->data);
    free(msg->internal);
    memset(msg, 0, sizeof(*msg));
}

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

int chl__check_channel(const char *name, long *bang)
{
    long at = -1;
    size_t i = 0;
    if (!name)
        return MC_EINVAL;
    for (; name[i]; i++) {
        if (i >= CHL__NAME_MAX)
            return MC_EINVAL;
        if (name[i] == '!') {
            if (at >= 0 || i == 0)
                return MC_EINVAL;
            at = (long)i;
        } else if (!name_char(name[i])) {
            return MC_EINVAL;
        }
    }
    if (i == 0)
        return MC_EINVAL;
    if (bang)
        *bang = at;
    return 0;
}

int chl__check_plain(const char *name)
{
    long bang;
    if (chl__check_channel(name, &bang) != 0 || bang >= 0)
        return MC_EINVAL;
    return 0;
}

int chl__key(char *key, size_t size, const char *prefix, const char *a, const char *b)
{
    const char *parts[3] = {prefix, a, b ? b : ""};
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        size_t len = strlen(parts[i]);
        if (len >= size - n)
            return MC_ETOOBIG;
        memcpy(key + n, parts[i], len);
        n += len;
    }
    key[n] = '\0';
    return 0;
}

int chl__bytes_key(char *key, size_t size, const char *prefix, const char *list)
{
    size_t pl = strlen(prefix), ll = strlen(list);
    if (ll < pl + 2 || strncmp(list, prefix, pl) != 0 || list[ll - 1] != '!')
        return MC_EINVAL;
    int n = snprintf(key, size, "%sbytes:%.*s", prefix, (int)(ll - pl - 1), list + pl);
    return (n < 0 || (size_t)n >= size) ? MC_ETOOBIG : 0;
}

size_t chl__process_len(const char *channel)
{
    const char *bang = strchr(channel, '!');
    return bang ? (size_t)(bang - channel) : strlen(channel);
}

int chl__config_copy(chl_config_t *dst, char **owned, const chl_config_t *src)
{
    chl_config_t def;
    chl_config_defaults(&def);
    *dst = src ? *src : def;
    if (!dst->redis_urls)
        dst->redis_urls = def.redis_urls;
    if (!dst->prefix)
        dst->prefix = def.prefix;
#define CHL__DEFAULT(f)                                                                            \
    if (dst->f <= 0)                                                                               \
    dst->f = def.f
    CHL__DEFAULT(expiry_ms);
    CHL__DEFAULT(capacity);
    CHL__DEFAULT(process_capacity);
    CHL__DEFAULT(process_bytes);
    CHL__DEFAULT(queue_capacity);
    CHL__DEFAULT(group_expiry_s);
    CHL__DEFAULT(heartbeat_ttl_ms);
#undef CHL__DEFAULT
    /* A client that gathers waits between pops, which keep its heartbeat. */
    if (dst->gather_us < 0 || dst->gather_us / 1000 > dst->heartbeat_ttl_ms / 4)
        return MC_EINVAL;
    size_t ulen = strlen(dst->redis_urls), plen = strlen(dst->prefix);
    if (plen > 32)
        return MC_EINVAL;
    /* One allocation holds both strings, so the copy is freed with one call. */
    char *mem = malloc(ulen + plen + 2);
    if (!mem)
        return MC_ENOMEM;
    memcpy(mem, dst->redis_urls, ulen + 1);
    memcpy(mem + ulen + 1, dst->prefix, plen + 1);
    dst->redis_urls = mem;
    dst->prefix = mem + ulen + 1;
    *owned = mem;
    return 0;
}

void chl__make_name(char *buf, size_t size, const char *kind)
{
    char host[64] = "host";
    unsigned char rnd[4] = {0};
    if (gethostname(host, sizeof(host)) != 0)
        snprintf(host, sizeof(host), "host");
    host[sizeof(host) - 1] = '\0';
    for (char *p = host; *p; p++)
        if (!name_char(*p) || *p == '.')
            *p = '-';
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        uint64_t t = (uint64_t)mc_mono_ms() ^ ((uint64_t)getpid() << 16);
        memcpy(rnd, &t, sizeof(rnd));
    }
    snprintf(buf, size, "%s.%s.%ld.%02x%02x%02x%02x", kind, host, (long)getpid(), rnd[0], rnd[1],
             rnd[2], rnd[3]);
}
