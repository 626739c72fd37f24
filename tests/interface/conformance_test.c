/* RFC 6455 conformance of bin/chat-interface's echo endpoint, over real
 * sockets with hand-made frames. The cases follow the groups of the
 * Autobahn|Testsuite (which cannot run here): 1 framing, 2 pings and pongs,
 * 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close handling,
 * 9 limits. Each case asserts the exact echo or the exact close code. */
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

#define MiB (1024 * 1024)

static ts_redis_t redis;
static pid_t server = -1;
static int port;
static char webdir[64];
static uint8_t rbuf[2 * MiB]; /* what the server sends back */

static int setup(void **state)
{
    (void)state;
    if (ts_redis_start(&redis) != 0)
        return -1;
    snprintf(webdir, sizeof(webdir), "/tmp/ifc_conformance.XXXXXX");
    if (!mkdtemp(webdir))
        return -1;
    char log[128];
    snprintf(log, sizeof(log), "%s/interface.log", webdir);
    port = ts_free_port();
    const char *extra[] = {"--echo-max-message", "4194304", NULL};
    server = wc_start_interface(port, redis.url, webdir, log, extra);
    return server > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (server > 0)
        ts_kill_wait(server, SIGKILL);
    ts_redis_stop(&redis);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", webdir);
    return system(cmd) == 0 ? 0 : -1;
}

static int open_echo(void)
{
    return wc_ws_open(port, "/echo/");
}

/* Expects one whole frame (FIN set) with opcode op and payload data. */
static void expect_frame(int fd, int op, const void *data, size_t len)
{
    size_t got;
    int fin;
    assert_int_equal(read_frame_fin(fd, rbuf, sizeof(rbuf), &got, &fin), op);
    assert_int_equal(fin, 1);
    assert_int_equal(got, len);
    if (len)
        assert_memory_equal(rbuf, data, len);
}

/* Sends data as one message of opcode op in frames of piece bytes (at least
 * one frame), all in one write; between frames, a ping "p" when pings. */
static void send_fragmented(int fd, int op, const void *data, size_t len, size_t piece, int pings)
{
    size_t frames = len ? (len + piece - 1) / piece : 1;
    uint8_t *buf = malloc(len + frames * (14 + (pings ? 7 : 0)));
    assert_non_null(buf);
    size_t o = 0;
    for (size_t i = 0; i < frames; i++) {
        size_t off = i * piece, n = len - off < piece ? len - off : piece;
        if (i > 0 && pings)
            o += frame_encode(buf + o, 1, 0, OP_PING, 1, "p", 1);
        o += frame_encode(buf + o, i + 1 == frames, 0, i == 0 ? op : OP_CONT, 1,
                          (const uint8_t *)data + off, n);
    }
    send_all(fd, buf, o);
    free(buf);
}

/* Sends the bytes of one frame in writes of chop bytes. */
static void send_chopped(int fd, int op, const void *data, size_t len, size_t chop)
{
    uint8_t *buf = malloc(len + 14);
    assert_non_null(buf);
    size_t n = frame_encode(buf, 1, 0, op, 1, data, len);
    for (size_t o = 0; o < n; o += chop)
        send_all(fd, buf + o, n - o < chop ? n - o : chop);
    free(buf);
}

static uint8_t *pattern(size_t len, int text)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = text ? (uint8_t)('a' + i % 26) : (uint8_t)(i * 31 + 7);
    return p;
}

/* ---- 1 Framing --------------------------------------------------------- */

static void framing_echoes_text_and_binary_of_every_length_class(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 125, 126, 127, 128, 65535, 65536};
    int fd = open_echo();
    for (int op = OP_TEXT; op <= OP_BINARY; op++) {
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
            uint8_t *p = pattern(lens[i], op == OP_TEXT);
            frame(fd, 1, 0, op, 1, p, lens[i]);
            expect_frame(fd, op, p, lens[i]);
            free(p);
        }
        /* A frame's bytes in small writes, as Autobahn 1.1.8 and 1.2.8. */
        uint8_t *p = pattern(65536, op == OP_TEXT);
        send_chopped(fd, op, p, 65536, 997);
        expect_frame(fd, op, p, 65536);
        free(p);
    }
    close_normally(fd);
}

