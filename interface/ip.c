/*
 * interface/ip.c: addresses and address blocks (see ip.h), over
 * inet_pton(3) and inet_ntop(3).
 */
#include "interface/ip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* An IPv6 address that maps an IPv4 one becomes that IPv4 address. */
static void set_v6(ifc_ip_t *out, const uint8_t bytes[16])
{
    memset(out, 0, sizeof(*out));
    if (memcmp(bytes, v4_mapped, sizeof(v4_mapped)) == 0) {
        out->family = 4;
        memcpy(out->bytes, bytes + 12, 4);
    } else {
        out->family = 6;
        memcpy(out->bytes, bytes, 16);
    }
}

int ifc_ip_parse(const char *s, size_t len, ifc_ip_t *out)
{
    char buf[IFC_IP_TEXT_MAX];
    uint8_t bytes[16];
    memset(out, 0, sizeof(*out));
    if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len))
        return MC_EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, bytes) == 1) {
        out->family = 4;
        memcpy(out->bytes, bytes, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, bytes) == 1) {
        set_v6(out, bytes);
        return 0;
    }
    return MC_EINVAL;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* 1 when s[0..len) is a port: 1 to 5 digits. */
static int is_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

int ifc_ip_parse_forwarded(const char *s, size_t len, ifc_ip_t *out)
{
    while (len > 0 && is_blank(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_blank(s[len - 1]))
        len--;
    if (len > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            goto bad;
        size_t after = len - (size_t)(close + 1 - s);
        if (after > 0 && !(close[1] == ':' && is_port(close + 2, after - 1)))
            goto bad;
        if (ifc_ip_parse(s + 1, (size_t)(close - s - 1), out) != 0 || out->family != 6)
            goto bad;
        return 0;
    }
    /* One colon is IPv4 with a port; more are IPv6 without brackets. */
    const char *colon = memchr(s, ':', len);
    if (colon && !memchr(colon + 1, ':', len - (size_t)(colon + 1 - s))) {
        if (!is_port(colon + 1, len - (size_t)(colon + 1 - s)) ||
            ifc_ip_parse(s, (size_t)(colon - s), out) != 0 || out->family != 4)
            goto bad;
        return 0;
    }
    if (ifc_ip_parse(s, len, out) == 0)
        return 0;
bad:
    memset(out, 0, sizeof(*out));
    return MC_EINVAL;
}

void ifc_ip_from_sockaddr(const struct sockaddr *sa, ifc_ip_t *out)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        out->family = 4;
        memcpy(out->bytes, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        set_v6(out, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    }
}

void ifc_ip_format(const ifc_ip_t *ip, char out[IFC_IP_TEXT_MAX])
{
    out[0] = '\0';
    if (ip->family == 4)
        inet_ntop(AF_INET, ip->bytes, out, IFC_IP_TEXT_MAX);
    else if (ip->family == 6)
        inet_ntop(AF_INET6, ip->bytes, out, IFC_IP_TEXT_MAX);
}

int ifc_ip_equal(const ifc_ip_t *a, const ifc_ip_t *b)
{
    return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

/* Keeps the first bits of ip and clears the rest. */
static void mask(ifc_ip_t *ip, unsigned bits)
{
    for (unsigned i = 0; i < 16; i++) {
        if (bits >= 8 * (i + 1))
            continue;
        unsigned keep = bits > 8 * i ? bits - 8 * i : 0;
        ip->bytes[i] &= (uint8_t)(0xff00u >> keep);
    }
}

void ifc_ip_limit_key(const ifc_ip_t *ip, ifc_ip_t *out)
{
    *out = *ip;
    if (out->family == 6)
        mask(out, 64);
}

/* ---- Lists of blocks ----------------------------------------------------------- */

/* Parses one entry s[0..len), "address" or "address/bits". */
static int parse_cidr(const char *s, size_t len, ifc_cidr_t *out)
{
    const char *slash = memchr(s, '/', len);
    size_t alen = slash ? (size_t)(slash - s) : len;
    if (ifc_ip_parse(s, alen, &out->ip) != 0)
        return MC_EINVAL;
    unsigned max = out->ip.family == 4 ? 32 : 128;
    unsigned bits = max;
    if (slash) {
        size_t dl = len - alen - 1;
        if (dl == 0 || dl > 3)
            return MC_EINVAL;
        bits = 0;
        for (size_t i = 0; i < dl; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9' || (i == 0 && c == '0' && dl > 1))
                return MC_EINVAL;
            bits = bits * 10 + (unsigned)(c - '0');
        }
        if (bits > max)
            return MC_EINVAL;
    }
    ifc_ip_t masked = out->ip;
    mask(&masked, bits);
    if (!ifc_ip_equal(&masked, &out->ip))
        return MC_EINVAL;
    out->bits = (uint8_t)bits;
    return 0;
}

int ifc_cidrs_parse(const char *text, ifc_cidrs_t *out)
{
    out->v = NULL;
    out->n = 0;
    if (!text)
        return 0;
    size_t cap = 0;
    const char *p = text;
    for (;;) {
        while (*p == ',' || is_blank(*p))
            p++;
        if (!*p)
            return 0;
        const char *start = p;
        while (*p && *p != ',' && !is_blank(*p))
            p++;
        if (out->n == cap) {
            size_t ncap = cap ? 2 * cap : 4;
            ifc_cidr_t *v = realloc(out->v, ncap * sizeof(*v));
            if (!v) {
                ifc_cidrs_clear(out);
                return MC_ENOMEM;
            }
            out->v = v;
            cap = ncap;
        }
        if (parse_cidr(start, (size_t)(p - start), &out->v[out->n]) != 0) {
            ifc_cidrs_clear(out);
            return MC_EINVAL;
        }
        out->n++;
    }
}

int ifc_cidrs_match(const ifc_cidrs_t *list, const ifc_ip_t *ip)
{
    for (size_t i = 0; i < list->n; i++) {
        const ifc_cidr_t *c = &list->v[i];
        if (c->ip.family != ip->family)
            continue;
        ifc_ip_t masked = *ip;
        mask(&masked, c->bits);
        if (ifc_ip_equal(&masked, &c->ip))
            return 1;
    }
    return 0;
}

void ifc_cidrs_clear(ifc_cidrs_t *list)
{
    free(list->v);
    list->v = NULL;
    list->n = 0;
}
