/* channel-layer/ring.c: shards and the consistent-hash ring that maps names
 * onto them (see internal.h). */
#include "channel-layer/internal.h"
#include "common/error.h"
#include "common/form.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

_Static_assert(CHL__SOCKET_PATH_MAX < sizeof(((struct sockaddr_un *)0)->sun_path),
               "a socket path fits sun_path with its NUL");
_Static_assert(CHL__SOCKET_PATH_MAX <= CHL__HOST_MAX, "a socket path fits a server's host");

/* FNV-1a, then a finaliser so that close names land far apart. */
static uint32_t ring_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

const char *chl__server_text(const chl__server_t *s, char buf[CHL__SERVER_TEXT])
{
    if (s->port)
        snprintf(buf, CHL__SERVER_TEXT, "%s:%d", s->host, s->port);
    else
        snprintf(buf, CHL__SERVER_TEXT, "%s", s->host);
    return buf;
}

/* A cursor over the URL list: every read checks the end first. why says
 * what is wrong when a parse fails, if more than "not a shard URL". */
typedef struct cursor {
    const char *s;
    size_t i, len;
    const char *why;
} cursor_t;

static int skip(cursor_t *c, const char *word)
{
    size_t n = strlen(word);
    if (c->len - c->i < n || memcmp(c->s + c->i, word, n) != 0)
        return 0;
    c->i += n;
    return 1;
}

