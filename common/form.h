/*
 * common/form.h: application/x-www-form-urlencoded parsing (HTML form bodies
 * and URL query strings).
 *
 * "a=1&b=x+y%21" becomes the fields a="1" and b="x y!": '+' is a space,
 * "%XX" a byte, '&' separates fields (';' is not a separator), a field
 * without '=' has an empty value, empty fields ("a=1&&b=2") are skipped.
 * The input is (pointer, length) and never needs a NUL. Decoded names and
 * values live in one buffer the form owns; each is NUL-terminated for
 * convenience and also has a length, since "%00" may decode to a NUL byte.
 */
#ifndef MC_COMMON_FORM_H
#define MC_COMMON_FORM_H

#include <stddef.h>

#define MC_FORM_MAX_FIELDS 64         /* fields in one form */
#define MC_FORM_MAX_BYTES (64 * 1024) /* encoded bytes of one form */

typedef struct mc_form_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} mc_form_field_t;

typedef struct mc_form {
    mc_form_field_t fields[MC_FORM_MAX_FIELDS]; /* read-only */
    size_t nfields;                             /* read-only */
    char *buf;                                  /* private: the decoded bytes */
} mc_form_t;

/* Parses data[0..len) into *form (which need not be initialised).
 * Returns 0; MC_ETOOBIG when len exceeds MC_FORM_MAX_BYTES or there are more
 * than MC_FORM_MAX_FIELDS fields; MC_EINVAL for a '%' not followed by two hex
 * digits; MC_ENOMEM. On error *form is cleared and owns nothing. */
int mc_form_parse(mc_form_t *form, const char *data, size_t len);

/* Returns the value of the first field called name (NUL-terminated) and
 * stores its length in *len (may be NULL), or NULL when there is none. The
 * pointer is valid until mc_form_clear. */
const char *mc_form_get(const mc_form_t *form, const char *name, size_t *len);

/* Releases what *form owns and zeroes it. Safe to call twice. */
void mc_form_clear(mc_form_t *form);

/* Decodes the escape "%XX" that starts at src (left bytes remain from
 * there): stores the byte in *out and returns 0, or MC_EINVAL when fewer than
 * three bytes remain or a digit is not hexadecimal. Every decoder of
 * percent-encoded text (forms, queries, URL paths) uses it. */
int mc_percent_byte(const char *src, size_t left, unsigned char *out);

/* Percent-decodes src[0..len) (with '+' as space) into dst, which must hold
 * len + 1 bytes, NUL-terminates it and stores the decoded length in *out_len.
 * Returns 0 or MC_EINVAL. */
int mc_form_decode(const char *src, size_t len, char *dst, size_t *out_len);

#endif
