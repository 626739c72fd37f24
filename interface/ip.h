/*
 * interface/ip.h: client addresses, IPv4 and IPv6, and lists of address
 * blocks (CIDR), for the interface's trusted proxies and its limits per
 * address. No sockets here: text and sockaddrs in, values out.
 *
 * An ifc_ip_t holds one address in binary. An IPv4 address mapped into
 * IPv6 (::ffff:192.0.2.1, as a dual-stack listener reports IPv4 peers) is
 * stored, compared and written as the IPv4 address itself, so that one
 * client has one value whichever way it arrived.
 *
 * Address text is what inet_pton(3) takes, no more: no zone ("%eth0"), no
 * leading zeros in IPv4 ("010.1.1.1" is refused, not read as octal).
 */
#ifndef MC_INTERFACE_IP_H
#define MC_INTERFACE_IP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define IFC_IP_TEXT_MAX 46 /* INET6_ADDRSTRLEN: the longest address text, with its NUL */

typedef struct ifc_ip {
    uint8_t family;    /* 4 or 6; 0: no address */
    uint8_t bytes[16]; /* network order; IPv4 in the first 4 */
} ifc_ip_t;

/* Reads address text s[0..len) into *out. Returns 0 or MC_EINVAL. */
int ifc_ip_parse(const char *s, size_t len, ifc_ip_t *out);

/* Reads one X-Forwarded-For entry s[0..len): an address, blanks around it
 * allowed, with a port as proxies sometimes add one ("192.0.2.1:4711",
 * "[2001:db8::1]:4711") or IPv6 in brackets alone. Returns 0 or MC_EINVAL
 * ("unknown", an obfuscated name, anything else). */
int ifc_ip_parse_forwarded(const char *s, size_t len, ifc_ip_t *out);

/* The address of a socket address (AF_INET or AF_INET6); family 0 for
 * anything else. */
void ifc_ip_from_sockaddr(const struct sockaddr *sa, ifc_ip_t *out);

/* Writes the address text (NUL-terminated, at most IFC_IP_TEXT_MAX bytes
 * with the NUL) into out; "" for no address. */
void ifc_ip_format(const ifc_ip_t *ip, char out[IFC_IP_TEXT_MAX]);

/* 1 when a and b are the same address, else 0. */
int ifc_ip_equal(const ifc_ip_t *a, const ifc_ip_t *b);

/* The block that limits per address count by: an IPv4 address itself, and
 * the /64 of an IPv6 address, since one IPv6 host usually holds a whole
 * /64 and could otherwise pass as 2^64 clients. */
void ifc_ip_limit_key(const ifc_ip_t *ip, ifc_ip_t *out);

/* A list of address blocks: "192.0.2.10, 10.0.0.0/8, ::1, fd00::/8". */
typedef struct ifc_cidr {
    ifc_ip_t ip; /* the block's first bits; the rest are zero */
    uint8_t bits;
} ifc_cidr_t;

typedef struct ifc_cidrs {
    ifc_cidr_t *v; /* owned */
    size_t n;
} ifc_cidrs_t;

/* Parses text (NULL or "" is the empty list): entries separated by commas
 * and blanks, each an address (a block of one) or address/bits. Bits past
 * the prefix must be zero ("10.1.0.0/8" is refused as a likely mistake).
 * Returns 0 and *out (free with ifc_cidrs_clear), MC_EINVAL (and *out is
 * empty), MC_ENOMEM. */
int ifc_cidrs_parse(const char *text, ifc_cidrs_t *out);

/* 1 when ip lies in one of the blocks, else 0. */
int ifc_cidrs_match(const ifc_cidrs_t *list, const ifc_ip_t *ip);

void ifc_cidrs_clear(ifc_cidrs_t *list);

#endif