/* A decimal number of 1 to 5 digits within [lo, hi]. */
static int number(cursor_t *c, long lo, long hi, int *out)
{
    long v = 0;
    size_t digits = 0;
    for (; c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9' && digits < 5; c->i++, digits++)
        v = v * 10 + (c->s[c->i] - '0');
    if (digits == 0 || v < lo || v > hi ||
        (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9'))
        return MC_EINVAL;
    *out = (int)v;
    return 0;
}

/* Bytes up to one of stop or the end, %XX-decoded, into out (at most max
 * of them, then a NUL): their count, MC_ETOOBIG when more come, MC_EINVAL
 * for a bad escape or a NUL. */
static int decode_until(cursor_t *c, const char *stop, char *out, size_t max)
{
    size_t n = 0;
    while (c->i < c->len && !strchr(stop, c->s[c->i])) {
        unsigned char ch = (unsigned char)c->s[c->i];
        if (ch == '%' && mc_percent_byte(c->s + c->i, c->len - c->i, &ch) != 0)
            return MC_EINVAL;
        c->i += c->s[c->i] == '%' ? 3 : 1;
        if (ch == '\0')
            return MC_EINVAL;
        if (n == max)
            return MC_ETOOBIG;
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    return (int)n;
}

/* ":" password "@", the password %XX-decoded; none when no ':' comes. */
static int password(cursor_t *c, char *out)
{
    if (!skip(c, ":"))
        return 0;
    int n = decode_until(c, "@", out, CHL__PASSWORD_MAX);
    return (n > 0 && skip(c, "@")) ? 0 : MC_EINVAL;
}

static int host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_';
}

/* host [":" port]: a name or an IPv4 address. */
static int server(cursor_t *c, chl__server_t *out, int default_port)
{
    size_t hl = 0;
    while (c->i + hl < c->len && host_char(c->s[c->i + hl]))
        hl++;
    if (hl == 0 || hl > CHL__HOST_MAX)
        return MC_EINVAL;
    memcpy(out->host, c->s + c->i, hl);
    out->host[hl] = '\0';
    c->i += hl;
    out->port = default_port;
    return skip(c, ":") ? number(c, 1, 65535, &out->port) : 0;
}

static int plain_shard(cursor_t *c, chl__addr_t *a)
{
    chl__server_t srv;
    int rc = password(c, a->password);
    if (rc == 0)
        rc = server(c, &srv, 6379);
    if (rc != 0)
        return rc;
    memcpy(a->host, srv.host, sizeof(a->host));
    a->port = srv.port;
    /* "/" alone means db 0, as it always did */
    if (skip(c, "/") && c->i < c->len && c->s[c->i] != ',')
        rc = number(c, 0, 9999, &a->db);
    return rc;
}

/* [auth] "/" path ["?db=" db]: the path %XX-decoded, absolute, short
 * enough for sun_path. */
static int unix_shard(cursor_t *c, chl__addr_t *a)
{
    if (password(c, a->password) != 0)
        return MC_EINVAL;
    if (c->i == c->len || c->s[c->i] != '/') {
        c->why = "a Unix socket's path must be absolute: unix:///path/to/redis.sock";
        return MC_EINVAL;
    }
    int n = decode_until(c, ",?", a->host, CHL__SOCKET_PATH_MAX);
    if (n == MC_ETOOBIG)
        c->why = "the Unix socket's path is longer than sun_path allows (107 bytes)";
    else if (n == 1)
        c->why = "the Unix socket's path is empty";
    if (n <= 1)
        return MC_EINVAL;
    a->port = 0; /* a Unix socket (internal.h) */
    return skip(c, "?db=") ? number(c, 0, 9999, &a->db) : 0;
}

static int sentinel_shard(cursor_t *c, chl__addr_t *a)
{
    int rc = password(c, a->password);
    while (rc == 0) {
        if (a->nsentinels == CHL__MAX_SENTINELS)
            return MC_EINVAL;
        rc = server(c, &a->sentinels[a->nsentinels++], CHL__SENTINEL_PORT);
        if (rc != 0 || !skip(c, ","))
            break;
    }
    if (rc != 0 || !skip(c, "/"))
        return MC_EINVAL;
    size_t nl = 0;
    while (c->i + nl < c->len && c->s[c->i + nl] != '/' && c->s[c->i + nl] != ',')
        nl++;
    if (nl == 0 || nl > CHL__NAME_MAX)
        return MC_EINVAL;
    memcpy(a->master, c->s + c->i, nl);
    a->master[nl] = '\0';
    c->i += nl;
    if (chl__check_plain(a->master) != 0)
        return MC_EINVAL;
    return skip(c, "/") ? number(c, 0, 9999, &a->db) : 0;
}

/* The text a shard's points are named after: its identity, not its place
 * in the list nor (for Sentinel) its current server. A master's name has
 * no ':', so it never equals a plain shard's label. */
static void identity(const chl__addr_t *a, char *buf, size_t size)
{
    if (a->master[0])
        snprintf(buf, size, "%s/%d", a->master, a->db);
    else
        snprintf(buf, size, "%s:%d/%d", a->host, a->port, a->db);
}

static int point_cmp(const void *a, const void *b)
{
    const chl__ring_point_t *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->shard < y->shard ? -1 : x->shard > y->shard;
}

static int parse(chl__ring_t *ring, cursor_t *c)
{
    do {
        if (ring->nshards == CHL__MAX_SHARDS) {
            c->why = "too many shards";
            return MC_EINVAL;
        }
        chl__addr_t *grown = realloc(ring->addrs, (ring->nshards + 1) * sizeof(*grown));
        if (!grown)
            return MC_ENOMEM;
        ring->addrs = grown;
        chl__addr_t *a = &ring->addrs[ring->nshards++];
        memset(a, 0, sizeof(*a));
        int rc = skip(c, "redis://")            ? plain_shard(c, a)
                 : skip(c, "unix://")           ? unix_shard(c, a)
                 : skip(c, "redis+sentinel://") ? sentinel_shard(c, a)
                                                : MC_EINVAL;
        if (rc != 0)
            return rc;
    } while (skip(c, ","));
    return c->i == c->len ? 0 : MC_EINVAL;
}

/* Logs why urls were refused; the URL itself is not logged, since it may
 * hold a password. */
static int refused(chl__ring_t *ring, const cursor_t *c, int rc)
{
    ring->why = c->why ? c->why
                       : "not a shard URL (redis://[:password@]host[:port][/db], "
                         "unix://[:password@]/path[?db=N] or redis+sentinel://...)";
    mc_error("channel-layer: the Redis URL list is refused at byte %zu: %s", c->i, ring->why);
    return rc;
}

int chl__ring_init(chl__ring_t *ring, const char *urls)
{
    memset(ring, 0, sizeof(*ring));
    cursor_t c = {urls, 0, urls ? strlen(urls) : 0, NULL};
    if (!urls)
        return refused(ring, &c, MC_EINVAL);
    int rc = parse(ring, &c);
    if (rc != 0)
        return rc == MC_ENOMEM ? rc : refused(ring, &c, rc);
    ring->npoints = ring->nshards * CHL__VNODES;
    ring->points = calloc(ring->npoints, sizeof(*ring->points));
    if (!ring->points)
        return MC_ENOMEM;
    for (size_t sh = 0; sh < ring->nshards; sh++) {
        char id[CHL__HOST_MAX + CHL__NAME_MAX + 32], other[sizeof(id)];
        identity(&ring->addrs[sh], id, sizeof(id));
        for (size_t k = 0; k < sh; k++) {
            identity(&ring->addrs[k], other, sizeof(other));
            if (strcmp(id, other) == 0) {
                c.why = "one server or master is listed twice";
                return refused(ring, &c, MC_EINVAL);
            }
        }
        for (int v = 0; v < CHL__VNODES; v++) {
            char label[sizeof(id) + 16];
            int n = snprintf(label, sizeof(label), "%s#%d", id, v);
            chl__ring_point_t *pt = &ring->points[sh * CHL__VNODES + (size_t)v];
            pt->hash = ring_hash(label, (size_t)n);
            pt->shard = (uint32_t)sh;
        }
    }
    qsort(ring->points, ring->npoints, sizeof(*ring->points), point_cmp);
    return 0;
}

void chl__ring_clear(chl__ring_t *ring)
{
    free(ring->points);
    free(ring->addrs);
    ring->points = NULL;
    ring->addrs = NULL;
}

size_t chl__ring_name(const chl__ring_t *ring, const char *name, size_t len)
{
    if (ring->nshards <= 1)
        return 0;
    uint32_t h = ring_hash(name, len);
    size_t lo = 0, hi = ring->npoints;
    while (lo < hi) { /* first point with hash >= h, wrapping to the start */
        size_t mid = lo + (hi - lo) / 2;
        if (ring->points[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return ring->points[lo == ring->npoints ? 0 : lo].shard;
}

size_t chl__ring_channel(const chl__ring_t *ring, const char *channel)
{
    return chl__ring_name(ring, channel, chl__process_len(channel));
}
