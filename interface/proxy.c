/*
 * interface/proxy.c: the client of a request behind trusted proxies (see
 * proxy.h): X-Forwarded-For read from the right, X-Forwarded-Proto's last
 * word.
 */
#include "interface/proxy.h"

#include <string.h>
#include <strings.h>

static int name_is(const ifc_http_header_t *h, const char *name, size_t len)
{
    return h->name_len == len && memcmp(h->name, name, len) == 0;
}

/* Walks X-Forwarded-For from its last entry to its first (see proxy.h)
 * and leaves the client it finds in *client. Returns 1 when that came
 * from the header, 0 when the header holds no address (*client is left
 * alone). */
static int forwarded_for(const ifc_cidrs_t *trusted, const ifc_http_request_t *req,
                         ifc_ip_t *client)
{
    int taken = 0;
    for (size_t i = req->nheaders; i-- > 0;) {
        const ifc_http_header_t *h = &req->headers[i];
        if (!name_is(h, "x-forwarded-for", 15))
            continue;
        size_t end = h->value_len;
        for (;;) {
            size_t start = end;
            while (start > 0 && h->value[start - 1] != ',')
                start--;
            ifc_ip_t ip;
            int blank = 1;
            for (size_t k = start; k < end && blank; k++)
                blank = h->value[k] == ' ' || h->value[k] == '\t';
            if (!blank) {
                if (ifc_ip_parse_forwarded(h->value + start, end - start, &ip) != 0)
                    return taken; /* made up by someone: the last trusted one stands */
                *client = ip;
                taken = 1;
                if (!ifc_cidrs_match(trusted, &ip))
                    return 1;
            }
            if (start == 0)
                break;
            end = start - 1;
        }
    }
    return taken;
}

/* Whether the right-most X-Forwarded-Proto value is "https". */
static int forwarded_https(const ifc_http_request_t *req)
{
    for (size_t i = req->nheaders; i-- > 0;) {
        const ifc_http_header_t *h = &req->headers[i];
        if (!name_is(h, "x-forwarded-proto", 17))
            continue;
        size_t end = h->value_len, start;
        while (end > 0 && (h->value[end - 1] == ' ' || h->value[end - 1] == '\t'))
            end--;
        start = end;
        while (start > 0 && h->value[start - 1] != ',' && h->value[start - 1] != ' ' &&
               h->value[start - 1] != '\t')
            start--;
        return end - start == 5 && strncasecmp(h->value + start, "https", 5) == 0;
    }
    return 0;
}

void ifc_proxy_client(const ifc_cidrs_t *trusted, const ifc_ip_t *peer,
                      const ifc_http_request_t *req, ifc_client_t *out)
{
    memset(out, 0, sizeof(*out));
    out->ip = *peer;
    if (!trusted || !ifc_cidrs_match(trusted, peer))
        return;
    out->forwarded = forwarded_for(trusted, req, &out->ip);
    out->https = forwarded_https(req);
}
