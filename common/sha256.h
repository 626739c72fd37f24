/*
 * common/sha256.h: SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104), for
 * what must be kept or signed without being readable: workers store the
 * SHA-256 of session tokens, never the tokens, and sign device cookies
 * with HMAC.
 *
 * Pure code, no allocation. Inputs are (pointer, length) and may hold any
 * byte.
 */
#ifndef MC_COMMON_SHA256_H
#define MC_COMMON_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define MC_SHA256_BYTES 32
#define MC_SHA256_HEX_LEN (2 * MC_SHA256_BYTES) /* without the NUL */

/* The digest of data[0..len) in out. */
void mc_sha256(const void *data, size_t len, uint8_t out[MC_SHA256_BYTES]);

/* HMAC-SHA-256 of data[0..len) under key[0..key_len) in out. */
void mc_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                    uint8_t out[MC_SHA256_BYTES]);

/* Writes in[0..n) as 2n lower-case hex digits and a NUL into out (2n + 1
 * bytes). */
void mc_hex(const uint8_t *in, size_t n, char *out);

/* mc_sha256 of data[0..len), written as hex with a NUL into out. */
void mc_sha256_hex(const void *data, size_t len, char out[MC_SHA256_HEX_LEN + 1]);

#endif
