/* The client's WebSocket protocol (worker/command.c): parsing a frame into
 * a command and encoding the replies, directly; then what they decide
 * (control characters refused, lists cut to fit their envelope, newest
 * kept) as a client meets it, through a socket of a world
 * (tests/support/world.h). */
#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "tests/support/world.h"
#include "worker/command.h"

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define MAX 4096

static const char *parse_error(const char *text)
{
    wrk_command_t c;
    const char *code = NULL;
    int rc = wrk_command_parse(text, strlen(text), MAX, &c, &code);
    wrk_command_clear(&c);
    return rc ? code : NULL;
}

static void join_with_a_number_or_a_string(void **state)
{
    (void)state;
    wrk_command_t c;
    const char *code;
    const char *t = "{\"command\":\"join\",\"room\":7}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_int_equal(c.kind, WRK_CMD_JOIN);
    assert_int_equal(c.room, 7);
    assert_int_equal(c.has_since, 0);
    wrk_command_clear(&c);
    t = "{\"command\":\"join\",\"room\":\"12\",\"since\":40}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_int_equal(c.room, 12);
    assert_int_equal(c.has_since, 1);
    assert_int_equal(c.since, 40);
    wrk_command_clear(&c);
}

static void send_leave_and_the_extensions(void **state)
{
    (void)state;
    wrk_command_t c;
    const char *code;
    const char *t =
        "{\"command\":\"send\",\"room\":1,\"message\":\"hi \\u00e9\",\"client_id\":\"c1\"}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_int_equal(c.kind, WRK_CMD_SEND);
    assert_string_equal(c.message, "hi \xc3\xa9");
    assert_int_equal(c.message_len, 5);
    assert_string_equal(c.client_id, "c1");
    wrk_command_clear(&c);

    t = "{\"command\":\"leave\",\"room\":1}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_int_equal(c.kind, WRK_CMD_LEAVE);
    wrk_command_clear(&c);

    t = "{\"command\":\"history\",\"room\":1,\"before\":90,\"limit\":20}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_int_equal(c.kind, WRK_CMD_HISTORY);
    assert_int_equal(c.before, 90);
    assert_int_equal(c.limit, 20);
    wrk_command_clear(&c);

    t = "{\"command\":\"history\",\"room\":1}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_int_equal(c.has_before, 0);
    assert_int_equal(c.limit, WRK_HISTORY_DEFAULT);
    wrk_command_clear(&c);

    t = "{\"command\":\"edit\",\"room\":1,\"id\":5,\"message\":\"new\"}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_int_equal(c.kind, WRK_CMD_EDIT);
    assert_int_equal(c.id, 5);
    wrk_command_clear(&c);

    t = "{\"command\":\"delete\",\"room\":1,\"id\":5}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_int_equal(c.kind, WRK_CMD_DELETE);
    wrk_command_clear(&c);

    t = "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"psst\"}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_int_equal(c.kind, WRK_CMD_WHISPER);
    assert_string_equal(c.to, "bob");
    wrk_command_clear(&c);

    t = "{\"command\":\"who\",\"room\":\"3\"}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_int_equal(c.kind, WRK_CMD_WHO);
    wrk_command_clear(&c);
}

static void not_json_is_a_bad_request(void **state)
{
    (void)state;
    assert_string_equal(parse_error("hello"), MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error(""), MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":\"join\""), MC_ERROR_BAD_REQUEST);
}

static void not_an_object_is_a_bad_request(void **state)
{
    (void)state;
    assert_string_equal(parse_error("[1,2]"), MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("\"join\""), MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("null"), MC_ERROR_BAD_REQUEST);
}

static void a_missing_or_mistyped_command_is_a_bad_request(void **state)
{
    (void)state;
    assert_string_equal(parse_error("{\"room\":1}"), MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":1,\"room\":1}"), MC_ERROR_BAD_REQUEST);
}

static void an_unknown_command_is_named(void **state)
{
    (void)state;
    assert_string_equal(parse_error("{\"command\":\"dance\",\"room\":1}"),
                        MC_ERROR_UNKNOWN_COMMAND);
    assert_string_equal(parse_error("{\"command\":\"JOIN\",\"room\":1}"), MC_ERROR_UNKNOWN_COMMAND);
}

