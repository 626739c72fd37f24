/* permessage-deflate (RFC 7692) on bin/chat-interface's echo endpoint, over
 * real sockets, with the client's side done by zlib itself. The cases follow
 * the Autobahn|Testsuite's sections 12 (compressed messages of 16 B to
 * 128 KiB, whole and auto-fragmented) and 13 (the same under each offer of
 * the negotiation), and add what the server must refuse: bad compressed
 * data and text that is not UTF-8 once inflated (1007), a message that
 * inflates past the maximum (1009), RSV1 where it is not allowed (1002),
 * and a client that keeps its compression context (1007). A second
 * interface runs with --ws-deflate off. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tests/interface/ws_client.h"
#include "tests/support/proc.h"
#include "tests/support/redis.h"

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };
enum { RSV1 = 4 };

#define KiB 1024
#define MAX_MESSAGE (4 * 1024 * 1024) /* the echo endpoint's, set below */
#define R_BASE "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

static ts_redis_t redis;
static pid_t server = -1, plain_server = -1;
static int port, plain_port;
static char webdir[64];
static uint8_t rbuf[MAX_MESSAGE + 16]; /* a frame the server sends */
static uint8_t mbuf[MAX_MESSAGE + 16]; /* that frame inflated */

static int setup(void **state)
{
    (void)state;
    if (ts_redis_start(&redis) != 0)
        return -1;
    snprintf(webdir, sizeof(webdir), "/tmp/ifc_compression.XXXXXX");
    if (!mkdtemp(webdir))
        return -1;
    char log[128], plain_log[128];
    snprintf(log, sizeof(log), "%s/interface.log", webdir);
    snprintf(plain_log, sizeof(plain_log), "%s/plain.log", webdir);
    port = ts_free_port();
    const char *extra[] = {"--echo-max-message", "4194304", NULL};
    server = wc_start_interface(port, redis.url, webdir, log, extra);
    plain_port = ts_free_port();
    const char *off[] = {"--ws-deflate", "off", NULL};
    plain_server = wc_start_interface(plain_port, redis.url, webdir, plain_log, off);
    return server > 0 && plain_server > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (server > 0)
        ts_kill_wait(server, SIGKILL);
    if (plain_server > 0)
        ts_kill_wait(plain_server, SIGKILL);
    ts_redis_stop(&redis);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", webdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* An echo socket on port offering offer; its answer (the response's
 * extensions value, "" for none) goes into answer. */
static int open_offering(int on_port, const char *offer, char answer[256])
{
    int fd = wc_dial(on_port);
    ws_upgrade_offering(fd, "/echo/", offer, answer, 256);
    return fd;
}

/* An echo socket that negotiated the extension as browsers offer it. */
static int open_deflate(void)
{
    char answer[256];
    int fd = open_offering(port, "permessage-deflate; client_max_window_bits", answer);
    assert_string_equal(answer, R_BASE);
    return fd;
}

/* Sends a compressed payload z[0..zl) as one message of opcode op: RSV1 on
 * its first frame, in frames of piece bytes (0: one frame), all in one
 * write; between frames, a ping "p" when pings. */
static void send_payload(int fd, int op, const uint8_t *z, size_t zl, size_t piece, int pings)
{
    if (piece == 0)
        piece = zl ? zl : 1;
    size_t frames = zl ? (zl + piece - 1) / piece : 1;
    uint8_t *buf = malloc(zl + frames * (14 + (pings ? 7 : 0)));
    assert_non_null(buf);
    size_t o = 0;
    for (size_t i = 0; i < frames; i++) {
        size_t off = i * piece, n = zl - off < piece ? zl - off : piece;
        if (i > 0 && pings)
            o += frame_encode(buf + o, 1, 0, OP_PING, 1, "p", 1);
        o += frame_encode(buf + o, i + 1 == frames, i == 0 ? RSV1 : 0, i == 0 ? op : OP_CONT, 1,
                          z + off, n);
    }
    send_all(fd, buf, o);
    free(buf);
}

/* Compresses msg as a client does and sends it (see send_payload). */
static void send_compressed(int fd, int op, const void *msg, size_t len, size_t piece, int pings)
{
    size_t zl;
    uint8_t *z = wc_deflate(msg, len, &zl);
    send_payload(fd, op, z, zl, piece, pings);
    free(z);
}

enum { EITHER = -1, PLAIN = 0, COMPRESSED = 1 };

