/*
 * common/json_out.h: JSON text written straight into a growing buffer, for
 * the texts that go out with every message (envelopes, chat message
 * events), where building a tree and printing it costs more than the
 * message itself.
 *
 * Strings are escaped exactly as cJSON escapes them (cJSON_Print*): the
 * quote, the backslash and the control characters U+0000..U+001F, with the
 * two-byte escapes \" \\ \b \f \n \r \t where there is one and \u00xx
 * (lower-case hex) for the others; every other byte (DEL, UTF-8, invalid
 * UTF-8 too) goes as it is. So a text written here is byte for byte the
 * one cJSON would print, and the two can be mixed.
 *
 * The writer is a value the caller embeds, zeroed (or with limit set):
 *   mc_json_out_t o = {.limit = MAX};
 *   MC_JSON_PUT(&o, "{\"a\":");  mc_json_put_string(&o, s, n);  MC_JSON_PUT(&o, "}");
 *   rc = mc_json_finish(&o, &text, &len);
 * The first failure (MC_ENOMEM, or MC_ETOOBIG past the limit: found when
 * the buffer grows, at the latest by mc_json_finish) sticks: later calls
 * do nothing and mc_json_finish returns it, freeing the buffer. On success
 * the text is malloc'd, NUL-terminated, and the caller's to free.
 */
#ifndef MC_COMMON_JSON_OUT_H
#define MC_COMMON_JSON_OUT_H

#include <stddef.h>
#include <stdint.h>

#define MC_JSON_INT_MAX 21 /* bytes of the longest int64_t in decimal, and a NUL */

typedef struct mc_json_out {
    char *buf;    /* private */
    size_t len;   /* read-only: bytes written so far */
    size_t cap;   /* private */
    size_t limit; /* public: the most bytes the text may take; 0: no limit */
    int rc;       /* read-only: the first failure, 0 while none */
} mc_json_out_t;

/* Makes room for n more bytes. Returns 0 or the failure (sticky). */
int mc_json_reserve(mc_json_out_t *o, size_t n);

/* Appends s[0..n) as it is: JSON the caller vouches for. */
void mc_json_put(mc_json_out_t *o, const char *s, size_t n);

/* A string literal, measured at compile time. */
#define MC_JSON_PUT(o, literal) mc_json_put(o, "" literal, sizeof(literal) - 1)

/* Appends s[0..n) as a JSON string, quotes included, escaped as cJSON
 * escapes (above); a NUL among the bytes is \u0000. */
void mc_json_put_string(mc_json_out_t *o, const char *s, size_t n);

/* Appends v in decimal, exactly (no double in between). */
void mc_json_put_int(mc_json_out_t *o, int64_t v);

/* Bytes a JSON string holds as they are (1) and those it escapes (0): the
 * quote, the backslash and control characters U+0000..U+001F. */
extern const unsigned char mc_json_plain[256];

/* Whether all 8 bytes of x (in memory order, any) are plain, as a JSON
 * reader or writer tests a whole word at a time before byte by byte. */
static inline int mc_json_word_plain(uint64_t x)
{
    /* Hacker's Delight 6-1: "has a zero byte" (of x ^ '"' and x ^ '\\')
     * and "has a byte below 0x20"; exact for the word as a whole. */
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x);
    return (hit & (ones * 0x80)) == 0;
}

/* The bytes mc_json_put_string writes for s[0..n), quotes included. */
size_t mc_json_string_len(const char *s, size_t n);

/* Writes v in decimal and a NUL into buf; returns the length. */
size_t mc_json_int_text(char buf[MC_JSON_INT_MAX], int64_t v);

/* Ends the text with a NUL: *out (malloc'd, the caller frees it) and *len
 * (without the NUL), and returns 0; or frees what was written, sets *out
 * to NULL and returns the first failure. */
int mc_json_finish(mc_json_out_t *o, char **out, size_t *len);

#endif
