/*
 * interface/ws_deflate.c: permessage-deflate negotiation, compression and
 * decompression (see ws_deflate.h).
 */
#include "interface/ws_deflate.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#define ZLIB_CONST
#include <zlib.h>

#include "common/error.h"
#include "common/wire.h"

/* Level 1 and a 2 K-entry hash table: zlib clears the hash table for every
 * message (server_no_context_takeover), and chat messages are short, so the
 * defaults (level 6, 32 K entries) cost about three times the CPU for the
 * same size. The window stays 32 KiB, as messages of any size may come. */
#define DEFLATE_LEVEL 1
#define DEFLATE_MEM_LEVEL 4
#define WINDOW_BITS 15

/* The compressor and the inflater keep an output buffer up to this size
 * between messages. */
#define BUFFER_KEEP (64 * 1024)
#define INFLATE_MIN_CAP 1024

static const uint8_t TAIL[4] = {0x00, 0x00, 0xff, 0xff};

/* Negotiation: RFC 6455 section 9.1 syntax over RFC 7230 tokens. */

typedef struct scan {
    const char *s;
    size_t len, at;
} scan_t;

/* A parameter's value, unquoted. Only window sizes have values, so two
 * characters are kept; a longer value is invalid whatever it says. */
typedef struct value {
    int present;
    int token; /* 1 when every character is a token character */
    size_t len;
    char text[2];
} value_t;

enum {
    P_SERVER_NO_CONTEXT = 1,
    P_CLIENT_NO_CONTEXT = 2,
    P_SERVER_BITS = 4,
    P_CLIENT_BITS = 8,
};

/* What one offer asks. */
typedef struct offer {
    unsigned seen; /* P_* met so far */
    int declined;
    int server_bits; /* server_max_window_bits asked, or 0 */
} offer_t;

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void skip_ows(scan_t *sc)
{
    while (sc->at < sc->len && (sc->s[sc->at] == ' ' || sc->s[sc->at] == '\t'))
        sc->at++;
}

/* Consumes a token; returns its length (0: there is none). */
static size_t take_token(scan_t *sc)
{
    size_t start = sc->at;
    while (sc->at < sc->len && is_tchar((unsigned char)sc->s[sc->at]))
        sc->at++;
    return sc->at - start;
}

static int token_is(const char *s, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(s, name, n) == 0;
}

static void value_add(value_t *v, char c)
{
    if (v->len < sizeof(v->text))
        v->text[v->len] = c;
    v->len++;
    if (!is_tchar((unsigned char)c))
        v->token = 0;
}

/* Reads a token or a quoted string. Returns 0, or -1 on bad syntax (no
 * value, or a quoted string that does not end). A quoted value that is not
 * a token after unquoting is read whole and marked, so that the scan goes
 * on after it. */
static int take_value(scan_t *sc, value_t *v)
{
    v->present = 1;
    v->token = 1;
    if (sc->at < sc->len && sc->s[sc->at] == '"') {
        sc->at++;
        for (;;) {
            if (sc->at >= sc->len)
                return -1;
            char c = sc->s[sc->at++];
            if (c == '"')
                break;
            if (c == '\\') {
                if (sc->at >= sc->len)
                    return -1;
                c = sc->s[sc->at++];
            }
            value_add(v, c);
        }
        if (v->len == 0)
            v->token = 0;
        return 0;
    }
    size_t start = sc->at;
    size_t n = take_token(sc);
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        value_add(v, sc->s[start + i]);
    return 0;
}

/* 8..15 for a decimal without leading zeros in that range, else 0. */
static int window_bits_value(const value_t *v)
{
    if (!v->token)
        return 0;
    if (v->len == 1 && v->text[0] >= '8' && v->text[0] <= '9')
        return v->text[0] - '0';
    if (v->len == 2 && v->text[0] == '1' && v->text[1] >= '0' && v->text[1] <= '5')
        return 10 + (v->text[1] - '0');
    return 0;
}