/* Expects one whole frame of opcode op holding msg, compressed (then it
 * must inflate with a window of 2^bits bytes and be shorter than msg) or
 * plain as how says. */
static void expect_message(int fd, int op, const void *msg, size_t len, int bits, int how)
{
    size_t got;
    int fin, rsv;
    assert_int_equal(read_frame_rsv(fd, rbuf, sizeof(rbuf), &got, &fin, &rsv), op);
    assert_int_equal(fin, 1);
    assert_true(rsv == 0 || rsv == RSV1);
    if (how != EITHER)
        assert_int_equal(rsv == RSV1, how == COMPRESSED);
    const uint8_t *data = rbuf;
    if (rsv == RSV1) {
        assert_true(got < len);
        long n = wc_inflate(rbuf, got, bits, mbuf, sizeof(mbuf));
        assert_true(n >= 0);
        got = (size_t)n;
        data = mbuf;
    }
    assert_int_equal(got, len);
    if (len)
        assert_memory_equal(data, msg, len);
}

/* ---- Payloads ------------------------------------------------------------------ */

enum { JSON, PROSE, NOISE, PATTERN, NKINDS };

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* A message of len bytes of a kind: chat JSON and prose in UTF-8 (text,
 * compressible), noise (binary, incompressible), a byte pattern (binary,
 * compressible). */
static uint8_t *payload(int kind, size_t len)
{
    static const char *const words[] = {"the ", "room ", "größe ", "κόσμε ", "message ", "and ",
                                        "of ",  "chat ", "über ",  "ok ",    "\n"};
    uint8_t *p = malloc(len + 64);
    assert_non_null(p);
    uint32_t seed = (uint32_t)(kind * 7919 + len);
    size_t o = 0;
    while (o < len) {
        char piece[64];
        int n = 1;
        switch (kind) {
        case JSON:
            n = snprintf(piece, sizeof(piece), "{\"room\":%u,\"id\":%u,\"user\":\"ann\"}",
                         lcg(&seed) % 10, (unsigned)o);
            break;
        case PROSE: {
            const char *w = words[lcg(&seed) % (sizeof(words) / sizeof(words[0]))];
            n = (int)strlen(w);
            memcpy(piece, w, (size_t)n);
            break;
        }
        case NOISE:
            piece[0] = (char)lcg(&seed);
            break;
        default:
            piece[0] = (char)((o / 8) * 31 + 7);
            break;
        }
        memcpy(p + o, piece, (size_t)n);
        o += (size_t)n;
    }
    /* Text ends at a character boundary: pad what a cut left over. */
    if (kind == JSON || kind == PROSE) {
        size_t cut = len;
        while (cut > 0 && (p[cut - 1] & 0xC0) == 0x80)
            cut--;
        if (cut > 0 && p[cut - 1] >= 0xC0)
            cut--;
        memset(p + cut, ' ', len - cut);
    }
    return p;
}

/* ---- 13 Negotiation ----------------------------------------------------------- */

