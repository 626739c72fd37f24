/*
 * tests/support/guard.h: inputs that end on a PROT_NONE page, and the three
 * ways every parser test feeds them (whole, split at every byte, one byte at
 * a time), as picohttpparser's tests do. Each piece is copied into a fresh
 * mapping that ends exactly at a guard page and is unmapped after the call,
 * so a one-byte over-read, or a pointer kept into a previous piece, crashes.
 */
#ifndef MC_TESTS_SUPPORT_GUARD_H
#define MC_TESTS_SUPPORT_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct guard {
    uint8_t *map;
    size_t map_len;
    uint8_t *data; /* the copy; data + len is the first guarded byte */
} guard_t;

static inline uint8_t *guard_copy(guard_t *g, const void *data, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (len + page - 1) / page + 1;
    g->map_len = pages * page;
    g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED)
        abort();
    if (mprotect(g->map + (pages - 1) * page, page, PROT_NONE) != 0)
        abort();
    g->data = g->map + (pages - 1) * page - len;
    if (len > 0)
        memcpy(g->data, data, len);
    return g->data;
}

static inline void guard_free(guard_t *g)
{
    munmap(g->map, g->map_len);
    g->map = NULL;
}

/* A parser under test: reset starts a fresh run, feed consumes one whole
 * piece (looping over events itself), check asserts the outcome. */
typedef struct guard_driver {
    void (*reset)(void *ctx);
    void (*feed)(void *ctx, const uint8_t *data, size_t len);
    void (*check)(void *ctx);
} guard_driver_t;

static inline void guard_feed_piece(const guard_driver_t *d, void *ctx, const uint8_t *data,
                                    size_t len)
{
    guard_t g;
    uint8_t *copy = guard_copy(&g, data, len);
    d->feed(ctx, copy, len);
    guard_free(&g);
}

/* Runs the whole input, every two-piece split, and one byte at a time. */
static inline void guard_feed_all_ways(const guard_driver_t *d, void *ctx, const void *data,
                                       size_t len)
{
    const uint8_t *in = data;
    d->reset(ctx);
    guard_feed_piece(d, ctx, in, len);
    d->check(ctx);
    for (size_t cut = 1; cut < len; cut++) {
        d->reset(ctx);
        guard_feed_piece(d, ctx, in, cut);
        guard_feed_piece(d, ctx, in + cut, len - cut);
        d->check(ctx);
    }
    d->reset(ctx);
    for (size_t i = 0; i < len; i++)
        guard_feed_piece(d, ctx, in + i, 1);
    d->check(ctx);
}

#endif
