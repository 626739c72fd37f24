/*
 * common/cookie.h: parsing of the Cookie request header (RFC 6265, as
 * browsers send it: "name=value; name2=value2").
 *
 * Parsing allocates nothing: results are (pointer, length) pairs into the
 * caller's header bytes, valid as long as those bytes. Whitespace around
 * names and values is dropped, and a value in double quotes loses them.
 * Like Django, it is lenient with what browsers really send: a piece without
 * '=' or with an empty name is skipped rather than failing the header. It is
 * strict about what no browser sends: control bytes.
 */
#ifndef MC_COMMON_COOKIE_H
#define MC_COMMON_COOKIE_H

#include <stddef.h>

#define MC_COOKIE_MAX_BYTES 8192 /* one Cookie header */
#define MC_COOKIE_MAX_COUNT 64   /* cookies in one header */

typedef struct mc_cookie {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} mc_cookie_t;

/* Parses hdr[0..len) into out[0..cap) and stores the count in *n.
 * Returns 0; MC_ETOOBIG when len exceeds MC_COOKIE_MAX_BYTES or there are
 * more than cap (at most MC_COOKIE_MAX_COUNT) cookies; MC_EINVAL for a
 * control byte (other than tab) anywhere in the header. */
int mc_cookie_parse(const char *hdr, size_t len, mc_cookie_t *out, size_t cap, size_t *n);

/* Finds the first cookie called name (NUL-terminated) in hdr[0..len).
 * Returns 0 with *value and *value_len set; MC_ENOTFOUND; or an error of
 * mc_cookie_parse. */
int mc_cookie_find(const char *hdr, size_t len, const char *name, const char **value,
                   size_t *value_len);

#endif