static void a_missing_room_is_a_bad_request(void **state)
{
    (void)state;
    assert_string_equal(parse_error("{\"command\":\"join\"}"), MC_ERROR_BAD_REQUEST);
}

static void a_non_numeric_room_is_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"command\":\"join\",\"room\":\"lobby\"}",
        "{\"command\":\"join\",\"room\":\"1a\"}",
        "{\"command\":\"join\",\"room\":\"\"}",
        "{\"command\":\"join\",\"room\":\"-1\"}",
        "{\"command\":\"join\",\"room\":0}",
        "{\"command\":\"join\",\"room\":-3}",
        "{\"command\":\"join\",\"room\":1.5}",
        "{\"command\":\"join\",\"room\":true}",
        "{\"command\":\"join\",\"room\":null}",
        "{\"command\":\"join\",\"room\":[1]}",
        "{\"command\":\"join\",\"room\":1e300}",
        "{\"command\":\"join\",\"room\":\"0\"}",
        "{\"command\":\"join\",\"room\":\"1234567890123456\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_string_equal(parse_error(bad[i]), MC_ERROR_ROOM_INVALID);
}

static void the_error_says_what_was_understood(void **state)
{
    (void)state;
    wrk_command_t c;
    const char *code;
    const char *t = "{\"command\":\"send\",\"room\":4,\"message\":\"\"}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), MC_EINVAL);
    assert_string_equal(code, MC_ERROR_MESSAGE_EMPTY);
    assert_string_equal(c.name, "send");
    assert_int_equal(c.has_room, 1);
    assert_int_equal(c.room, 4);
    wrk_command_clear(&c);

    /* Every command that changes something takes a client_id, read before
     * anything that can be refused, so that the error names it. */
    const char *named[] = {
        "{\"command\":\"send\",\"room\":\"x\",\"message\":\"hi\",\"client_id\":\"k1\"}",
        "{\"command\":\"edit\",\"room\":1,\"id\":5,\"message\":\" \",\"client_id\":\"k1\"}",
        "{\"command\":\"delete\",\"room\":1,\"id\":0,\"client_id\":\"k1\"}",
        "{\"command\":\"whisper\",\"to\":\"\",\"message\":\"hi\",\"client_id\":\"k1\"}",
    };
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        assert_int_equal(wrk_command_parse(named[i], strlen(named[i]), MAX, &c, &code), MC_EINVAL);
        assert_string_equal(c.client_id, "k1");
        wrk_command_clear(&c);
    }
    t = "{\"command\":\"edit\",\"room\":1,\"id\":5,\"message\":\"ok\",\"client_id\":\"k2\"}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_string_equal(c.client_id, "k2");
    wrk_command_clear(&c);
    /* Commands that change nothing do not look at it. */
    t = "{\"command\":\"join\",\"room\":1,\"client_id\":7}";
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    assert_string_equal(c.client_id, "");
    wrk_command_clear(&c);
}

static void an_empty_message_is_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_error("{\"command\":\"send\",\"room\":1,\"message\":\"\"}"),
                        MC_ERROR_MESSAGE_EMPTY);
    assert_string_equal(parse_error("{\"command\":\"send\",\"room\":1,\"message\":\" \\n\\t \"}"),
                        MC_ERROR_MESSAGE_EMPTY);
}

static void a_missing_or_mistyped_message_is_a_bad_request(void **state)
{
    (void)state;
    assert_string_equal(parse_error("{\"command\":\"send\",\"room\":1}"), MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":\"send\",\"room\":1,\"message\":5}"),
                        MC_ERROR_BAD_REQUEST);
}

static void a_message_over_the_limit_is_too_long(void **state)
{
    (void)state;
    char *t = malloc(MAX + 100);
    int n = sprintf(t, "{\"command\":\"send\",\"room\":1,\"message\":\"");
    memset(t + n, 'x', MAX);
    strcpy(t + n + MAX, "\"}");
    wrk_command_t c;
    const char *code;
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX, &c, &code), 0);
    wrk_command_clear(&c);
    assert_int_equal(wrk_command_parse(t, strlen(t), MAX - 1, &c, &code), MC_EINVAL);
    assert_string_equal(code, MC_ERROR_MESSAGE_TOO_LONG);
    wrk_command_clear(&c);
    free(t);
    /* A frame far larger than any message is refused before parsing. */
    size_t big = 7 * MAX + 5000;
    t = malloc(big);
    memset(t, ' ', big);
    assert_int_equal(wrk_command_parse(t, big, MAX, &c, &code), MC_EINVAL);
    assert_string_equal(code, MC_ERROR_MESSAGE_TOO_LONG);
    free(t);
}