static void offer_param(offer_t *o, const char *name, size_t n, const value_t *v)
{
    unsigned which;
    if (token_is(name, n, "server_no_context_takeover"))
        which = P_SERVER_NO_CONTEXT;
    else if (token_is(name, n, "client_no_context_takeover"))
        which = P_CLIENT_NO_CONTEXT;
    else if (token_is(name, n, "server_max_window_bits"))
        which = P_SERVER_BITS;
    else if (token_is(name, n, "client_max_window_bits"))
        which = P_CLIENT_BITS;
    else
        which = 0;
    if (which == 0 || (o->seen & which)) {
        o->declined = 1;
        return;
    }
    o->seen |= which;
    switch (which) {
    case P_SERVER_NO_CONTEXT:
    case P_CLIENT_NO_CONTEXT:
        if (v->present)
            o->declined = 1;
        break;
    case P_SERVER_BITS:
        o->server_bits = v->present ? window_bits_value(v) : 0;
        if (o->server_bits == 0)
            o->declined = 1;
        break;
    default: /* P_CLIENT_BITS */
        if (v->present && window_bits_value(v) == 0)
            o->declined = 1;
        break;
    }
}

/* Reads one element of the list, up to the next top-level comma or the end.
 * Returns 0 with *ours set when it is a permessage-deflate offer (then *o
 * says what it asks), or -1 on bad syntax. */
static int take_element(scan_t *sc, offer_t *o, int *ours)
{
    memset(o, 0, sizeof(*o));
    *ours = 0;
    skip_ows(sc);
    if (sc->at >= sc->len || sc->s[sc->at] == ',')
        return 0; /* an empty element, allowed in a list */
    const char *name = sc->s + sc->at;
    size_t n = take_token(sc);
    if (n == 0)
        return -1;
    *ours = token_is(name, n, "permessage-deflate");
    for (;;) {
        skip_ows(sc);
        if (sc->at >= sc->len || sc->s[sc->at] == ',')
            return 0;
        if (sc->s[sc->at] != ';')
            return -1;
        sc->at++;
        skip_ows(sc);
        const char *pname = sc->s + sc->at;
        size_t pn = take_token(sc);
        if (pn == 0)
            return -1;
        value_t v;
        memset(&v, 0, sizeof(v));
        skip_ows(sc);
        if (sc->at < sc->len && sc->s[sc->at] == '=') {
            sc->at++;
            skip_ows(sc);
            if (take_value(sc, &v) != 0)
                return -1;
        }
        offer_param(o, pname, pn, &v);
    }
}

/* After bad syntax: moves to the next comma that is not inside quotes. */
static void skip_element(scan_t *sc)
{
    int quoted = 0;
    while (sc->at < sc->len) {
        char c = sc->s[sc->at];
        if (quoted && c == '\\' && sc->at + 1 < sc->len) {
            sc->at += 2;
            continue;
        }
        if (c == '"')
            quoted = !quoted;
        else if (c == ',' && !quoted)
            return;
        sc->at++;
    }
}

int ifc_ws_deflate_negotiate(const char *value, size_t len,
                             char response[IFC_WS_DEFLATE_RESPONSE_MAX], uint8_t *window_bits)
{
    scan_t sc = {value, len, 0};
    while (sc.at < sc.len) {
        offer_t o;
        int ours;
        if (take_element(&sc, &o, &ours) != 0) {
            skip_element(&sc);
        } else if (ours && !o.declined) {
            int n;
            if (o.server_bits)
                n = snprintf(response, IFC_WS_DEFLATE_RESPONSE_MAX,
                             "permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover; server_max_window_bits=%d",
                             o.server_bits);
            else
                n = snprintf(response, IFC_WS_DEFLATE_RESPONSE_MAX,
                             "permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover");
            assert(n > 0 && n < IFC_WS_DEFLATE_RESPONSE_MAX);
            (void)n;
            *window_bits = (uint8_t)(o.server_bits ? o.server_bits : IFC_WS_DEFLATE_WINDOW_BITS);
            return 1;
        }
        sc.at++; /* the comma */
    }
    return 0;
}

int ifc_ws_deflate_negotiate_request(const ifc_http_request_t *req,
                                     char response[IFC_WS_DEFLATE_RESPONSE_MAX],
                                     uint8_t *window_bits)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        const ifc_http_header_t *h = &req->headers[i];
        if (token_is(h->name, h->name_len, "sec-websocket-extensions") &&
            ifc_ws_deflate_negotiate(h->value, h->value_len, response, window_bits) == 1)
            return 1;
    }
    return 0;
}

