/* Tests of interface/ws_deflate.c: the offers of the Autobahn testsuite's
 * section 13 and the bad ones RFC 7692 declines, the examples of RFC 7692
 * section 7.2.3, round trips, messages inflated whole, split at every byte
 * and one byte at a time (ending on a guard page), bombs, bad data, and what
 * no context takeover means on both sides. */
#include "interface/ws_deflate.h"
#include "common/error.h"
#include "tests/support/guard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zlib.h>

#define R_BASE "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

/* Negotiates over a copy of offer that ends on a guard page. */
static int negotiate(const char *offer, char response[IFC_WS_DEFLATE_RESPONSE_MAX], uint8_t *bits)
{
    guard_t g;
    size_t len = strlen(offer);
    const char *copy = (const char *)guard_copy(&g, offer, len);
    int rc = ifc_ws_deflate_negotiate(copy, len, response, bits);
    guard_free(&g);
    return rc;
}

static void expect_accepted(const char *offer, const char *response, int bits)
{
    char out[IFC_WS_DEFLATE_RESPONSE_MAX];
    uint8_t got = 0;
    if (negotiate(offer, out, &got) != 1)
        fail_msg("declined: %s", offer);
    assert_string_equal(out, response);
    assert_int_equal(got, bits);
}

static void expect_declined(const char *offer)
{
    char out[IFC_WS_DEFLATE_RESPONSE_MAX];
    uint8_t got = 0;
    if (negotiate(offer, out, &got) != 0)
        fail_msg("accepted: %s -> %s", offer, out);
}

/* The client offers of Autobahn's cases 13.1 to 13.7 (its offer lists
 * client_no_context_takeover and client_max_window_bits, then what it asks
 * of the server), and those of browsers. */
static void autobahn_and_browser_offers_are_accepted(void **state)
{
    (void)state;
    const char *base = "permessage-deflate; client_no_context_takeover; client_max_window_bits";
    char offer[512];
    expect_accepted(base, R_BASE, 15); /* 13.1 */
    snprintf(offer, sizeof(offer), "%s; server_no_context_takeover", base);
    expect_accepted(offer, R_BASE, 15); /* 13.2 */
    snprintf(offer, sizeof(offer), "%s; server_max_window_bits=8", base);
    expect_accepted(offer, R_BASE "; server_max_window_bits=8", 8); /* 13.3 */
    snprintf(offer, sizeof(offer), "%s; server_max_window_bits=15", base);
    expect_accepted(offer, R_BASE "; server_max_window_bits=15", 15); /* 13.4 */
    snprintf(offer, sizeof(offer), "%s; server_no_context_takeover; server_max_window_bits=8",
             base);
    expect_accepted(offer, R_BASE "; server_max_window_bits=8", 8); /* 13.5 */
    snprintf(offer, sizeof(offer), "%s; server_no_context_takeover; server_max_window_bits=15",
             base);
    expect_accepted(offer, R_BASE "; server_max_window_bits=15", 15); /* 13.6 */
    snprintf(offer, sizeof(offer),
             "%s; server_no_context_takeover; server_max_window_bits=8, %s; "
             "server_no_context_takeover, %s",
             base, base, base);
    expect_accepted(offer, R_BASE "; server_max_window_bits=8", 8); /* 13.7: the first */

    expect_accepted("permessage-deflate; client_max_window_bits", R_BASE, 15); /* Chromium */
    expect_accepted("permessage-deflate", R_BASE, 15);                         /* Firefox */
    expect_accepted("permessage-deflate; client_max_window_bits=10", R_BASE, 15);
    expect_accepted("PerMessage-Deflate; Server_Max_Window_Bits=12",
                    R_BASE "; server_max_window_bits=12", 12);
    expect_accepted("permessage-deflate ;\tserver_max_window_bits = 12 ",
                    R_BASE "; server_max_window_bits=12", 12);
    expect_accepted("permessage-deflate; server_max_window_bits=\"10\"",
                    R_BASE "; server_max_window_bits=10", 10);
    expect_accepted("permessage-deflate; server_max_window_bits=\"1\\1\"",
                    R_BASE "; server_max_window_bits=11", 11);
}