static void bad_since_before_limit_and_id_are_bad_requests(void **state)
{
    (void)state;
    assert_string_equal(parse_error("{\"command\":\"join\",\"room\":1,\"since\":\"x\"}"),
                        MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":\"join\",\"room\":1,\"since\":-1}"),
                        MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":\"history\",\"room\":1,\"before\":0.5}"),
                        MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":\"history\",\"room\":1,\"limit\":501}"),
                        MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":\"history\",\"room\":1,\"limit\":0}"),
                        MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":\"edit\",\"room\":1,\"message\":\"x\"}"),
                        MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":\"delete\",\"room\":1,\"id\":\"5\"}"),
                        MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":\"send\",\"room\":1,\"message\":\"x\","
                                    "\"client_id\":7}"),
                        MC_ERROR_BAD_REQUEST);
}

static void a_bad_whisper_target_is_refused(void **state)
{
    (void)state;
    assert_string_equal(parse_error("{\"command\":\"whisper\",\"message\":\"x\"}"),
                        MC_ERROR_BAD_REQUEST);
    assert_string_equal(parse_error("{\"command\":\"whisper\",\"to\":\"\",\"message\":\"x\"}"),
                        MC_ERROR_USER_INVALID);
}

static void control_characters_other_than_tab_and_newline_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"command\":\"send\",\"room\":1,\"message\":\"a\\u0001b\"}",
        "{\"command\":\"send\",\"room\":1,\"message\":\"\\u001b[2Jcleared\"}",
        "{\"command\":\"send\",\"room\":1,\"message\":\"over\\rwritten\"}",
        "{\"command\":\"send\",\"room\":1,\"message\":\"del\\u007f\"}",
        "{\"command\":\"send\",\"room\":1,\"message\":\"csi \\u009b2J\"}",
        "{\"command\":\"send\",\"room\":1,\"message\":\"raw \xc2\x85 nel\"}",
        "{\"command\":\"edit\",\"room\":1,\"id\":3,\"message\":\"x\\u0007\"}",
        "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"x\\b\"}",
        /* A NUL would otherwise end the string early, and the rest be lost. */
        "{\"command\":\"send\",\"room\":1,\"message\":\"kept\\u0000lost\"}",
        "{\"command\":\"whisper\",\"to\":\"bob\\u0000\",\"message\":\"x\"}",
        /* Not JSON, and read as a NUL by cJSON: the same loss. */
        "{\"command\":\"send\",\"room\":1,\"message\":\"hi\\uZZZZthere\"}",
        "{\"command\":\"send\",\"room\":1,\"message\":\"hi\\u12G4there\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        wrk_command_t c;
        const char *code;
        assert_int_equal(wrk_command_parse(bad[i], strlen(bad[i]), MAX, &c, &code), MC_EINVAL);
        assert_string_equal(code, MC_ERROR_BAD_REQUEST);
        assert_non_null(c.name); /* the error names the command */
        wrk_command_clear(&c);
    }
    /* Tab, newline and text beyond ASCII are chat text: U+00A0 and U+00C5
     * start with C2 and C3 too. */
    assert_null(parse_error("{\"command\":\"send\",\"room\":1,\"message\":\"a\\tb\\nc\"}"));
    /* An escaped backslash before "u0000" is text, not a NUL. */
    assert_null(parse_error("{\"command\":\"send\",\"room\":1,\"message\":\"C:\\\\u0000\"}"));
    assert_null(parse_error(
        "{\"command\":\"send\",\"room\":1,\"message\":\"\xc2\xa0\xc3\x85 \xf0\x9f\x98\x80\"}"));
}