int ifc_ws_deflate_fits(uint8_t window_bits, size_t len)
{
    if (window_bits < 8)
        return 0;
    return window_bits >= WINDOW_BITS || len <= ((size_t)1 << window_bits);
}

/* Compression. */

struct ifc_ws_deflater {
    z_stream z;
    uint8_t *buf; /* ifc_ws_deflate_shrink's output */
    size_t cap;
};

int ifc_ws_deflater_new(ifc_ws_deflater_t **out)
{
    ifc_ws_deflater_t *d = calloc(1, sizeof(*d));
    if (!d)
        return MC_ENOMEM;
    if (deflateInit2(&d->z, DEFLATE_LEVEL, Z_DEFLATED, -WINDOW_BITS, DEFLATE_MEM_LEVEL,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        free(d);
        return MC_ENOMEM;
    }
    *out = d;
    return 0;
}

void ifc_ws_deflater_free(ifc_ws_deflater_t *d)
{
    if (!d)
        return;
    deflateEnd(&d->z);
    free(d->buf);
    free(d);
}

size_t ifc_ws_deflate_bound(size_t len)
{
    /* zlib's bound for a whole stream with a header and a final block, plus
     * the empty stored block of the flush (at most 5 bytes) and one spare
     * byte: ifc_ws_deflate needs output space left over to know it is done.
     * This is the bound for zlib's default parameters; ours use smaller
     * blocks, which cost at most 5 bytes more per 1,023 input bytes. */
    if (len > SIZE_MAX / 2)
        return SIZE_MAX;
    return compressBound(len) + len / 1023 * 5 + 5 + 1;
}

int ifc_ws_deflate(ifc_ws_deflater_t *d, const void *in, size_t len, uint8_t *out, size_t cap,
                   size_t *out_len)
{
    if (len > UINT_MAX)
        return MC_ETOOBIG;
    uInt room = cap > UINT_MAX ? UINT_MAX : (uInt)cap;
    deflateReset(&d->z);
    d->z.next_in = in;
    d->z.avail_in = (uInt)len;
    d->z.next_out = out;
    d->z.avail_out = room;
    int rc = deflate(&d->z, Z_SYNC_FLUSH);
    if (rc == Z_MEM_ERROR)
        return MC_ENOMEM;
    /* Output space used up: the flush may not be complete. */
    if ((rc != Z_OK && rc != Z_BUF_ERROR) || d->z.avail_in != 0 || d->z.avail_out == 0)
        return MC_ETOOBIG;
    size_t n = room - d->z.avail_out;
    assert(n >= sizeof(TAIL) && memcmp(out + n - sizeof(TAIL), TAIL, sizeof(TAIL)) == 0);
    *out_len = n - sizeof(TAIL);
    return 0;
}

int ifc_ws_deflate_shrink(ifc_ws_deflater_t *d, const void *in, size_t len, const uint8_t **out,
                          size_t *out_len)
{
    size_t want = len > BUFFER_KEEP ? len : BUFFER_KEEP;
    if (d->cap != want) {
        free(d->buf);
        d->cap = 0;
        d->buf = malloc(want);
        if (!d->buf)
            return MC_ENOMEM;
        d->cap = want;
    }
    /* A cap of len: what fits, with the byte ifc_ws_deflate needs spare and
     * the 4 bytes it cuts off, is shorter than len. */
    int rc = ifc_ws_deflate(d, in, len, d->buf, len, out_len);
    if (rc == 0)
        *out = d->buf;
    return rc;
}

/* Decompression. */

struct ifc_ws_inflater {
    z_stream z;
    uint8_t *buf; /* the message inflated so far */
    size_t len, cap;
    size_t max;
    int err;   /* the message's first error, or 0 */
    int ended; /* a final block was read: what follows is ignored */
};

int ifc_ws_inflater_new(ifc_ws_inflater_t **out)
{
    ifc_ws_inflater_t *z = calloc(1, sizeof(*z));
    if (!z)
        return MC_ENOMEM;
    if (inflateInit2(&z->z, -WINDOW_BITS) != Z_OK) {
        free(z);
        return MC_ENOMEM;
    }
    *out = z;
    return 0;
}

void ifc_ws_inflater_free(ifc_ws_inflater_t *z)
{
    if (!z)
        return;
    inflateEnd(&z->z);
    free(z->buf);
    free(z);
}

void ifc_ws_inflate_begin(ifc_ws_inflater_t *z, size_t max)
{
    inflateReset(&z->z);
    if (z->cap > BUFFER_KEEP) {
        free(z->buf);
        z->buf = NULL;
        z->cap = 0;
    }
    z->len = 0;
    z->max = max;
    z->err = 0;
    z->ended = 0;
}

static int fail(ifc_ws_inflater_t *z, int rc)
{
    z->err = rc;
    return rc;
}

/* Makes room for more output: the buffer doubles up to one byte over the
 * maximum, so that a message one byte too long is caught. */
static int grow(ifc_ws_inflater_t *z)
{
    size_t limit = z->max < SIZE_MAX ? z->max + 1 : SIZE_MAX;
    if (z->cap >= limit)
        return MC_ETOOBIG;
    size_t cap = z->cap ? z->cap : INFLATE_MIN_CAP;
    while (cap <= z->len)
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    if (cap > limit)
        cap = limit;
    uint8_t *b = realloc(z->buf, cap);
    if (!b)
        return MC_ENOMEM;
    z->buf = b;
    z->cap = cap;
    return 0;
}

/* Inflates in[0..n), n <= UINT_MAX, appending to the output. */
static int inflate_piece(ifc_ws_inflater_t *z, const uint8_t *in, size_t n)
{
    z->z.next_in = in;
    z->z.avail_in = (uInt)n;
    for (;;) {
        if (z->len == z->cap) {
            int rc = grow(z);
            if (rc != 0)
                return fail(z, rc);
        }
        size_t room = z->cap - z->len;
        uInt give = room > UINT_MAX ? UINT_MAX : (uInt)room;
        z->z.next_out = z->buf + z->len;
        z->z.avail_out = give;
        int rc = inflate(&z->z, Z_SYNC_FLUSH);
        z->len += give - z->z.avail_out;
        if (z->len > z->max)
            return fail(z, MC_ETOOBIG);
        switch (rc) {
        case Z_STREAM_END:
            z->ended = 1;
            return 0;
        case Z_OK:
        case Z_BUF_ERROR:
            /* Stopped for want of input, with all output written out. */
            if (z->z.avail_in == 0 && z->z.avail_out > 0)
                return 0;
            break;
        case Z_MEM_ERROR:
            return fail(z, MC_ENOMEM);
        default: /* Z_DATA_ERROR, Z_NEED_DICT */
            return fail(z, MC_EINVAL);
        }
    }
}

int ifc_ws_inflate_feed(ifc_ws_inflater_t *z, const void *in, size_t len)
{
    const uint8_t *p = in;
    while (len > 0 && !z->err && !z->ended) {
        size_t n = len > UINT_MAX ? UINT_MAX : len;
        inflate_piece(z, p, n);
        p += n;
        len -= n;
    }
    return z->err;
}

int ifc_ws_inflate_end(ifc_ws_inflater_t *z, const uint8_t **out, size_t *out_len)
{
    if (!z->err && !z->ended) {
        inflate_piece(z, TAIL, sizeof(TAIL));
        /* After the tail's empty stored block the decoder must wait for the
         * next block's header; anywhere else, the message ended inside a
         * block. */
        if (!z->err && !z->ended && !(z->z.data_type & 128))
            fail(z, MC_EINVAL);
    }
    if (z->err)
        return z->err;
    *out = z->buf ? z->buf : TAIL; /* an empty message: any valid pointer */
    *out_len = z->len;
    return 0;
}

int ifc_ws_inflate_message(ifc_ws_inflater_t *z, size_t max, const void *in, size_t len,
                           const uint8_t **out, size_t *out_len)
{
    ifc_ws_inflate_begin(z, max);
    int rc = ifc_ws_inflate_feed(z, in, len);
    if (rc != 0)
        return rc;
    return ifc_ws_inflate_end(z, out, out_len);
}

int ifc_ws_inflate_close_code(int rc)
{
    switch (rc) {
    case MC_ETOOBIG:
        return MC_CLOSE_TOO_BIG;
    case MC_EINVAL:
        return MC_CLOSE_INVALID_DATA;
    default:
        return MC_CLOSE_INTERNAL_ERROR;
    }
}