static void the_offers_of_section_13_get_their_answer(void **state)
{
    (void)state;
    /* Autobahn's offers list client_no_context_takeover and
     * client_max_window_bits, then what they ask of the server. */
#define AB "permessage-deflate; client_no_context_takeover; client_max_window_bits"
    static const struct {
        const char *offer, *answer;
        int bits;
    } cases[] = {
        {AB, R_BASE, 15},                                                             /* 13.1 */
        {AB "; server_no_context_takeover", R_BASE, 15},                              /* 13.2 */
        {AB "; server_max_window_bits=8", R_BASE "; server_max_window_bits=8", 8},    /* 13.3 */
        {AB "; server_max_window_bits=15", R_BASE "; server_max_window_bits=15", 15}, /* 13.4 */
        {AB "; server_no_context_takeover; server_max_window_bits=8",
         R_BASE "; server_max_window_bits=8", 8}, /* 13.5 */
        {AB "; server_no_context_takeover; server_max_window_bits=15",
         R_BASE "; server_max_window_bits=15", 15}, /* 13.6 */
        {AB "; server_no_context_takeover; server_max_window_bits=8, " AB
            "; server_no_context_takeover, " AB,
         R_BASE "; server_max_window_bits=8", 8},                   /* 13.7: the first offer */
        {"permessage-deflate; client_max_window_bits", R_BASE, 15}, /* Chromium */
        {"permessage-deflate", R_BASE, 15},                         /* Firefox */
        {"x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=9", R_BASE, 15},
        {"permessage-deflate; unknown, permessage-deflate; server_max_window_bits=10",
         R_BASE "; server_max_window_bits=10", 10}, /* the first declined, the second taken */
        {"permessage-deflate; server_max_window_bits=7", "", 0},
        {"permessage-deflate; server_max_window_bits", "", 0},
        {"permessage-deflate; client_no_context_takeover=1", "", 0},
        {"permessage-deflate; server_no_context_takeover; server_no_context_takeover", "", 0},
        {"x-webkit-deflate-frame", "", 0},
    };
#undef AB
    uint8_t *small = payload(JSON, 256), *large = payload(JSON, 4 * KiB);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char answer[256];
        int fd = open_offering(port, cases[i].offer, answer);
        if (strcmp(answer, cases[i].answer) != 0)
            fail_msg("offer \"%s\": answer \"%s\", expected \"%s\"", cases[i].offer, answer,
                     cases[i].answer);
        if (cases[i].bits) {
            /* A message of 2^8 bytes fits every window; a longer one goes
             * plain to a client that asked for a window of 2^8. */
            send_compressed(fd, OP_TEXT, small, 256, 0, 0);
            expect_message(fd, OP_TEXT, small, 256, cases[i].bits, COMPRESSED);
            send_compressed(fd, OP_TEXT, large, 4 * KiB, 0, 0);
            expect_message(fd, OP_TEXT, large, 4 * KiB, cases[i].bits,
                           cases[i].bits >= 12 ? COMPRESSED : PLAIN);
        } else {
            /* Declined: a compressed message is a protocol error. */
            send_compressed(fd, OP_TEXT, small, 256, 0, 0);
            expect_close(fd, 1002);
        }
        close(fd);
    }
    /* Several header lines form one list. */
    int fd = wc_dial(port);
    send_str(fd, "GET /echo/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"
                 "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n\r\n");
    char head[2048], body[16];
    assert_int_equal(read_response(fd, head, sizeof(head), body, sizeof(body), 1), 101);
    assert_non_null(
        strstr(head, "\r\nsec-websocket-extensions: " R_BASE "; server_max_window_bits=9\r\n"));
    close_normally(fd);
    free(small);
    free(large);
}

static void with_the_setting_off_offers_are_ignored_and_rsv1_is_refused(void **state)
{
    (void)state;
    char answer[256];
    int fd = open_offering(plain_port, "permessage-deflate; client_max_window_bits", answer);
    assert_string_equal(answer, "");
    uint8_t *p = payload(JSON, 1 * KiB);
    frame(fd, 1, 0, OP_TEXT, 1, p, 1 * KiB);
    expect_message(fd, OP_TEXT, p, 1 * KiB, 15, PLAIN);
    send_compressed(fd, OP_TEXT, p, 1 * KiB, 0, 0);
    expect_close(fd, 1002);
    close(fd);
    free(p);
}

/* ---- 12 Compressed messages --------------------------------------------------- */

static void compressed_messages_of_16_b_to_128_kib_are_echoed(void **state)
{
    (void)state;
    static const size_t sizes[] = {16,      64,       256,      1 * KiB,  4 * KiB,
                                   8 * KiB, 16 * KiB, 32 * KiB, 64 * KiB, 128 * KiB};
    /* Auto-fragmentation of the compressed payload: none, then frames of
     * these sizes. */
    static const size_t pieces[] = {0, 256, 4 * KiB};
    int fd = open_deflate();
    for (int kind = 0; kind < NKINDS; kind++) {
        int op = kind == JSON || kind == PROSE ? OP_TEXT : OP_BINARY;
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            uint8_t *p = payload(kind, sizes[i]);
            /* What is long enough and compressible comes back compressed. */
            int how = sizes[i] < 64 || kind == NOISE ? PLAIN : COMPRESSED;
            for (size_t j = 0; j < sizeof(pieces) / sizeof(pieces[0]); j++) {
                send_compressed(fd, op, p, sizes[i], pieces[j], 0);
                expect_message(fd, op, p, sizes[i], 15, how);
            }
            /* Sent plain, it comes back the same way. */
            frame(fd, 1, 0, op, 1, p, sizes[i]);
            expect_message(fd, op, p, sizes[i], 15, how);
            free(p);
        }
    }
    close_normally(fd);
}