static void a_message_too_costly_for_a_reply_is_too_long(void **state)
{
    (void)state;
    /* Quotes cost 4 bytes each in a reply's envelope: past the cost limit
     * even under a raised message limit. Plain text of the same length is
     * fine. */
    size_t n = WRK_MESSAGE_COST_MAX / 4 + 16, big = 1 << 20;
    char *t = malloc(2 * n + 100);
    int k = sprintf(t, "{\"command\":\"send\",\"room\":1,\"message\":\"");
    for (size_t i = 0; i < n; i++)
        memcpy(t + k + 2 * i, "\\\"", 2);
    strcpy(t + k + 2 * n, "\"}");
    wrk_command_t c;
    const char *code;
    assert_int_equal(wrk_command_parse(t, strlen(t), big, &c, &code), MC_EINVAL);
    assert_string_equal(code, MC_ERROR_MESSAGE_TOO_LONG);
    wrk_command_clear(&c);
    memset(t + k, 'x', n);
    strcpy(t + k + n, "\"}");
    assert_int_equal(wrk_command_parse(t, strlen(t), big, &c, &code), 0);
    assert_int_equal(c.message_len, n);
    wrk_command_clear(&c);
    free(t);
}

/* n messages of room 2, ids 1..n, each body `size` copies of fill. */
static wrk_message_list_t messages(size_t n, size_t size, char fill)
{
    wrk_message_list_t l = {calloc(n, sizeof(wrk_message_t)), n, 0};
    for (size_t i = 0; i < n; i++) {
        l.items[i] = (wrk_message_t){.id = (int64_t)i + 1, .room_id = 2, .created_ms = 5};
        snprintf(l.items[i].username, sizeof(l.items[i].username), "ann");
        l.items[i].body = malloc(size + 1);
        memset(l.items[i].body, fill, size);
        l.items[i].body[size] = '\0';
        l.items[i].body_len = size;
    }
    return l;
}

/* The ids of a reply's messages, in order, as "1,2,3". */
static void ids_of(const char *reply, char *out, size_t size)
{
    out[0] = '\0';
    for (const char *p = reply; (p = strstr(p, ",\"id\":")) != NULL; p++)
        snprintf(out + strlen(out), size - strlen(out), "%s%ld", out[0] ? "," : "",
                 strtol(p + 6, NULL, 10));
}

static void a_list_over_the_budget_keeps_its_newest(void **state)
{
    (void)state;
    /* 40 messages of 4,096 control characters: over 1 MiB in an envelope. */
    wrk_message_list_t l = messages(40, 4096, '\x01');
    const char *members[] = {"ann"};
    char *out, ids[256];
    assert_int_equal(wrk_reply_join(2, "T", &l, members, 1, WRK_REPLY_BUDGET, &out), 0);
    size_t cost = mc_envelope_string_len(out, strlen(out));
    assert_true(cost <= WRK_REPLY_BUDGET);
    assert_true(cost > WRK_REPLY_BUDGET - 4096 * 7); /* as many as fit */
    ids_of(out, ids, sizeof(ids));
    assert_non_null(strstr(ids, ",40"));
    assert_null(strstr(ids, "1,2,"));
    assert_non_null(strstr(out, "],\"truncated\":true,\"members\":[\"ann\"]}"));
    free(out);

    /* A budget that holds all of them cuts nothing, and says nothing. */
    assert_int_equal(wrk_reply_history(2, &l, 1 << 22, &out), 0);
    size_t whole = mc_envelope_string_len(out, strlen(out));
    assert_null(strstr(out, "truncated"));
    free(out);
    assert_int_equal(wrk_reply_history(2, &l, whole + 64, &out), 0);
    assert_null(strstr(out, "truncated"));
    ids_of(out, ids, sizeof(ids));
    assert_true(strncmp(ids, "1,2,3,", 6) == 0);
    free(out);
    /* One byte less: the oldest goes, and the page says more remain. */
    assert_int_equal(wrk_reply_history(2, &l, whole - 1, &out), 0);
    ids_of(out, ids, sizeof(ids));
    assert_true(strncmp(ids, "2,3,", 4) == 0);
    assert_non_null(strstr(out, "],\"truncated\":true}"));
    free(out);
    /* A list that was cut already says so, whole or not. */
    l.truncated = 1;
    assert_int_equal(wrk_reply_history(2, &l, 1 << 22, &out), 0);
    assert_non_null(strstr(out, "\"truncated\":true"));
    free(out);
    /* Not even the reply without messages fits: nothing to send. */
    assert_int_equal(wrk_reply_history(2, &l, 10, &out), MC_ETOOBIG);
    assert_null(out);
    wrk_message_list_clear(&l);
}

