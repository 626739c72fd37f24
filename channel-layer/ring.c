/* channel-layer/ring.c: shards and the consistent-hash ring that maps names
 * onto them (see internal.h). */
#include "channel-layer/internal.h"
#include "common/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int parse_url(chl__addr_t *a, const char *s, size_t len)
{
    static const char scheme[] = "redis://";
    memset(a, 0, sizeof(*a));
    a->port = 6379;
    if (len < sizeof(scheme) - 1 || memcmp(s, scheme, sizeof(scheme) - 1) != 0)
        return MC_EINVAL;
    s += sizeof(scheme) - 1;
    len -= sizeof(scheme) - 1;
    size_t hl = 0;
    while (hl < len && s[hl] != ':' && s[hl] != '/')
        hl++;
    if (hl == 0 || hl >= sizeof(a->host))
        return MC_EINVAL;
    memcpy(a->host, s, hl);
    size_t i = hl;
    if (i < len && s[i] == ':') {
        long port = 0;
        size_t digits = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9' && port <= 65535; i++, digits++)
            port = port * 10 + (s[i] - '0');
        if (digits == 0 || port < 1 || port > 65535)
            return MC_EINVAL;
        a->port = (int)port;
    }
    if (i < len && s[i] == '/') {
        long db = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9' && db < 10000; i++)
            db = db * 10 + (s[i] - '0');
        a->db = (int)db;
    }
    return i == len ? 0 : MC_EINVAL;
}

static int point_cmp(const void *a, const void *b)
{
    const chl__ring_point_t *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->shard < y->shard ? -1 : x->shard > y->shard;
}

int chl__ring_init(chl__ring_t *ring, const char *urls)
{
    memset(ring, 0, sizeof(*ring));
    if (!urls || !*urls)
        return MC_EINVAL;
    const char *s = urls;
    for (;;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (ring->nshards == CHL__MAX_SHARDS)
            return MC_EINVAL;
        int rc = parse_url(&ring->addrs[ring->nshards], s, len);
        if (rc != 0)
            return rc;
        ring->nshards++;
        if (!end)
            break;
        s = end + 1;
    }
    ring->npoints = ring->nshards * CHL__VNODES;
    ring->points = calloc(ring->npoints, sizeof(*ring->points));
    if (!ring->points)
        return MC_ENOMEM;
    /* A point is named after its shard's address, not its position, so that
     * listing the same servers in another order maps names the same way. */
    for (size_t sh = 0; sh < ring->nshards; sh++) {
        for (int v = 0; v < CHL__VNODES; v++) {
            char label[200];
            int n = snprintf(label, sizeof(label), "%s:%d/%d#%d", ring->addrs[sh].host,
                             ring->addrs[sh].port, ring->addrs[sh].db, v);
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
    ring->points = NULL;
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
