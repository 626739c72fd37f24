/* Fuzz target for interface/ip.c and interface/proxy.c: the trusted proxies
 * and X-Forwarded-For, which clients write. The input is lines: the first
 * is the list of trusted blocks, the second the peer's address, the third
 * X-Forwarded-Proto, each further one an X-Forwarded-For header. */
#include "interface/ip.h"
#include "interface/proxy.h"
#include "common/error.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next line of data[*off..size), NUL-terminated in a copy of its own,
 * so that ASan sees reads past it. */
static char *next_line(const uint8_t *data, size_t size, size_t *off)
{
    if (*off > size)
        return NULL;
    const uint8_t *start = data + *off, *nl = memchr(start, '\n', size - *off);
    size_t len = nl ? (size_t)(nl - start) : size - *off;
    char *s = malloc(len + 1);
    memcpy(s, start, len);
    s[len] = '\0';
    *off += len + 1;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    char *lines[2 + IFC_HTTP_MAX_HEADERS];
    size_t n = 0;
    while (n < sizeof(lines) / sizeof(lines[0]) && (lines[n] = next_line(data, size, &off)))
        n++;
    ifc_cidrs_t trusted;
    ifc_ip_t peer;
    if (n >= 2 && ifc_cidrs_parse(lines[0], &trusted) == 0) {
        for (size_t i = 0; i < trusted.n; i++) /* a block holds its own address */
            if (!ifc_cidrs_match(&trusted, &trusted.v[i].ip))
                abort();
        if (ifc_ip_parse_forwarded(lines[1], strlen(lines[1]), &peer) != 0)
            memset(&peer, 0, sizeof(peer));
        peer.family = peer.family ? peer.family : 4;
        ifc_http_request_t req;
        ifc_http_header_t fields[IFC_HTTP_MAX_HEADERS];
        memset(&req, 0, sizeof(req));
        req.headers = fields;
        for (size_t i = 2; i < n && req.nheaders < IFC_HTTP_MAX_HEADERS; i++) {
            ifc_http_header_t *h = &req.headers[req.nheaders++];
            h->name = i == 2 ? "x-forwarded-proto" : "x-forwarded-for";
            h->name_len = strlen(h->name);
            h->value = lines[i];
            h->value_len = strlen(lines[i]);
        }
        ifc_client_t c;
        ifc_proxy_client(&trusted, &peer, &req, &c);
        if (c.ip.family != 4 && c.ip.family != 6)
            abort();
        if (!ifc_cidrs_match(&trusted, &peer) &&
            (c.forwarded || c.https || !ifc_ip_equal(&c.ip, &peer)))
            abort();
        /* What is written reads back the same. */
        char text[IFC_IP_TEXT_MAX];
        ifc_ip_t again;
        ifc_ip_format(&c.ip, text);
        if (ifc_ip_parse(text, strlen(text), &again) != 0 || !ifc_ip_equal(&again, &c.ip))
            abort();
        ifc_cidrs_clear(&trusted);
    }
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    return 0;
}