static void whispers_over_the_budget_keep_their_newest(void **state)
{
    (void)state;
    size_t n = 300;
    wrk_whisper_list_t l = {calloc(n, sizeof(wrk_whisper_t)), n, 0};
    for (size_t i = 0; i < n; i++) {
        l.items[i] = (wrk_whisper_t){.id = (int64_t)i + 1, .from = "ann", .to = "bob"};
        l.items[i].body = malloc(4097);
        memset(l.items[i].body, '"', 4096);
        l.items[i].body[4096] = '\0';
        l.items[i].body_len = 4096;
    }
    char *out;
    assert_int_equal(wrk_reply_whispers(&l, WRK_REPLY_BUDGET, &out), 0);
    assert_true(mc_envelope_string_len(out, strlen(out)) <= WRK_REPLY_BUDGET);
    assert_non_null(strstr(out, "{\"whisper\":300,"));
    assert_null(strstr(out, "{\"whisper\":1,"));
    assert_non_null(strstr(out, "],\"truncated\":true}"));
    free(out);
    wrk_whisper_list_clear(&l);
}

static void replies_match_the_example_byte_for_byte(void **state)
{
    (void)state;
    char *out;
    assert_int_equal(wrk_reply_join(1, "room 1", NULL, NULL, 0, WRK_REPLY_BUDGET, &out), 0);
    assert_string_equal(out, "{\"join\":\"1\",\"title\":\"room 1\"}");
    free(out);
    assert_int_equal(wrk_reply_leave(12, &out), 0);
    assert_string_equal(out, "{\"leave\":\"12\"}");
    free(out);
    wrk_message_t m = {.id = 42,
                       .room_id = 3,
                       .user_id = 1,
                       .username = "ann",
                       .body = (char *)"hi \"you\"",
                       .body_len = 8,
                       .created_ms = 1795530959600};
    assert_int_equal(wrk_reply_message(&m, 0, &out), 0);
    assert_string_equal(out, "{\"room\":\"3\",\"message\":\"hi \\\"you\\\"\",\"username\":\"ann\","
                             "\"msg_type\":0,\"id\":42,\"ts\":1795530959600}");
    free(out);
    assert_int_equal(wrk_reply_message(&m, 1, &out), 0);
    assert_non_null(strstr(out, ",\"ts\":1795530959600,\"own\":true}"));
    free(out);
    assert_int_equal(wrk_reply_notice(3, "ann", MC_MSG_ENTER, &out), 0);
    assert_string_equal(out,
                        "{\"room\":\"3\",\"message\":null,\"username\":\"ann\",\"msg_type\":4}");
    free(out);
    assert_int_equal(wrk_reply_notice(3, "ann", MC_MSG_LEAVE, &out), 0);
    assert_string_equal(out,
                        "{\"room\":\"3\",\"message\":null,\"username\":\"ann\",\"msg_type\":5}");
    free(out);
    assert_int_equal(wrk_reply_error(MC_ERROR_ROOM_INVALID, 0, NULL, NULL, &out), 0);
    assert_string_equal(out, "{\"error\":\"ROOM_INVALID\"}");
    free(out);
    assert_int_equal(wrk_reply_error(MC_ERROR_ROOM_ACCESS_DENIED, 5, "send", "", &out), 0);
    assert_string_equal(out,
                        "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"5\",\"command\":\"send\"}");
    free(out);
    assert_int_equal(wrk_reply_error(MC_ERROR_NOT_ALLOWED, 5, "edit", "k\"1", &out), 0);
    assert_string_equal(out, "{\"error\":\"NOT_ALLOWED\",\"room\":\"5\",\"command\":\"edit\","
                             "\"client_id\":\"k\\\"1\"}");
    free(out);
}