static void bad_offers_are_declined(void **state)
{
    (void)state;
    expect_declined("");
    expect_declined(" , ,");
    expect_declined("x-webkit-deflate-frame");
    expect_declined("permessage-deflated");
    expect_declined("permessage-deflate; mux");                        /* unknown */
    expect_declined("permessage-deflate; client_no_context_takeover; " /* twice */
                    "client_no_context_takeover");
    expect_declined("permessage-deflate; client_max_window_bits; client_max_window_bits=9");
    expect_declined("permessage-deflate; server_no_context_takeover=1"); /* value on a flag */
    expect_declined("permessage-deflate; client_no_context_takeover=\"\"");
    expect_declined("permessage-deflate; server_max_window_bits"); /* no value */
    static const char *const bad_bits[] = {"7",   "16",   "0",      "08",  "015",   "9a",
                                           "1 5", "\"\"", "\"8 \"", "-9",  "+9",    "0x9",
                                           "99",  "150",  "\"16\"", "1e1", "\"8,\""};
    for (size_t i = 0; i < sizeof(bad_bits) / sizeof(bad_bits[0]); i++) {
        char offer[128];
        snprintf(offer, sizeof(offer), "permessage-deflate; server_max_window_bits=%s",
                 bad_bits[i]);
        expect_declined(offer);
        snprintf(offer, sizeof(offer), "permessage-deflate; client_max_window_bits=%s",
                 bad_bits[i]);
        expect_declined(offer);
    }
    /* Bad syntax. */
    expect_declined("permessage-deflate;");
    expect_declined("permessage-deflate; ;");
    expect_declined("permessage-deflate x");
    expect_declined("permessage-deflate; =9");
    expect_declined("permessage-deflate; server_max_window_bits=");
    expect_declined("permessage-deflate; server_max_window_bits=\"9");
    expect_declined("permessage-deflate; server_max_window_bits=\"9\\");
    expect_declined("; permessage-deflate");
    expect_declined("\"permessage-deflate\"");
}

static void a_declined_offer_falls_through_to_the_next(void **state)
{
    (void)state;
    expect_accepted("permessage-deflate; server_max_window_bits=7, permessage-deflate", R_BASE, 15);
    expect_accepted("x-webkit-deflate-frame; no_context_takeover, permessage-deflate", R_BASE, 15);
    expect_accepted(" , permessage-deflate; foo, ,permessage-deflate; server_max_window_bits=9 ,",
                    R_BASE "; server_max_window_bits=9", 9);
    /* A comma inside a quoted value does not end the offer. */
    expect_accepted("permessage-deflate; server_max_window_bits=\"8,\", "
                    "permessage-deflate; server_max_window_bits=13",
                    R_BASE "; server_max_window_bits=13", 13);
    /* Bad syntax ends at the next comma outside quotes. */
    expect_accepted("permessage-deflate x=\"a,b\", permessage-deflate; server_max_window_bits=14",
                    R_BASE "; server_max_window_bits=14", 14);
    expect_accepted("permessage-deflate x=\"\\\",\", permessage-deflate", R_BASE, 15);
}