/* ---- 2 Pings and pongs ---------------------------------------------------- */

static void pings_are_answered_with_their_payload(void **state)
{
    (void)state;
    int fd = open_echo();
    uint8_t payload[125];
    for (size_t n = 0; n <= 125; n++) {
        for (size_t i = 0; i < n; i++)
            payload[i] = (uint8_t)(0xFF - i);
        frame(fd, 1, 0, OP_PING, 1, payload, n);
        expect_frame(fd, OP_PONG, payload, n);
    }
    /* A ping in chops of one byte. */
    send_chopped(fd, OP_PING, "chopped", 7, 1);
    expect_frame(fd, OP_PONG, "chopped", 7);
    /* Unsolicited pongs are ignored. */
    frame(fd, 1, 0, OP_PONG, 1, "", 0);
    frame(fd, 1, 0, OP_PONG, 1, "unsolicited", 11);
    frame(fd, 1, 0, OP_TEXT, 1, "after", 5);
    expect_frame(fd, OP_TEXT, "after", 5);
    /* Ten pings in one write: ten pongs, in order. */
    uint8_t burst[10 * 20];
    size_t o = 0;
    for (int i = 0; i < 10; i++) {
        char p[2] = {'0', (char)('0' + i)};
        o += frame_encode(burst + o, 1, 0, OP_PING, 1, p, 2);
    }
    send_all(fd, burst, o);
    for (int i = 0; i < 10; i++) {
        char p[2] = {'0', (char)('0' + i)};
        expect_frame(fd, OP_PONG, p, 2);
    }
    close_normally(fd);
    /* A ping of 126 bytes is no control frame. */
    fd = open_echo();
    uint8_t big[126];
    memset(big, 'x', sizeof(big));
    frame(fd, 1, 0, OP_PING, 1, big, sizeof(big));
    expect_close(fd, 1002);
    close(fd);
}

/* ---- 3 Reserved bits ------------------------------------------------------ */

static void reserved_bits_close_with_1002(void **state)
{
    (void)state;
    static const int ops[] = {OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE};
    for (int rsv = 1; rsv <= 7; rsv++) {
        for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
            int fd = open_echo();
            frame(fd, 1, 0, OP_TEXT, 1, "ok", 2);
            frame(fd, 1, rsv, ops[i], 1, ops[i] == OP_CLOSE ? "\x03\xe8" : "x",
                  ops[i] == OP_CLOSE ? 2 : 1);
            frame(fd, 1, 0, OP_PING, 1, "", 0);
            expect_frame(fd, OP_TEXT, "ok", 2);
            expect_close(fd, 1002);
            close(fd);
        }
    }
}

/* ---- 4 Opcodes ------------------------------------------------------------- */

static void reserved_opcodes_close_with_1002(void **state)
{
    (void)state;
    static const int ops[] = {3, 4, 5, 6, 7, 11, 12, 13, 14, 15};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        for (int with_payload = 0; with_payload <= 1; with_payload++) {
            int fd = open_echo();
            frame(fd, 1, 0, OP_TEXT, 1, "ok", 2);
            frame(fd, 1, 0, ops[i], 1, "reserved", with_payload ? 8 : 0);
            frame(fd, 1, 0, OP_PING, 1, "", 0);
            expect_frame(fd, OP_TEXT, "ok", 2);
            expect_close(fd, 1002);
            close(fd);
        }
    }
}

/* ---- 5 Fragmentation -------------------------------------------------------- */

