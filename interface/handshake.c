/*
 * interface/handshake.c: SHA-1 (FIPS 180-4), base64 (RFC 4648) and the
 * WebSocket opening handshake checks (see handshake.h).
 */
#include "interface/handshake.h"

#include <string.h>

#include "common/error.h"

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const uint8_t *b)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (bb & c) | (~bb & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = bb ^ c ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (bb & c) | (bb & d) | (c & d);
            k = 0x8F1BBCDC;
        } else {
            f = bb ^ c ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(bb, 30);
        bb = a;
        a = t;
    }
    h[0] += a;
    h[1] += bb;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ifc_sha1(const void *data, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    const uint8_t *p = data;
    size_t left = len;
    while (left >= 64) {
        sha1_block(h, p);
        p += 64;
        left -= 64;
    }
    uint8_t last[128] = {0};
    if (left > 0)
        memcpy(last, p, left);
    last[left] = 0x80;
    size_t total = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        last[total - 1 - i] = (uint8_t)(bits >> (8 * i));
    sha1_block(h, last);
    if (total == 128)
        sha1_block(h, last + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t ifc_base64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = B64[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = B64[v >> 18];
        out[o++] = B64[(v >> 12) & 63];
        out[o++] = B64[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

int ifc_base64_decode(const char *in, size_t len, uint8_t *out, size_t size)
{
    if (len % 4 != 0)
        return MC_EINVAL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (in[i + k] == '=') {
                /* Padding only at the very end, in the last two places. */
                if (i + 4 != len || k < 2)
                    return MC_EINVAL;
                v[k] = 0;
                pad++;
            } else {
                if (pad)
                    return MC_EINVAL;
                v[k] = b64_value(in[i + k]);
                if (v[k] < 0)
                    return MC_EINVAL;
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | v[3];
        size_t n = 3 - (size_t)pad;
        if (n > size - o)
            return MC_ETOOBIG;
        out[o++] = (uint8_t)(x >> 16);
        if (n > 1)
            out[o++] = (uint8_t)(x >> 8);
        if (n > 2)
            out[o++] = (uint8_t)x;
    }
    return (int)o;
}

int ifc_ws_accept_key(const char *key, size_t key_len, char out[IFC_WS_ACCEPT_LEN + 1])
{
    uint8_t raw[16];
    char buf[24 + sizeof(WS_GUID)];
    uint8_t digest[20];
    if (key_len != 24 || ifc_base64_decode(key, key_len, raw, sizeof(raw)) != 16)
        return MC_EINVAL;
    memcpy(buf, key, 24);
    memcpy(buf + 24, WS_GUID, sizeof(WS_GUID) - 1);
    ifc_sha1(buf, 24 + sizeof(WS_GUID) - 1, digest);
    ifc_base64_encode(digest, sizeof(digest), out);
    return 0;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int equal_nocase(const char *a, size_t al, const char *b, size_t bl)
{
    if (al != bl)
        return 0;
    for (size_t i = 0; i < al; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

int ifc_origin_allowed(const char *origin, size_t origin_len, const char *host, size_t host_len,
                       const char *scheme, const char *allowed)
{
    if (allowed && *allowed) {
        const char *p = allowed;
        while (*p) {
            while (*p == ',' || *p == ' ')
                p++;
            const char *start = p;
            while (*p && *p != ',')
                p++;
            const char *end = p;
            while (end > start && end[-1] == ' ')
                end--;
            if (end - start == 1 && *start == '*')
                return 1;
            if (origin && end > start &&
                equal_nocase(origin, origin_len, start, (size_t)(end - start)))
                return 1;
        }
        return 0;
    }
    if (!origin || !host || host_len == 0 || !scheme)
        return 0;
    /* The page's own origin: the request's scheme, "://", its Host (no
     * path). A page served over http may not open the socket of an https
     * site of the same name, nor the other way round. */
    size_t sl = strlen(scheme);
    if (origin_len < sl + 3 || !equal_nocase(origin, sl, scheme, sl) ||
        memcmp(origin + sl, "://", 3) != 0)
        return 0;
    const char *auth = origin + sl + 3;
    size_t auth_len = origin_len - sl - 3;
    if (memchr(auth, '/', auth_len))
        return 0;
    return equal_nocase(auth, auth_len, host, host_len);
}

int ifc_handshake_check(const ifc_http_request_t *req, const char *allowed, int check_origin,
                        const char *scheme, char accept[IFC_WS_ACCEPT_LEN + 1])
{
    size_t vlen, klen, olen, hlen;
    if (strcmp(req->method, "GET") != 0)
        return 400;
    if (req->version_major != 1 || req->version_minor < 1)
        return 400;
    if (!ifc_http_header_has_token(req, "upgrade", "websocket") ||
        !ifc_http_header_has_token(req, "connection", "upgrade"))
        return 400;
    const char *version = ifc_http_header(req, "sec-websocket-version", &vlen);
    if (!version || vlen != 2 || memcmp(version, "13", 2) != 0)
        return 426;
    const char *key = ifc_http_header(req, "sec-websocket-key", &klen);
    if (!key || ifc_ws_accept_key(key, klen, accept) != 0)
        return 400;
    if (check_origin) {
        const char *origin = ifc_http_header(req, "origin", &olen);
        const char *host = ifc_http_header(req, "host", &hlen);
        if (!ifc_origin_allowed(origin, olen, host, hlen, scheme, allowed))
            return 403;
    }
    return 0;
}
