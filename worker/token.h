/*
 * worker/token.h: unguessable tokens for sessions and CSRF.
 *
 * A token is 128 bits from the kernel's CSPRNG (getrandom(2)), written as 32
 * lower-case hex digits. Comparisons of secrets take the same time wherever
 * the first difference is.
 */
#ifndef MC_WORKER_TOKEN_H
#define MC_WORKER_TOKEN_H

#include <stddef.h>

#define WRK_TOKEN_BYTES 16
#define WRK_TOKEN_HEX_LEN (2 * WRK_TOKEN_BYTES) /* without the NUL */

/* Writes a fresh token and a NUL into out. Returns 0 or MC_EIO when the
 * kernel gives no randomness (then out holds an empty string). */
int wrk_token_new(char out[WRK_TOKEN_HEX_LEN + 1]);

/* Returns 1 when a[0..alen) is a well-formed token (32 lower-case hex
 * digits), else 0. */
int wrk_token_valid(const char *a, size_t alen);

/* Returns 1 when a[0..alen) and b[0..blen) are equal, comparing every byte
 * of equal-length inputs whatever their content; else 0. */
int wrk_token_equal(const char *a, size_t alen, const char *b, size_t blen);

#endif
