/*
 * common/utf8.h: an incremental UTF-8 validator.
 *
 * WebSocket text messages arrive in fragments that may split a character
 * anywhere, so the validator carries its state from one call to the next and
 * fails as soon as a byte can no longer start or continue a well-formed
 * sequence (RFC 6455 section 8.1 asks to fail fast). It accepts exactly the
 * well-formed sequences of Unicode table 3-7: no overlong forms, no UTF-16
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF. Pure code, no
 * allocation; the state is three bytes the caller embeds. Workers check
 * whole strings with it too (room titles, which every client receives in
 * text frames).
 */
#ifndef MC_COMMON_UTF8_H
#define MC_COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>

typedef struct mc_utf8 {
    uint8_t need; /* private: continuation bytes still expected */
    uint8_t lo;   /* private: smallest allowed value of the next byte */
    uint8_t hi;   /* private: largest allowed value of the next byte */
} mc_utf8_t;

/* Puts the validator at a character boundary. */
void mc_utf8_init(mc_utf8_t *v);

/* Validates data[0..len) as the continuation of what came before. Returns 0
 * while the bytes so far are a prefix of valid UTF-8, MC_EINVAL as soon as
 * they are not (the state is then meaningless until mc_utf8_init). */
int mc_utf8_feed(mc_utf8_t *v, const void *data, size_t len);

/* Returns 1 when the bytes fed so far end at a character boundary (a
 * complete message may end here), 0 inside a character. */
int mc_utf8_complete(const mc_utf8_t *v);

/* Validates one whole buffer: 0 or MC_EINVAL. */
int mc_utf8_check(const void *data, size_t len);

#endif