static void fragments_are_joined_with_control_frames_between(void **state)
{
    (void)state;
    int fd = open_echo();
    static const char text[] = "fragmented message";
    size_t tl = sizeof(text) - 1;
    for (int op = OP_TEXT; op <= OP_BINARY; op++) {
        send_fragmented(fd, op, text, tl, 9, 0);
        expect_frame(fd, op, text, tl);
        send_fragmented(fd, op, text, tl, 1, 0);
        expect_frame(fd, op, text, tl);
        /* A ping between every fragment: every pong comes before the
         * message, which comes whole. */
        send_fragmented(fd, op, text, tl, 1, 1);
        for (size_t i = 1; i < tl; i++)
            expect_frame(fd, OP_PONG, "p", 1);
        expect_frame(fd, op, text, tl);
    }
    /* A pong between fragments is ignored. */
    frame(fd, 0, 0, OP_TEXT, 1, "ab", 2);
    frame(fd, 1, 0, OP_PONG, 1, "x", 1);
    frame(fd, 1, 0, OP_CONT, 1, "cd", 2);
    expect_frame(fd, OP_TEXT, "abcd", 4);
    /* Empty fragments make an empty message. */
    frame(fd, 0, 0, OP_TEXT, 1, "", 0);
    frame(fd, 0, 0, OP_CONT, 1, "", 0);
    frame(fd, 1, 0, OP_CONT, 1, "", 0);
    expect_frame(fd, OP_TEXT, "", 0);
    close_normally(fd);
}

static void fragmentation_violations_close_with_1002(void **state)
{
    (void)state;
    struct {
        int fin1, op1, fin2, op2;
    } cases[] = {
        {0, OP_PING, 1, OP_CONT},   /* a fragmented ping */
        {0, OP_PONG, 1, OP_CONT},   /* a fragmented pong */
        {0, OP_CLOSE, 1, OP_CONT},  /* a fragmented close */
        {1, OP_CONT, 1, OP_TEXT},   /* a continuation with no message open */
        {0, OP_CONT, 1, OP_CONT},   /* the same, not final */
        {0, OP_TEXT, 1, OP_TEXT},   /* a new message before the open one ended */
        {0, OP_TEXT, 0, OP_BINARY}, /* the same, of another type */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = open_echo();
        frame(fd, 1, 0, OP_TEXT, 1, "ok", 2);
        frame(fd, cases[i].fin1, 0, cases[i].op1, 1, "a", 1);
        frame(fd, cases[i].fin2, 0, cases[i].op2, 1, "b", 1);
        expect_frame(fd, OP_TEXT, "ok", 2);
        expect_close(fd, 1002);
        close(fd);
    }
    /* A continuation after a finished fragmented message. */
    int fd = open_echo();
    frame(fd, 0, 0, OP_TEXT, 1, "a", 1);
    frame(fd, 1, 0, OP_CONT, 1, "b", 1);
    frame(fd, 1, 0, OP_CONT, 1, "c", 1);
    expect_frame(fd, OP_TEXT, "ab", 2);
    expect_close(fd, 1002);
    close(fd);
}

/* ---- 6 UTF-8 ---------------------------------------------------------------- */

typedef struct seq {
    const char *bytes;
    size_t len;
} seq_t;
#define SEQ(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

