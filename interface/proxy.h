/*
 * interface/proxy.h: who the client of a request is, behind trusted
 * proxies.
 *
 * A request from a peer that is not a trusted proxy comes from that peer,
 * over plain HTTP (the interface has no TLS of its own), whatever its
 * X-Forwarded-For and X-Forwarded-Proto say: anyone can write them.
 *
 * A request from a trusted proxy (CHAT_TRUSTED_PROXIES) comes from the
 * right-most X-Forwarded-For entry that is not itself a trusted proxy:
 * every proxy appends the address it saw, so the entries right of that one
 * were written by proxies we trust, and those left of it by the client,
 * who may have made them up. When every entry is trusted the left-most is
 * the client; an entry that is no address ends the walk, and the last
 * trusted address before it is taken. Several X-Forwarded-For lines read
 * as one list, in order. Without the header the proxy itself is the
 * client. X-Forwarded-Proto from a trusted proxy says whether the client
 * came over HTTPS: its right-most value, "https" in any case, or not.
 */
#ifndef MC_INTERFACE_PROXY_H
#define MC_INTERFACE_PROXY_H

#include "interface/http.h"
#include "interface/ip.h"

typedef struct ifc_client {
    ifc_ip_t ip;   /* the client's address */
    int https;     /* the client came over HTTPS (said a trusted proxy) */
    int forwarded; /* ip came from X-Forwarded-For of a trusted proxy */
} ifc_client_t;

/* The client of req, received from peer, with trusted the trusted proxies
 * (see above). */
void ifc_proxy_client(const ifc_cidrs_t *trusted, const ifc_ip_t *peer,
                      const ifc_http_request_t *req, ifc_client_t *out);

/* "https" or "http", as the envelopes and the Origin check name it. */
static inline const char *ifc_client_scheme(const ifc_client_t *c)
{
    return c->https ? "https" : "http";
}

#endif