static void control_frames_pass_between_compressed_fragments(void **state)
{
    (void)state;
    int fd = open_deflate();
    uint8_t *p = payload(PROSE, 2 * KiB);
    size_t zl;
    uint8_t *z = wc_deflate(p, 2 * KiB, &zl);
    for (size_t piece = 1; piece <= 64; piece *= 4) {
        send_payload(fd, OP_TEXT, z, zl, piece, 1);
        for (size_t i = 1; i < (zl + piece - 1) / piece; i++)
            expect_message(fd, OP_PONG, "p", 1, 15, PLAIN);
        expect_message(fd, OP_TEXT, p, 2 * KiB, 15, COMPRESSED);
    }
    /* A pong between fragments is ignored. */
    frame(fd, 0, RSV1, OP_TEXT, 1, z, 10);
    frame(fd, 1, 0, OP_PONG, 1, "x", 1);
    frame(fd, 1, 0, OP_CONT, 1, z + 10, zl - 10);
    expect_message(fd, OP_TEXT, p, 2 * KiB, 15, COMPRESSED);
    free(z);
    free(p);
    close_normally(fd);
}

static void compressed_and_plain_messages_mix_on_one_socket(void **state)
{
    (void)state;
    int fd = open_deflate();
    uint8_t *p = payload(JSON, 1 * KiB);
    for (int i = 0; i < 4; i++) {
        if (i % 2)
            send_compressed(fd, OP_TEXT, p, 1 * KiB, 0, 0);
        else
            frame(fd, 1, 0, OP_TEXT, 1, p, 1 * KiB);
        expect_message(fd, OP_TEXT, p, 1 * KiB, 15, COMPRESSED);
    }
    /* An empty compressed message. */
    send_compressed(fd, OP_TEXT, "", 0, 0, 0);
    expect_message(fd, OP_TEXT, "", 0, 15, PLAIN);
    /* A message that ends with a final block (RFC 7692 section 7.2.3.4). */
    uint8_t z[4096];
    uLongf zl = sizeof(z);
    z_stream s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = p;
    s.avail_in = 1 * KiB;
    s.next_out = z;
    s.avail_out = (uInt)zl;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    zl = sizeof(z) - s.avail_out;
    deflateEnd(&s);
    send_payload(fd, OP_TEXT, z, zl, 0, 0);
    expect_message(fd, OP_TEXT, p, 1 * KiB, 15, COMPRESSED);
    /* A client that compresses with a small window is read as well. */
    memset(&s, 0, sizeof(s));
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, -9, 8, Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = p;
    s.avail_in = 1 * KiB;
    s.next_out = z;
    s.avail_out = sizeof(z);
    assert_int_equal(deflate(&s, Z_SYNC_FLUSH), Z_OK);
    zl = sizeof(z) - s.avail_out - 4;
    deflateEnd(&s);
    send_payload(fd, OP_TEXT, z, zl, 0, 0);
    expect_message(fd, OP_TEXT, p, 1 * KiB, 15, COMPRESSED);
    free(p);
    close_normally(fd);
}

/* ---- What is refused ------------------------------------------------------------ */

static void expect_refused(const uint8_t *z, size_t zl, int op, int code)
{
    int fd = open_deflate();
    frame(fd, 1, 0, OP_TEXT, 1, "ok", 2);
    send_payload(fd, op, z, zl, 0, 0);
    expect_message(fd, OP_TEXT, "ok", 2, 15, PLAIN);
    expect_close(fd, code);
    close(fd);
}

static void bad_compressed_data_closes_with_1007(void **state)
{
    (void)state;
    /* A block of the reserved type 3. */
    expect_refused((const uint8_t *)"\xff\xff\xff\xff", 4, OP_TEXT, 1007);
    expect_refused((const uint8_t *)"\x07\x00", 2, OP_BINARY, 1007);
    /* A message cut inside a block. */
    uint8_t *p = payload(PROSE, 4 * KiB);
    size_t zl;
    uint8_t *z = wc_deflate(p, 4 * KiB, &zl);
    expect_refused(z, zl / 2, OP_TEXT, 1007);
    free(z);
    /* Text that is not UTF-8 once inflated. */
    memcpy(p + 100, "\xed\xa0\x80", 3); /* a surrogate */
    z = wc_deflate(p, 4 * KiB, &zl);
    expect_refused(z, zl, OP_TEXT, 1007);
    /* The same bytes as a binary message are fine. */
    int fd = open_deflate();
    send_payload(fd, OP_BINARY, z, zl, 0, 0);
    expect_message(fd, OP_BINARY, p, 4 * KiB, 15, COMPRESSED);
    close_normally(fd);
    free(z);
    free(p);
}