static const seq_t valid_utf8[] = {
    SEQ("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!"),
    SEQ("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), /* κόσμε */
    SEQ("\x00"),
    SEQ("\x7f"),
    SEQ("\xc2\x80"),
    SEQ("\xdf\xbf"),
    SEQ("\xe0\xa0\x80"),
    SEQ("\xed\x9f\xbf"), /* U+D7FF, just below the surrogates */
    SEQ("\xee\x80\x80"), /* U+E000, just above */
    SEQ("\xef\xbf\xbd"),
    SEQ("\xef\xbf\xbf"),
    SEQ("\xf0\x90\x80\x80"),
    SEQ("\xf4\x8f\xbf\xbf"), /* U+10FFFF */
};

static const seq_t invalid_utf8[] = {
    SEQ("\x80"),
    SEQ("\xbf"),
    SEQ("a\x80\xbf"),
    SEQ("\xc0\x80"),         /* overlong NUL */
    SEQ("\xc1\xbf"),         /* overlong */
    SEQ("\xe0\x80\x80"),     /* overlong */
    SEQ("\xe0\x9f\xbf"),     /* overlong */
    SEQ("\xf0\x80\x80\x80"), /* overlong */
    SEQ("\xf0\x8f\xbf\xbf"), /* overlong */
    SEQ("\xed\xa0\x80"),     /* a high surrogate */
    SEQ("\xed\xbf\xbf"),     /* a low surrogate */
    SEQ("\xed\xa0\x80\xed\xb0\x80"),
    SEQ("\xf4\x90\x80\x80"), /* past U+10FFFF */
    SEQ("\xf5\x80\x80\x80"),
    SEQ("\xf8\x88\x80\x80\x80"),
    SEQ("\xfe"),
    SEQ("\xff"),
    SEQ("\xc2"),         /* cut short at the end of the message */
    SEQ("\xe2\x82"),     /* cut short */
    SEQ("\xf0\x9f\x98"), /* cut short */
    SEQ("\xc2\x41"),     /* a lead byte followed by ASCII */
    SEQ("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"),
};

static void valid_utf8_is_echoed_whole_and_split_anywhere(void **state)
{
    (void)state;
    int fd = open_echo();
    for (size_t i = 0; i < sizeof(valid_utf8) / sizeof(valid_utf8[0]); i++) {
        const seq_t *s = &valid_utf8[i];
        frame(fd, 1, 0, OP_TEXT, 1, s->bytes, s->len);
        expect_frame(fd, OP_TEXT, s->bytes, s->len);
        /* Split into two fragments at every byte position. */
        for (size_t cut = 0; cut <= s->len; cut++) {
            frame(fd, 0, 0, OP_TEXT, 1, s->bytes, cut);
            frame(fd, 1, 0, OP_CONT, 1, s->bytes + cut, s->len - cut);
            expect_frame(fd, OP_TEXT, s->bytes, s->len);
        }
        /* One byte per frame. */
        send_fragmented(fd, OP_TEXT, s->bytes, s->len, 1, 0);
        expect_frame(fd, OP_TEXT, s->bytes, s->len);
    }
    close_normally(fd);
}

static void invalid_utf8_closes_with_1007_however_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid_utf8) / sizeof(invalid_utf8[0]); i++) {
        const seq_t *s = &invalid_utf8[i];
        int fd = open_echo();
        frame(fd, 1, 0, OP_TEXT, 1, s->bytes, s->len);
        expect_close(fd, 1007);
        close(fd);
        for (size_t cut = 0; cut <= s->len; cut++) {
            fd = open_echo();
            frame(fd, 0, 0, OP_TEXT, 1, s->bytes, cut);
            frame(fd, 1, 0, OP_CONT, 1, s->bytes + cut, s->len - cut);
            expect_close(fd, 1007);
            close(fd);
        }
    }
    /* Fail fast: an invalid fragment closes before the message ends. */
    int fd = open_echo();
    frame(fd, 0, 0, OP_TEXT, 1, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11);
    frame(fd, 0, 0, OP_CONT, 1, "\xf4\x90\x80\x80", 4);
    expect_close(fd, 1007);
    close(fd);
    /* Binary messages are not text: any bytes go. */
    fd = open_echo();
    frame(fd, 1, 0, OP_BINARY, 1, "\xff\xfe\xed\xa0\x80", 5);
    expect_frame(fd, OP_BINARY, "\xff\xfe\xed\xa0\x80", 5);
    close_normally(fd);
}

/* ---- 7 Close handling --------------------------------------------------------- */

static void close_with_code(int code, const char *reason, size_t rlen, int expect)
{
    uint8_t p[2 + 125];
    p[0] = (uint8_t)(code >> 8);
    p[1] = (uint8_t)code;
    memcpy(p + 2, reason, rlen);
    int fd = open_echo();
    frame(fd, 1, 0, OP_CLOSE, 1, p, 2 + rlen);
    expect_close(fd, expect);
    close(fd);
}

static void close_codes_are_echoed_or_refused_with_1002(void **state)
{
    (void)state;
    static const int valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                1010, 1011, 3000, 3999, 4000, 4999};
    static const int invalid[] = {0,    999,  1004, 1005, 1006, 1015,
                                  1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        close_with_code(valid[i], "", 0, valid[i]);
        close_with_code(valid[i], "reason", 6, valid[i]);
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
        close_with_code(invalid[i], "", 0, 1002);
}