static void extension_replies(void **state)
{
    (void)state;
    char *out;
    wrk_message_t items[1] = {{.id = 9,
                               .room_id = 2,
                               .username = "bob",
                               .body = (char *)"x",
                               .body_len = 1,
                               .created_ms = 5,
                               .edited_ms = 6}};
    wrk_message_list_t l = {items, 1, 1};
    const char *members[] = {"ann", "bob"};
    assert_int_equal(wrk_reply_join(2, "T", &l, members, 2, WRK_REPLY_BUDGET, &out), 0);
    assert_string_equal(out, "{\"join\":\"2\",\"title\":\"T\",\"history\":[{\"room\":\"2\","
                             "\"message\":\"x\",\"username\":\"bob\",\"msg_type\":0,\"id\":9,"
                             "\"ts\":5,\"edited\":6}],\"truncated\":true,"
                             "\"members\":[\"ann\",\"bob\"]}");
    free(out);
    assert_int_equal(wrk_reply_history(2, &l, WRK_REPLY_BUDGET, &out), 0);
    assert_non_null(strstr(out, "{\"history\":\"2\",\"messages\":[{"));
    free(out);
    assert_int_equal(wrk_reply_edited(&items[0], NULL, &out), 0);
    assert_string_equal(out, "{\"edited\":9,\"room\":\"2\",\"message\":\"x\",\"ts\":6}");
    free(out);
    assert_int_equal(wrk_reply_edited(&items[0], "e1", &out), 0);
    assert_string_equal(
        out, "{\"edited\":9,\"room\":\"2\",\"message\":\"x\",\"ts\":6,\"client_id\":\"e1\"}");
    free(out);
    assert_int_equal(wrk_reply_deleted(9, 2, NULL, &out), 0);
    assert_string_equal(out, "{\"deleted\":9,\"room\":\"2\"}");
    free(out);
    assert_int_equal(wrk_reply_deleted(9, 2, "d1", &out), 0);
    assert_string_equal(out, "{\"deleted\":9,\"room\":\"2\",\"client_id\":\"d1\"}");
    free(out);
    wrk_whisper_t w = {3, "ann", "bob", (char *)"psst", 4, 7};
    assert_int_equal(wrk_reply_whisper(&w, NULL, &out), 0);
    assert_string_equal(
        out, "{\"whisper\":3,\"from\":\"ann\",\"to\":\"bob\",\"message\":\"psst\",\"ts\":7}");
    free(out);
    assert_int_equal(wrk_reply_whisper(&w, "w1", &out), 0);
    assert_string_equal(out, "{\"whisper\":3,\"from\":\"ann\",\"to\":\"bob\",\"message\":\"psst\","
                             "\"ts\":7,\"client_id\":\"w1\"}");
    free(out);
    assert_int_equal(wrk_reply_who(2, members, 2, &out), 0);
    assert_string_equal(out, "{\"who\":\"2\",\"members\":[\"ann\",\"bob\"]}");
    free(out);
    wrk_room_t rooms[2] = {{1, "Lobby", 0}, {2, "Staff", 1}};
    assert_int_equal(wrk_reply_rooms(rooms, 2, &out), 0);
    assert_string_equal(out, "{\"rooms\":[{\"id\":\"1\",\"title\":\"Lobby\",\"staff_only\":false},"
                             "{\"id\":\"2\",\"title\":\"Staff\",\"staff_only\":true}]}");
    free(out);
}

/* ---- Through a socket of a world (tests/support/world.h) ------------------ */

/* Stores n messages of size copies of fill in room by user, as earlier
 * versions of the worker did (the store takes any text). */
static void stored(ts_world_t *w, int64_t room, int64_t user, size_t n, size_t size, char fill)
{
    char *body = malloc(size + 1);
    memset(body, fill, size);
    body[size] = '\0';
    for (size_t i = 0; i < n; i++) {
        wrk_message_t m;
        assert_int_equal(wrk_store_message_add(w->app.store, room, user, body, size, NULL,
                                               1000 + (int64_t)i, &m, NULL),
                         0);
        wrk_message_clear(&m);
    }
    free(body);
}

/* A list reply as a client reads it: the ids of its messages (key holds
 * them), its "truncated", and what it cost in its envelope. */
typedef struct list_reply {
    int64_t ids[600];
    size_t n;
    int truncated;
    size_t cost;
} list_reply_t;