static void a_client_that_keeps_its_context_is_closed_with_1007(void **state)
{
    (void)state;
    /* Two messages from one compression stream: the second refers back into
     * the first, which the server, holding no context, cannot inflate. */
    uint8_t *p = payload(JSON, 512);
    z_stream s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(deflateInit2(&s, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    uint8_t z[2][2048];
    size_t zl[2];
    for (int i = 0; i < 2; i++) {
        s.next_in = p;
        s.avail_in = 512;
        s.next_out = z[i];
        s.avail_out = sizeof(z[i]);
        assert_int_equal(deflate(&s, Z_SYNC_FLUSH), Z_OK);
        zl[i] = sizeof(z[i]) - s.avail_out - 4;
    }
    deflateEnd(&s);
    assert_true(zl[1] < zl[0] / 4); /* a back reference, not the text again */
    int fd = open_deflate();
    send_payload(fd, OP_TEXT, z[0], zl[0], 0, 0);
    expect_message(fd, OP_TEXT, p, 512, 15, COMPRESSED);
    send_payload(fd, OP_TEXT, z[1], zl[1], 0, 0);
    expect_close(fd, 1007);
    close(fd);
    free(p);
}

static void a_message_that_inflates_past_the_maximum_closes_with_1009(void **state)
{
    (void)state;
    uint8_t *p = malloc(MAX_MESSAGE + 1);
    assert_non_null(p);
    memset(p, 'a', MAX_MESSAGE + 1);
    /* The maximum itself goes through. */
    int fd = open_deflate();
    send_compressed(fd, OP_TEXT, p, MAX_MESSAGE, 4 * KiB, 0);
    expect_message(fd, OP_TEXT, p, MAX_MESSAGE, 15, COMPRESSED);
    close_normally(fd);
    /* One byte more, from a few KiB on the wire. */
    size_t zl;
    uint8_t *z = wc_deflate(p, MAX_MESSAGE + 1, &zl);
    assert_true(zl < 8 * KiB);
    expect_refused(z, zl, OP_TEXT, 1009);
    expect_refused(z, zl, OP_BINARY, 1009);
    free(z);
    free(p);
}

static void rsv1_where_it_is_not_allowed_closes_with_1002(void **state)
{
    (void)state;
    size_t zl;
    uint8_t *z = wc_deflate("a compressed message", 20, &zl);
    /* On a socket that did not negotiate the extension. */
    int fd = wc_ws_open(port, "/echo/");
    send_payload(fd, OP_TEXT, z, zl, 0, 0);
    expect_close(fd, 1002);
    close(fd);
    /* On a continuation frame. */
    fd = open_deflate();
    frame(fd, 0, RSV1, OP_TEXT, 1, z, 4);
    frame(fd, 1, RSV1, OP_CONT, 1, z + 4, zl - 4);
    expect_close(fd, 1002);
    close(fd);
    /* On control frames. */
    static const int controls[] = {OP_PING, OP_PONG, OP_CLOSE};
    for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++) {
        fd = open_deflate();
        frame(fd, 1, RSV1, controls[i], 1, "\x03\xe8", 2);
        expect_close(fd, 1002);
        close(fd);
    }
    /* RSV2 and RSV3 stay reserved. */
    for (int rsv = 1; rsv <= 3; rsv++) {
        fd = open_deflate();
        frame(fd, 1, rsv | RSV1, OP_TEXT, 1, z, zl);
        expect_close(fd, 1002);
        close(fd);
    }
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_offers_of_section_13_get_their_answer),
        cmocka_unit_test(with_the_setting_off_offers_are_ignored_and_rsv1_is_refused),
        cmocka_unit_test(compressed_messages_of_16_b_to_128_kib_are_echoed),
        cmocka_unit_test(control_frames_pass_between_compressed_fragments),
        cmocka_unit_test(compressed_and_plain_messages_mix_on_one_socket),
        cmocka_unit_test(bad_compressed_data_closes_with_1007),
        cmocka_unit_test(a_client_that_keeps_its_context_is_closed_with_1007),
        cmocka_unit_test(a_message_that_inflates_past_the_maximum_closes_with_1009),
        cmocka_unit_test(rsv1_where_it_is_not_allowed_closes_with_1002),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