static void every_header_line_is_searched(void **state)
{
    (void)state;
    ifc_http_request_t req;
    ifc_http_header_t headers[4];
    memset(&req, 0, sizeof(req));
    req.headers = headers;
    static const char *const lines[][2] = {
        {"host", "example.com"},
        {"sec-websocket-extensions", "x-webkit-deflate-frame"},
        {"sec-websocket-extensions", "permessage-deflate; server_max_window_bits=9"},
        {"sec-websocket-extensions", "permessage-deflate"},
    };
    for (size_t i = 0; i < 4; i++) {
        req.headers[i].name = lines[i][0];
        req.headers[i].name_len = strlen(lines[i][0]);
        req.headers[i].value = lines[i][1];
        req.headers[i].value_len = strlen(lines[i][1]);
    }
    char out[IFC_WS_DEFLATE_RESPONSE_MAX];
    uint8_t bits = 0;
    req.nheaders = 2;
    assert_int_equal(ifc_ws_deflate_negotiate_request(&req, out, &bits), 0);
    req.nheaders = 4;
    assert_int_equal(ifc_ws_deflate_negotiate_request(&req, out, &bits), 1);
    assert_string_equal(out, R_BASE "; server_max_window_bits=9");
    assert_int_equal(bits, 9);
}

/* Compression and decompression. */

typedef struct inflate_run {
    ifc_ws_inflater_t *z;
    size_t max;
    int rc; /* the first error of a feed */
    const uint8_t *expect;
    size_t expect_len;
    int expect_rc;
} inflate_run_t;

static void inflate_reset(void *ctx)
{
    inflate_run_t *r = ctx;
    ifc_ws_inflate_begin(r->z, r->max);
    r->rc = 0;
}

static void inflate_feed(void *ctx, const uint8_t *data, size_t len)
{
    inflate_run_t *r = ctx;
    int rc = ifc_ws_inflate_feed(r->z, data, len);
    if (r->rc == 0)
        r->rc = rc;
    else
        assert_int_equal(rc, r->rc); /* errors stick */
}

static void inflate_check(void *ctx)
{
    inflate_run_t *r = ctx;
    const uint8_t *out = NULL;
    size_t len = 0;
    int rc = ifc_ws_inflate_end(r->z, &out, &len);
    if (r->rc != 0)
        assert_int_equal(rc, r->rc);
    assert_int_equal(rc, r->expect_rc);
    if (rc == 0) {
        assert_non_null(out);
        assert_int_equal(len, r->expect_len);
        if (len > 0)
            assert_memory_equal(out, r->expect, len);
    }
}

static const guard_driver_t INFLATE = {inflate_reset, inflate_feed, inflate_check};

/* Inflates in whole, split at every byte and one byte at a time. */
static void expect_inflated(size_t max, const void *in, size_t len, const void *expect,
                            size_t expect_len, int expect_rc)
{
    inflate_run_t r = {
        .max = max, .expect = expect, .expect_len = expect_len, .expect_rc = expect_rc};
    assert_int_equal(ifc_ws_inflater_new(&r.z), 0);
    guard_feed_all_ways(&INFLATE, &r, in, len);
    ifc_ws_inflater_free(r.z);
}

#define HELLO "Hello"