static void read_list(ts_world_t *w, const char *channel, const char *key, list_reply_t *r)
{
    char *text = ts_next_text(w, channel);
    memset(r, 0, sizeof(*r));
    r->cost = mc_envelope_string_len(text, strlen(text));
    cJSON *o = cJSON_Parse(text);
    assert_non_null(o);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(o, key), *m;
    if (!cJSON_IsArray(list))
        fail_msg("no %s in %.200s", key, text);
    cJSON_ArrayForEach(m, list)
    {
        assert_true(r->n < sizeof(r->ids) / sizeof(r->ids[0]));
        r->ids[r->n++] = (int64_t)cJSON_GetObjectItemCaseSensitive(m, "id")->valuedouble;
    }
    r->truncated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "truncated"));
    cJSON_Delete(o);
    free(text);
}

static void a_room_full_of_control_characters_stays_joinable(void **state)
{
    ts_world_t *w = *state;
    /* 40 messages of 4,096 U+0001: 7 bytes each in an envelope, so the
     * whole history is over the channel layer's payload limit. */
    stored(w, 1, 1, 40, 4096, '\x01');
    char cs[256], cb[256];
    ts_sock_t s, b;
    ts_log_in_and_connect(w, "sue", "ifc.t!1", cs, sizeof(cs), &s);
    ts_log_in_and_connect(w, "bob", "ifc.t!2", cb, sizeof(cb), &b);
    list_reply_t r;
    ts_ws_send(w, &s, "{\"command\":\"join\",\"room\":1}");
    read_list(w, s.channel, "history", &r);
    assert_true(r.n > 0 && r.n < 40);
    assert_int_equal(r.ids[r.n - 1], 40); /* the newest are kept */
    assert_int_equal(r.truncated, 1);
    assert_true(r.cost <= WRK_REPLY_BUDGET);
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1,\"since\":0}");
    read_list(w, b.channel, "history", &r);
    assert_int_equal(r.ids[r.n - 1], 40);
    assert_int_equal(r.truncated, 1);
    ts_expect_text(w, s.channel,
                   "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":4}");
}

static void control_characters_are_refused_and_nothing_is_stored(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    char *frame = malloc(4096 * 6 + 100);
    int n = sprintf(frame, "{\"command\":\"send\",\"room\":1,\"message\":\"");
    for (int i = 0; i < 4096; i++)
        n += sprintf(frame + n, "\\u0001");
    strcpy(frame + n, "\"}");
    ts_ws_send(w, &a, frame);
    free(frame);
    ts_expect_text(w, a.channel, "{\"error\":\"BAD_REQUEST\",\"room\":\"1\",\"command\":\"send\"}");
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"\\u001b[31mred\"}");
    ts_expect_text(w, a.channel, "{\"error\":\"BAD_REQUEST\",\"room\":\"1\",\"command\":\"send\"}");
    assert_false(ts_pending(w, b.channel));
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(w->app.store, 1, 50, &l), 0);
    assert_int_equal(l.n, 0);
    wrk_message_list_clear(&l);
    /* Tabs and newlines are text. */
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"a\\tb\\nc\"}");
    ts_expect_text_has(w, b.channel, "\"message\":\"a\\tb\\nc\"");
}

static void a_long_history_since_zero_is_cut_to_fit_and_paged_back(void **state)
{
    ts_world_t *w = *state;
    /* 260 plain messages of 4 KB: over 1 MiB as one history. */
    stored(w, 1, 1, 260, 4000, 'x');
    char cb[256];
    ts_sock_t b;
    ts_log_in_and_connect(w, "bob", "ifc.t!2", cb, sizeof(cb), &b);
    static char seen[261];
    memset(seen, 0, sizeof(seen));
    list_reply_t r;
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1,\"since\":0}");
    read_list(w, b.channel, "history", &r);
    assert_int_equal(r.truncated, 1);
    assert_int_equal(r.ids[r.n - 1], 260);
    assert_true(r.cost <= WRK_REPLY_BUDGET);
    /* The client pages back from the oldest it got until nothing is left. */
    for (int pages = 0; r.n > 0; pages++) {
        assert_true(pages < 10);
        for (size_t i = 0; i < r.n; i++) {
            assert_true(r.ids[i] >= 1 && r.ids[i] <= 260);
            assert_int_equal(seen[r.ids[i]]++, 0);
        }
        if (!r.truncated)
            break;
        char cmd[128];
        snprintf(cmd, sizeof(cmd),
                 "{\"command\":\"history\",\"room\":1,\"before\":%lld,\"limit\":100}",
                 (long long)r.ids[0]);
        ts_ws_send(w, &b, cmd);
        read_list(w, b.channel, "messages", &r);
        assert_true(r.cost <= WRK_REPLY_BUDGET);
    }
    for (int id = 1; id <= 260; id++)
        assert_int_equal(seen[id], 1);
}

