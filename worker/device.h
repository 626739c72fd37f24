/*
 * worker/device.h: device cookies, after OWASP's "Slow Down Online Guessing
 * Attacks with Device Cookies". A browser that logged in as a user gets a
 * cookie, signed with a key every worker of the database shares, that
 * names the user and a random device id. With it, that browser's logins
 * are slowed by its own failures only, never by those of strangers who
 * guess the user's password from elsewhere.
 *
 * The cookie's text: <user id>.<32 hex digits: the device id>.<64 hex
 * digits: HMAC-SHA-256 under the key of everything before the last dot>.
 * Pure code but for the randomness of a new id.
 */
#ifndef MC_WORKER_DEVICE_H
#define MC_WORKER_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "worker/token.h"

#define WRK_DEVICE_COOKIE "device"
#define WRK_DEVICE_ID_LEN WRK_TOKEN_HEX_LEN
#define WRK_DEVICE_MAX 128 /* bytes of a cookie's text, more than any needs */

/* A new device cookie for user_id, signed with key (a NUL-terminated
 * secret), and a NUL in out. Returns 0, or MC_EIO when the kernel gives no
 * randomness. */
int wrk_device_make(const char *key, int64_t user_id, char out[WRK_DEVICE_MAX + 1]);

/* Checks cookie[0..len) (outside input: any bytes) against key. Returns 0,
 * *user_id and the device id with a NUL in id; MC_EINVAL when it is not a
 * well-formed cookie signed with key. Signatures are compared in constant
 * time. */
int wrk_device_check(const char *key, const char *cookie, size_t len, int64_t *user_id,
                     char id[WRK_DEVICE_ID_LEN + 1]);

#endif