static void close_frames_are_checked(void **state)
{
    (void)state;
    /* No payload: answered with no code. */
    int fd = open_echo();
    frame(fd, 1, 0, OP_CLOSE, 1, "", 0);
    expect_close(fd, 0);
    close(fd);
    /* A payload of one byte. */
    fd = open_echo();
    frame(fd, 1, 0, OP_CLOSE, 1, "\x03", 1);
    expect_close(fd, 1002);
    close(fd);
    /* The longest reason (123 bytes), and one byte more (a 126-byte
     * control frame). */
    char reason[124];
    memset(reason, 'r', sizeof(reason));
    close_with_code(1000, reason, 123, 1000);
    fd = open_echo();
    uint8_t p[126] = {0x03, 0xe8};
    memcpy(p + 2, reason, 124);
    frame(fd, 1, 0, OP_CLOSE, 1, p, sizeof(p));
    expect_close(fd, 1002);
    close(fd);
    /* A reason that is valid UTF-8, and one that is not. */
    close_with_code(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 11, 1000);
    close_with_code(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", 14, 1007);
    close_with_code(1000, "ab\xc2", 3, 1007);
    /* Whatever follows a close is ignored: only the close comes back. */
    fd = open_echo();
    uint8_t buf[64];
    size_t o = frame_encode(buf, 1, 0, OP_CLOSE, 1, "\x03\xe8", 2);
    o += frame_encode(buf + o, 1, 0, OP_TEXT, 1, "late", 4);
    o += frame_encode(buf + o, 1, 0, OP_PING, 1, "late", 4);
    send_all(fd, buf, o);
    expect_close(fd, 1000);
    close(fd);
    /* A close in the middle of a fragmented message is a control frame
     * like any other. */
    fd = open_echo();
    frame(fd, 0, 0, OP_TEXT, 1, "half", 4);
    frame(fd, 1, 0, OP_CLOSE, 1, "\x03\xe8", 2);
    expect_close(fd, 1000);
    close(fd);
    /* A close after a message: the echo, then the close. */
    fd = open_echo();
    o = frame_encode(buf, 1, 0, OP_TEXT, 1, "last", 4);
    o += frame_encode(buf + o, 1, 0, OP_CLOSE, 1, "\x0f\xa0", 2);
    send_all(fd, buf, o);
    expect_frame(fd, OP_TEXT, "last", 4);
    expect_close(fd, 4000);
    close(fd);
}

/* ---- 9 Limits ------------------------------------------------------------------- */

static void messages_up_to_1_mib_are_echoed_whole_and_in_1_byte_frames(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 125, 126, 65535, 65536, MiB};
    int fd = open_echo();
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (int op = OP_TEXT; op <= OP_BINARY; op++) {
            uint8_t *p = pattern(lens[i], op == OP_TEXT);
            frame(fd, 1, 0, op, 1, p, lens[i]);
            expect_frame(fd, op, p, lens[i]);
            free(p);
        }
        uint8_t *p = pattern(lens[i], 1);
        send_fragmented(fd, OP_TEXT, p, lens[i], 1, 0);
        expect_frame(fd, OP_TEXT, p, lens[i]);
        free(p);
    }
    close_normally(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(framing_echoes_text_and_binary_of_every_length_class),
        cmocka_unit_test(pings_are_answered_with_their_payload),
        cmocka_unit_test(reserved_bits_close_with_1002),
        cmocka_unit_test(reserved_opcodes_close_with_1002),
        cmocka_unit_test(fragments_are_joined_with_control_frames_between),
        cmocka_unit_test(fragmentation_violations_close_with_1002),
        cmocka_unit_test(valid_utf8_is_echoed_whole_and_split_anywhere),
        cmocka_unit_test(invalid_utf8_closes_with_1007_however_split),
        cmocka_unit_test(close_codes_are_echoed_or_refused_with_1002),
        cmocka_unit_test(close_frames_are_checked),
        cmocka_unit_test(messages_up_to_1_mib_are_echoed_whole_and_in_1_byte_frames),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