#define T(name) cmocka_unit_test_setup_teardown(name, ts_world_setup, ts_world_teardown)

/* A chat message event is written straight, not through cJSON: byte for
 * byte what cJSON prints for the same message in a history list, for
 * bodies and names that need escapes. */
static void a_message_event_is_what_cjson_prints(void **state)
{
    (void)state;
    const char *bodies[] = {
        "hi",
        "a \"quote\" and a back\\slash\\",
        "tab\tand\nnewline",
        "\x01\x1f raw controls (stored by an older version)",
        "DEL \x7f, caf\xc3\xa9, \xe2\x82\xac, \xf0\x9f\x98\x80",
        "</script> and a slash /",
        "{\"command\":\"send\",\"room\":1}",
    };
    const char *names[] = {"ann", "b\"o\\b", "z\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        for (size_t j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
            wrk_message_t m = {.id = 9007199254740993LL + (int64_t)i,
                               .room_id = 12345678901LL,
                               .user_id = 1,
                               .body = (char *)bodies[i],
                               .body_len = strlen(bodies[i]),
                               .created_ms = 1795530959600,
                               .edited_ms = j == 1 ? 1795530959999 : 0};
            snprintf(m.username, sizeof(m.username), "%s", names[j]);
            wrk_message_list_t l = {.items = &m, .n = 1};
            char *ours, *history;
            assert_int_equal(wrk_reply_message(&m, 0, &ours), 0);
            assert_int_equal(wrk_reply_history(12345678901LL, &l, WRK_REPLY_BUDGET, &history), 0);
            const char *head = "{\"history\":\"12345678901\",\"messages\":[";
            size_t hl = strlen(head), n = strlen(history);
            assert_memory_equal(history, head, hl);
            assert_string_equal(history + n - 2, "]}");
            assert_int_equal(strlen(ours), n - hl - 2);
            assert_memory_equal(ours, history + hl, n - hl - 2);
            free(ours);
            free(history);
        }
    }
}

int main(void)
{
    mc_log_init("command_test", MC_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(join_with_a_number_or_a_string),
        cmocka_unit_test(a_message_event_is_what_cjson_prints),
        cmocka_unit_test(send_leave_and_the_extensions),
        cmocka_unit_test(not_json_is_a_bad_request),
        cmocka_unit_test(not_an_object_is_a_bad_request),
        cmocka_unit_test(a_missing_or_mistyped_command_is_a_bad_request),
        cmocka_unit_test(an_unknown_command_is_named),
        cmocka_unit_test(a_missing_room_is_a_bad_request),
        cmocka_unit_test(a_non_numeric_room_is_invalid),
        cmocka_unit_test(the_error_says_what_was_understood),
        cmocka_unit_test(an_empty_message_is_refused),
        cmocka_unit_test(a_missing_or_mistyped_message_is_a_bad_request),
        cmocka_unit_test(a_message_over_the_limit_is_too_long),
        cmocka_unit_test(bad_since_before_limit_and_id_are_bad_requests),
        cmocka_unit_test(a_bad_whisper_target_is_refused),
        cmocka_unit_test(control_characters_other_than_tab_and_newline_are_refused),
        cmocka_unit_test(a_message_too_costly_for_a_reply_is_too_long),
        cmocka_unit_test(a_list_over_the_budget_keeps_its_newest),
        cmocka_unit_test(whispers_over_the_budget_keep_their_newest),
        cmocka_unit_test(replies_match_the_example_byte_for_byte),
        cmocka_unit_test(extension_replies),
        T(a_room_full_of_control_characters_stays_joinable),
        T(control_characters_are_refused_and_nothing_is_stored),
        T(a_long_history_since_zero_is_cut_to_fit_and_paged_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