static void rfc_7692_examples_inflate(void **state)
{
    (void)state;
    static const uint8_t fixed[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    expect_inflated(1024, fixed, sizeof(fixed), HELLO, 5, 0);
    static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                     0x65, 0x6c, 0x6c, 0x6f, 0x00};
    expect_inflated(1024, stored, sizeof(stored), HELLO, 5, 0);
    static const uint8_t final_block[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    expect_inflated(1024, final_block, sizeof(final_block), HELLO, 5, 0);
    static const uint8_t two_blocks[] = {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                         0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
    expect_inflated(1024, two_blocks, sizeof(two_blocks), HELLO, 5, 0);
    static const uint8_t empty[] = {0x00};
    expect_inflated(1024, empty, sizeof(empty), "", 0, 0);
    /* Our compressor writes the RFC's bytes for "Hello" and for "". */
    ifc_ws_deflater_t *d;
    assert_int_equal(ifc_ws_deflater_new(&d), 0);
    uint8_t out[64];
    size_t n = 0;
    assert_int_equal(ifc_ws_deflate(d, HELLO, 5, out, sizeof(out), &n), 0);
    assert_int_equal(n, sizeof(fixed));
    assert_memory_equal(out, fixed, n);
    assert_int_equal(ifc_ws_deflate(d, "", 0, out, sizeof(out), &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 0x00);
    ifc_ws_deflater_free(d);
}

/* A JSON chat message of about len bytes, varied by seed. */
static size_t chat_json(char *buf, size_t cap, size_t len, unsigned seed)
{
    size_t n = 0;
    while (n + 128 < cap && n < len)
        n += (size_t)snprintf(
            buf + n, cap - n,
            "{\"room\":\"%u\",\"message\":\"message %u, caf\xc3\xa9 \xe2\x82\xac\","
            "\"username\":\"user%u\",\"msg_type\":0,\"id\":%u},",
            seed % 10, seed * 7 + (unsigned)n, seed % 13, seed + (unsigned)n);
    return n < len ? n : len;
}

static void fill_random(uint8_t *b, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (uint8_t)x;
    }
}

static void deflate_all(ifc_ws_deflater_t *d, const void *in, size_t len, uint8_t **out, size_t *n)
{
    size_t cap = ifc_ws_deflate_bound(len);
    *out = malloc(cap);
    assert_non_null(*out);
    assert_int_equal(ifc_ws_deflate(d, in, len, *out, cap, n), 0);
}

static void messages_round_trip(void **state)
{
    (void)state;
    ifc_ws_deflater_t *d;
    ifc_ws_inflater_t *z;
    assert_int_equal(ifc_ws_deflater_new(&d), 0);
    assert_int_equal(ifc_ws_inflater_new(&z), 0);
    static const size_t sizes[] = {0,     1,     2,     63,     64,    125,   126,
                                   1000,  1023,  1024,  4096,   16384, 32768, 32769,
                                   65535, 65536, 70000, 131072, 200000};
    size_t big = 200000;
    uint8_t *in = malloc(big);
    for (int kind = 0; kind < 3; kind++) {
        if (kind == 0)
            chat_json((char *)in, big, big, 3);
        else if (kind == 1)
            fill_random(in, big, 7); /* incompressible: the bound must hold */
        else
            memset(in, 'a', big);
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            uint8_t *c;
            size_t n;
            deflate_all(d, in, sizes[k], &c, &n);
            const uint8_t *out;
            size_t len;
            assert_int_equal(ifc_ws_inflate_message(z, sizes[k], c, n, &out, &len), 0);
            assert_int_equal(len, sizes[k]);
            if (len > 0)
                assert_memory_equal(out, in, len);
            if (kind == 2 && sizes[k] > 1000)
                assert_true(n < sizes[k] / 50);
            free(c);
        }
    }
    free(in);
    ifc_ws_deflater_free(d);
    ifc_ws_inflater_free(z);
}

/* The payloads of a message's frames are pieces of one stream: a message
 * inflates the same whole, cut anywhere, and one byte at a time. */
static void a_message_inflates_across_any_cut(void **state)
{
    (void)state;
    ifc_ws_deflater_t *d;
    assert_int_equal(ifc_ws_deflater_new(&d), 0);
    char msg[700];
    size_t len = chat_json(msg, sizeof(msg), 600, 11);
    uint8_t *c;
    size_t n;
    deflate_all(d, msg, len, &c, &n);
    expect_inflated(len, c, n, msg, len, 0);
    /* Exactly the maximum is allowed; one byte less is too big. */
    expect_inflated(len - 1, c, n, NULL, 0, MC_ETOOBIG);
    free(c);
    ifc_ws_deflater_free(d);
}

static void bombs_stop_at_the_maximum(void **state)
{
    (void)state;
    ifc_ws_deflater_t *d;
    ifc_ws_inflater_t *z;
    assert_int_equal(ifc_ws_deflater_new(&d), 0);
    assert_int_equal(ifc_ws_inflater_new(&z), 0);
    /* 16 MiB of zeros deflate to about 72 KiB. */
    size_t big = 16u << 20;
    uint8_t *zeros = calloc(1, big);
    uint8_t *c;
    size_t n;
    deflate_all(d, zeros, big, &c, &n);
    assert_true(n < big / 200);
    const uint8_t *out;
    size_t len;
    assert_int_equal(ifc_ws_inflate_message(z, 65536, c, n, &out, &len), MC_ETOOBIG);
    assert_int_equal(ifc_ws_inflate_close_code(MC_ETOOBIG), 1009);
    /* Fed in frames of 100 bytes, the error comes with the frame that
     * passes the maximum, long before the end. */
    ifc_ws_inflate_begin(z, 65536);
    size_t at = 0;
    int rc = 0;
    while (at < n && rc == 0) {
        size_t piece = n - at < 100 ? n - at : 100;
        rc = ifc_ws_inflate_feed(z, c + at, piece);
        at += piece;
    }
    assert_int_equal(rc, MC_ETOOBIG);
    assert_true(at < 1000);
    assert_int_equal(ifc_ws_inflate_feed(z, c + at, n - at), MC_ETOOBIG);
    assert_int_equal(ifc_ws_inflate_end(z, &out, &len), MC_ETOOBIG);
    /* The inflater serves the next message. */
    assert_int_equal(ifc_ws_inflate_message(z, big, c, n, &out, &len), 0);
    assert_int_equal(len, big);
    assert_memory_equal(out, zeros, big);
    free(c);
    free(zeros);
    ifc_ws_deflater_free(d);
    ifc_ws_inflater_free(z);
}

static void bad_data_is_an_error(void **state)
{
    (void)state;
    static const uint8_t reserved_type[] = {0x06, 0x00}; /* BTYPE 11 */
    expect_inflated(1024, reserved_type, sizeof(reserved_type), NULL, 0, MC_EINVAL);
    static const uint8_t bad_nlen[] = {0x00, 0x05, 0x00, 0xfa, 0xfe, 'H', 'e', 'l', 'l', 'o'};
    expect_inflated(1024, bad_nlen, sizeof(bad_nlen), NULL, 0, MC_EINVAL);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_inflated(1024, garbage, sizeof(garbage), NULL, 0, MC_EINVAL);
    assert_int_equal(ifc_ws_inflate_close_code(MC_EINVAL), 1007);
    assert_int_equal(ifc_ws_inflate_close_code(MC_ENOMEM), 1011);
    /* A message cut short ends inside a block. */
    ifc_ws_deflater_t *d;
    assert_int_equal(ifc_ws_deflater_new(&d), 0);
    char msg[700];
    size_t len = chat_json(msg, sizeof(msg), 600, 5);
    uint8_t *c;
    size_t n;
    deflate_all(d, msg, len, &c, &n);
    expect_inflated(4096, c, n / 2, NULL, 0, MC_EINVAL);
    /* After a final block, nothing more is read. */
    static const uint8_t final_then_junk[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0xff};
    expect_inflated(1024, final_then_junk, sizeof(final_then_junk), HELLO, 5, 0);
    free(c);
    ifc_ws_deflater_free(d);
}

/* server_no_context_takeover: a message's compressed form depends on the
 * message alone, so one compressed frame serves every member of a group.
 * client_no_context_takeover: a message that refers back into the previous
 * one (RFC 7692 section 7.2.3.2) does not inflate. */
static void no_context_is_taken_over(void **state)
{
    (void)state;
    ifc_ws_deflater_t *d;
    assert_int_equal(ifc_ws_deflater_new(&d), 0);
    char a[700], b[700];
    size_t alen = chat_json(a, sizeof(a), 600, 1), blen = chat_json(b, sizeof(b), 600, 2);
    uint8_t *b_alone, *a1, *b_after_a, *a2;
    size_t nb, na1, nba, na2;
    deflate_all(d, b, blen, &b_alone, &nb);
    deflate_all(d, a, alen, &a1, &na1);
    deflate_all(d, b, blen, &b_after_a, &nba);
    deflate_all(d, a, alen, &a2, &na2);
    assert_int_equal(nb, nba);
    assert_memory_equal(b_alone, b_after_a, nb);
    assert_int_equal(na1, na2);
    assert_memory_equal(a1, a2, na1);
    free(b_alone);
    free(a1);
    free(b_after_a);
    free(a2);
    ifc_ws_deflater_free(d);

    static const uint8_t first[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t second_with_context[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    ifc_ws_inflater_t *z;
    assert_int_equal(ifc_ws_inflater_new(&z), 0);
    const uint8_t *out;
    size_t len;
    assert_int_equal(ifc_ws_inflate_message(z, 1024, first, sizeof(first), &out, &len), 0);
    assert_int_equal(ifc_ws_inflate_message(z, 1024, second_with_context,
                                            sizeof(second_with_context), &out, &len),
                     MC_EINVAL);
    assert_int_equal(ifc_ws_inflate_message(z, 1024, first, sizeof(first), &out, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, HELLO, 5);
    ifc_ws_inflater_free(z);
}

/* What a client with a 2^bits window reads: zlib's inflater with that
 * window, given one byte of output space at a time so that every reference
 * back goes through its window. 1 when it inflates msg, else 0. */
static int inflates_in_window(const uint8_t *c, size_t n, const char *msg, size_t len, int bits)
{
    z_stream s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(inflateInit2(&s, -bits), Z_OK);
    uint8_t *all = malloc(n + 4), *out = malloc(len + 1);
    memcpy(all, c, n);
    memcpy(all + n, "\x00\x00\xff\xff", 4);
    s.next_in = all;
    s.avail_in = (uInt)(n + 4);
    int rc = Z_OK;
    while (rc == Z_OK && s.total_out <= len && s.avail_in > 0) {
        s.next_out = out + s.total_out;
        s.avail_out = 1;
        rc = inflate(&s, Z_SYNC_FLUSH);
    }
    int ok = rc == Z_OK && s.total_out == len && memcmp(out, msg, len) == 0;
    inflateEnd(&s);
    free(all);
    free(out);
    return ok;
}

/* A message compressed once with a 32 KiB window may go to a client that
 * asked for server_max_window_bits=N when it is at most 2^N bytes long: from
 * an empty window it cannot refer back further than its own start. */
static void a_shared_frame_fits_smaller_windows(void **state)
{
    (void)state;
    assert_int_equal(ifc_ws_deflate_fits(15, 1u << 30), 1);
    assert_int_equal(ifc_ws_deflate_fits(8, 256), 1);
    assert_int_equal(ifc_ws_deflate_fits(8, 257), 0);
    assert_int_equal(ifc_ws_deflate_fits(12, 4096), 1);
    assert_int_equal(ifc_ws_deflate_fits(12, 4097), 0);
    assert_int_equal(ifc_ws_deflate_fits(0, 1), 0);
    ifc_ws_deflater_t *d;
    assert_int_equal(ifc_ws_deflater_new(&d), 0);
    for (int bits = 8; bits <= 15; bits++) {
        size_t w = (size_t)1 << bits;
        char *msg = malloc(2 * w + 1);
        uint8_t *c;
        size_t n;
        /* 2^bits bytes: noise, then its first half again. */
        fill_random((uint8_t *)msg, w / 2, (unsigned)bits);
        memcpy(msg + w / 2, msg, w / 2);
        assert_true(ifc_ws_deflate_fits((uint8_t)bits, w));
        deflate_all(d, msg, w, &c, &n);
        assert_true(n < w);
        assert_true(inflates_in_window(c, n, msg, w, bits));
        free(c);
        /* The control: a repeat 2^bits + 1 bytes back does not fit (with 15
         * bits, our window cannot make one). */
        if (bits < 15) {
            fill_random((uint8_t *)msg, w + 1, (unsigned)bits);
            memcpy(msg + w + 1, msg, w);
            assert_false(ifc_ws_deflate_fits((uint8_t)bits, 2 * w + 1));
            deflate_all(d, msg, 2 * w + 1, &c, &n);
            assert_true(n < 2 * w);
            assert_false(inflates_in_window(c, n, msg, 2 * w + 1, bits));
            free(c);
        }
        free(msg);
    }
    ifc_ws_deflater_free(d);
}

static void output_that_does_not_fit_is_refused(void **state)
{
    (void)state;
    ifc_ws_deflater_t *d;
    assert_int_equal(ifc_ws_deflater_new(&d), 0);
    uint8_t noise[1000], out[1000];
    fill_random(noise, sizeof(noise), 9);
    size_t n = 0;
    /* Noise does not shrink: a caller that offers only len bytes sends it
     * uncompressed. */
    assert_int_equal(ifc_ws_deflate(d, noise, sizeof(noise), out, sizeof(noise), &n), MC_ETOOBIG);
    assert_int_equal(ifc_ws_deflate(d, HELLO, 5, out, 4, &n), MC_ETOOBIG);
    assert_int_equal(ifc_ws_deflate(d, HELLO, 5, out, 0, &n), MC_ETOOBIG);
    /* The compressor is fine afterwards. */
    memset(noise, 'x', sizeof(noise));
    assert_int_equal(ifc_ws_deflate(d, noise, sizeof(noise), out, sizeof(noise), &n), 0);
    assert_true(n < 20);
    ifc_ws_deflater_free(d);
    ifc_ws_deflater_free(NULL);
    ifc_ws_inflater_free(NULL);
}

/* ifc_ws_deflate_shrink: a message that shrinks, in the compressor's own
 * memory, small or past what it keeps; one that does not, refused. */
static void shrink_keeps_only_what_shrinks(void **state)
{
    (void)state;
    ifc_ws_deflater_t *d;
    ifc_ws_inflater_t *z;
    assert_int_equal(ifc_ws_deflater_new(&d), 0);
    assert_int_equal(ifc_ws_inflater_new(&z), 0);
    size_t big = 300000;
    uint8_t *json = malloc(big), *noise = malloc(big);
    assert_non_null(json);
    assert_non_null(noise);
    chat_json((char *)json, big, big, 5);
    fill_random(noise, big, 11);
    static const size_t sizes[] = {0, 1, 5, 64, 1000, 65536, 65537, 300000, 100};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        const uint8_t *c, *out;
        size_t n, len;
        int rc = ifc_ws_deflate_shrink(d, json, sizes[k], &c, &n);
        if (sizes[k] < 16) {
            assert_int_equal(rc, MC_ETOOBIG); /* a few bytes never shrink */
        } else {
            assert_int_equal(rc, 0);
            assert_true(n < sizes[k]);
            assert_int_equal(ifc_ws_inflate_message(z, sizes[k], c, n, &out, &len), 0);
            assert_int_equal(len, sizes[k]);
            assert_memory_equal(out, json, len);
        }
        assert_int_equal(ifc_ws_deflate_shrink(d, noise, sizes[k], &c, &n), MC_ETOOBIG);
    }
    free(json);
    free(noise);
    ifc_ws_deflater_free(d);
    ifc_ws_inflater_free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(autobahn_and_browser_offers_are_accepted),
        cmocka_unit_test(bad_offers_are_declined),
        cmocka_unit_test(a_declined_offer_falls_through_to_the_next),
        cmocka_unit_test(every_header_line_is_searched),
        cmocka_unit_test(rfc_7692_examples_inflate),
        cmocka_unit_test(messages_round_trip),
        cmocka_unit_test(a_message_inflates_across_any_cut),
        cmocka_unit_test(bombs_stop_at_the_maximum),
        cmocka_unit_test(bad_data_is_an_error),
        cmocka_unit_test(no_context_is_taken_over),
        cmocka_unit_test(a_shared_frame_fits_smaller_windows),
        cmocka_unit_test(output_that_does_not_fit_is_refused),
        cmocka_unit_test(shrink_keeps_only_what_shrinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
