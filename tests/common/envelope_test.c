#include "common/envelope.h"
#include "common/error.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static int decode_text(mc_envelope_t *env, const char *text)
{
    return mc_envelope_decode(env, text, strlen(text));
}

/* Encodes env, decodes the result into *back. */
static void round_trip(const mc_envelope_t *env, mc_envelope_t *back, char **wire)
{
    size_t len = 0;
    assert_int_equal(mc_envelope_encode(env, wire, &len), 0);
    assert_int_equal(strlen(*wire), len);
    assert_int_equal(mc_envelope_decode(back, *wire, len), 0);
    assert_int_equal(back->type, env->type);
}

static void http_request_round_trips(void **state)
{
    (void)state;
    mc_envelope_t env = {.type = MC_ENV_HTTP_REQUEST,
                         .reply = "ifc.h.1.ab!7",
                         .method = "POST",
                         .path = "/accounts/login/",
                         .query = "next=%2F",
                         .client = "127.0.0.1",
                         .headers = {{"cookie", "csrftoken=abc"}, {"content-type", "x"}},
                         .nheaders = 2,
                         .body = "username=ann&password=p\"w",
                         .body_len = 25,
                         .scheme = "https"};
    mc_envelope_t back;
    char *wire;
    round_trip(&env, &back, &wire);
    assert_string_equal(back.reply, "ifc.h.1.ab!7");
    assert_string_equal(back.scheme, "https");
    assert_string_equal(back.method, "POST");
    assert_string_equal(back.path, "/accounts/login/");
    assert_string_equal(back.query, "next=%2F");
    assert_string_equal(back.client, "127.0.0.1");
    assert_int_equal(back.nheaders, 2);
    assert_string_equal(mc_envelope_header(&back, "cookie"), "csrftoken=abc");
    assert_null(mc_envelope_header(&back, "host"));
    assert_int_equal(back.body_len, 25);
    assert_memory_equal(back.body, "username=ann&password=p\"w", 25);
    mc_envelope_clear(&back);
    free(wire);
}

static void body_is_taken_by_length_not_by_nul(void **state)
{
    (void)state;
    const char raw[] = "hello, world";
    mc_envelope_t env = {.type = MC_ENV_WS_SEND, .body = raw, .body_len = 5};
    mc_envelope_t back;
    char *wire;
    round_trip(&env, &back, &wire);
    assert_string_equal(back.body, "hello");
    assert_string_equal(wire, "{\"type\":\"websocket.send\",\"text\":\"hello\"}");
    mc_envelope_clear(&back);
    free(wire);
}

/* A body is bytes: a NUL inside it (JSON \u0000) travels like any other. */
static void a_body_with_a_nul_round_trips(void **state)
{
    (void)state;
    static const char text[] = "{\"command\":\"send\",\"message\":\"a\0b\"}";
    mc_envelope_t env = {.type = MC_ENV_WS_SEND, .body = text, .body_len = sizeof(text) - 1};
    mc_envelope_t back;
    char *wire;
    round_trip(&env, &back, &wire);
    assert_non_null(strstr(wire, "a\\u0000b"));
    assert_int_equal(back.body_len, sizeof(text) - 1);
    assert_memory_equal(back.body, text, sizeof(text) - 1);
    mc_envelope_clear(&back);
    free(wire);

    static const char form[] = "a=1\0&b=2";
    mc_envelope_t req = {.type = MC_ENV_HTTP_REQUEST,
                         .reply = "a!1",
                         .method = "POST",
                         .path = "/",
                         .body = form,
                         .body_len = sizeof(form) - 1};
    round_trip(&req, &back, &wire);
    assert_int_equal(back.body_len, sizeof(form) - 1);
    assert_memory_equal(back.body, form, sizeof(form) - 1);
    mc_envelope_clear(&back);
    free(wire);
}

static void an_escaped_nul_in_a_text_is_kept(void **state)
{
    (void)state;
    mc_envelope_t env;
    assert_int_equal(decode_text(&env, "{\"type\":\"websocket.receive\",\"reply\":\"a!1\","
                                       "\"text\":\"x\\u0000y\\u00e9\"}"),
                     0);
    assert_int_equal(env.body_len, 5);
    assert_memory_equal(env.body, "x\0y\xc3\xa9", 5);
    mc_envelope_clear(&env);
}

/* Every other field is a C string: one with a NUL inside does not decode. */
static void a_nul_outside_the_body_is_refused(void **state)
{
    (void)state;
    mc_envelope_t env;
    assert_int_equal(decode_text(&env, "{\"type\":\"websocket.send\",\"text\":\"x\","
                                       "\"own\":\"a!1\\u0000b\"}"),
                     MC_EINVAL);
    assert_int_equal(decode_text(&env, "{\"type\":\"http.response\",\"status\":200,"
                                       "\"headers\":[[\"location\",\"/\\u0000x\"]]}"),
                     MC_EINVAL);
}

static void websocket_envelopes_round_trip(void **state)
{
    (void)state;
    mc_envelope_t env = {.type = MC_ENV_WS_RECEIVE,
                         .reply = "ifc.h.1.ab!9",
                         .has_scope = 1,
                         .scope = {.user_id = 42, .username = "ann", .is_staff = 1},
                         .groups = {"room-1", "room-2"},
                         .ngroups = 2,
                         .body = "{\"command\":\"join\",\"room\":1}",
                         .body_len = 27,
                         .id = "ifc.h.1.ab-17"};
    mc_envelope_t back;
    char *wire;
    round_trip(&env, &back, &wire);
    assert_string_equal(back.id, "ifc.h.1.ab-17");
    assert_true(back.has_scope);
    assert_int_equal(back.scope.user_id, 42);
    assert_string_equal(back.scope.username, "ann");
    assert_true(back.scope.is_staff);
    assert_int_equal(back.ngroups, 2);
    assert_string_equal(back.groups[1], "room-2");
    assert_string_equal(back.body, "{\"command\":\"join\",\"room\":1}");
    mc_envelope_clear(&back);
    free(wire);

    mc_envelope_t close = {.type = MC_ENV_WS_CLOSE, .code = 4001, .reason = "session ended"};
    round_trip(&close, &back, &wire);
    assert_int_equal(back.code, 4001);
    assert_string_equal(back.reason, "session ended");
    mc_envelope_clear(&back);
    free(wire);

    mc_envelope_t disc = {.type = MC_ENV_WS_DISCONNECT, .reply = "r!1", .code = 1006};
    round_trip(&disc, &back, &wire);
    assert_int_equal(back.code, 1006);
    assert_false(back.has_scope);
    mc_envelope_clear(&back);
    free(wire);

    mc_envelope_t resp = {.type = MC_ENV_HTTP_RESPONSE,
                          .status = 302,
                          .headers = {{"location", "/accounts/login/?next=/"}},
                          .nheaders = 1};
    round_trip(&resp, &back, &wire);
    assert_int_equal(back.status, 302);
    assert_string_equal(mc_envelope_header(&back, "location"), "/accounts/login/?next=/");
    assert_string_equal(back.body, "");
    mc_envelope_clear(&back);
    free(wire);
}

static void optional_fields_default(void **state)
{
    (void)state;
    mc_envelope_t env;
    assert_int_equal(decode_text(&env, "{\"type\":\"websocket.close\"}"), 0);
    assert_int_equal(env.code, 1000);
    assert_string_equal(env.reason, "");
    mc_envelope_clear(&env);
    assert_int_equal(decode_text(&env, "{\"type\":\"http.request\",\"reply\":\"a!1\","
                                       "\"method\":\"GET\",\"path\":\"/\"}"),
                     0);
    assert_string_equal(env.query, "");
    assert_string_equal(env.scheme, ""); /* plain HTTP */
    assert_string_equal(env.body, "");
    assert_int_equal(env.nheaders, 0);
    mc_envelope_clear(&env);
    mc_envelope_clear(&env); /* twice is harmless */
}

/* Keys a type does not use are skipped, whatever they hold; of a repeated
 * key the first counts. */
static void unknown_and_repeated_keys(void **state)
{
    (void)state;
    mc_envelope_t env;
    assert_int_equal(decode_text(&env, "{\"x\":[{\"y\":[1,2.5e3,null,true]}],\"type\":"
                                       "\"websocket.close\",\"status\":\"no\",\"code\":4001,"
                                       "\"code\":1000}"),
                     0);
    assert_int_equal(env.type, MC_ENV_WS_CLOSE);
    assert_int_equal(env.code, 4001);
    mc_envelope_clear(&env);
}

static void malformed_envelopes_are_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "not json",
        "[1,2]",
        "{\"type\":42}",
        "{\"type\":\"websocket.teleport\"}",
        "{\"type\":\"websocket.send\"}",                 /* text missing */
        "{\"type\":\"websocket.send\",\"text\":7}",      /* text not a string */
        "{\"type\":\"http.response\"}",                  /* status missing */
        "{\"type\":\"http.response\",\"status\":99}",    /* status out of range */
        "{\"type\":\"http.response\",\"status\":200.5}", /* not whole */
        "{\"type\":\"websocket.close\",\"code\":70000}", /* code out of range */
        "{\"type\":\"websocket.accept\"}",               /* scope missing */
        "{\"type\":\"websocket.accept\",\"scope\":{\"user_id\":-1,\"username\":\"a\","
        "\"is_staff\":false}}",
        "{\"type\":\"websocket.accept\",\"scope\":{\"user_id\":1,\"username\":\"a\","
        "\"is_staff\":1}}",
        "{\"type\":\"http.request\",\"reply\":\"a!1\",\"method\":\"GET\",\"path\":\"/\","
        "\"headers\":[[\"a\"]]}",
        "{\"type\":\"http.request\",\"reply\":\"a!1\",\"method\":\"GET\",\"path\":\"/\","
        "\"headers\":{\"a\":\"b\"}}",
        "{\"type\":\"websocket.receive\",\"reply\":\"a!1\",\"text\":\"x\",\"groups\":[1]}",
        "{\"type\":\"websocket.send\",\"text\":\"x\"",        /* truncated */
        "{\"type\":\"websocket.send\",\"text\":\"x\"} {}",    /* more than one value */
        "{\"type\":\"websocket.send\",\"text\":\"a\tb\"}",    /* a raw control character */
        "{\"type\":\"websocket.send\",\"text\":\"\\ud800\"}", /* half a surrogate pair */
        "{\"type\":\"websocket.close\",\"code\":01000}",      /* not a JSON number */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        mc_envelope_t env;
        int rc = decode_text(&env, bad[i]);
        if (rc != MC_EINVAL)
            fail_msg("case %zu (%s): expected MC_EINVAL, got %d", i, bad[i], rc);
        assert_null(env.arena);
    }
}

static void limits_are_enforced(void **state)
{
    (void)state;
    mc_envelope_t env;
    /* A username longer than the limit. */
    char text[512];
    char name[MC_USERNAME_MAX + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(text, sizeof(text),
             "{\"type\":\"websocket.accept\",\"scope\":{\"user_id\":1,\"username\":\"%s\","
             "\"is_staff\":false}}",
             name);
    assert_int_equal(decode_text(&env, text), MC_ETOOBIG);

    /* More headers than the limit. */
    size_t cap = 64 + 16 * (MC_ENVELOPE_MAX_HEADERS + 1);
    char *many = malloc(cap);
    size_t n =
        (size_t)snprintf(many, cap, "{\"type\":\"http.response\",\"status\":200,\"headers\":[");
    for (int i = 0; i <= MC_ENVELOPE_MAX_HEADERS; i++)
        n += (size_t)snprintf(many + n, cap - n, "%s[\"h\",\"v\"]", i ? "," : "");
    snprintf(many + n, cap - n, "]}");
    assert_int_equal(decode_text(&env, many), MC_ETOOBIG);
    free(many);

    /* A whole envelope over the limit is refused before parsing. */
    assert_int_equal(mc_envelope_decode(&env, "{}", MC_ENVELOPE_MAX_BYTES + 1), MC_ETOOBIG);

    /* Encoding a body over the limit is refused. */
    mc_envelope_t big = {.type = MC_ENV_WS_SEND, .body = "", .body_len = MC_ENVELOPE_MAX_BYTES + 1};
    char *out;
    size_t len;
    assert_int_equal(mc_envelope_encode(&big, &out, &len), MC_ETOOBIG);
    assert_null(out);
}

/* Requests say how the client came (its scheme, as the interface learnt
 * it from TLS or a trusted proxy); answers to a websocket.receive carry
 * the "done" mark, a boolean, and only the types that may answer do. */
static void scheme_and_done_round_trip(void **state)
{
    (void)state;
    mc_envelope_t env = {.type = MC_ENV_WS_CONNECT,
                         .reply = "ifc.h.1.ab!7",
                         .path = "/chat/stream/",
                         .client = "203.0.113.7",
                         .scheme = "https"};
    mc_envelope_t back;
    char *wire;
    round_trip(&env, &back, &wire);
    assert_string_equal(back.scheme, "https");
    assert_string_equal(back.client, "203.0.113.7");
    mc_envelope_clear(&back);
    free(wire);
    /* Left out, it reads as "" (an older interface): not known. */
    assert_int_equal(decode_text(&back, "{\"type\":\"http.request\",\"reply\":\"a!1\","
                                        "\"method\":\"GET\",\"path\":\"/\"}"),
                     0);
    assert_string_equal(back.scheme, "");
    mc_envelope_clear(&back);

    mc_envelope_t send = {.type = MC_ENV_WS_SEND, .body = "", .done = 1};
    round_trip(&send, &back, &wire);
    assert_non_null(strstr(wire, "\"done\":true"));
    assert_int_equal(back.done, 1);
    assert_int_equal(back.body_len, 0);
    mc_envelope_clear(&back);
    free(wire);
    mc_envelope_t close = {.type = MC_ENV_WS_CLOSE, .code = 1008, .done = 1};
    round_trip(&close, &back, &wire);
    assert_int_equal(back.done, 1);
    mc_envelope_clear(&back);
    free(wire);
    /* Not marked: no key at all, and false reads as not marked. */
    send.done = 0;
    round_trip(&send, &back, &wire);
    assert_null(strstr(wire, "done"));
    assert_int_equal(back.done, 0);
    mc_envelope_clear(&back);
    free(wire);
    assert_int_equal(
        decode_text(&back, "{\"type\":\"websocket.send\",\"text\":\"x\",\"done\":false}"), 0);
    assert_int_equal(back.done, 0);
    mc_envelope_clear(&back);
    assert_int_equal(decode_text(&back, "{\"type\":\"websocket.send\",\"text\":\"x\",\"done\":1}"),
                     MC_EINVAL);
    /* A type that answers nothing ignores the key. */
    assert_int_equal(
        decode_text(&back, "{\"type\":\"websocket.accept\",\"done\":true,"
                           "\"scope\":{\"user_id\":1,\"username\":\"a\",\"is_staff\":false}}"),
        0);
    assert_int_equal(back.done, 0);
    mc_envelope_clear(&back);
}

/* What mc_envelope_string_len says a text costs is what encoding it adds. */
static void a_text_s_cost_is_what_it_takes_encoded(void **state)
{
    (void)state;
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    const struct {
        const char *s;
        size_t n;
    } texts[] = {{"", 0},
                 {"plain text", 10},
                 {"\"quoted\\", 9},
                 {"\x01\t\n\x1f\x7f", 5},
                 {all, sizeof(all)}};
    mc_envelope_t empty = {.type = MC_ENV_WS_SEND, .body = "", .body_len = 0};
    char *out;
    size_t base;
    assert_int_equal(mc_envelope_encode(&empty, &out, &base), 0);
    free(out);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        mc_envelope_t env = {.type = MC_ENV_WS_SEND, .body = texts[i].s, .body_len = texts[i].n};
        size_t len;
        assert_int_equal(mc_envelope_encode(&env, &out, &len), 0);
        free(out);
        assert_int_equal(mc_envelope_string_len(texts[i].s, texts[i].n), len - base + 2);
    }
    /* A control character costs six bytes, a quote two, a letter one. */
    assert_int_equal(mc_envelope_string_len("\x01\"a", 3), 2 + 6 + 2 + 1);
}

static void type_names_are_the_asgi_names(void **state)
{
    (void)state;
    assert_string_equal(mc_envelope_type_name(MC_ENV_HTTP_REQUEST), "http.request");
    assert_string_equal(mc_envelope_type_name(MC_ENV_WS_DISCONNECT), "websocket.disconnect");
    assert_string_equal(mc_envelope_type_name((mc_envelope_type_t)99), "unknown");
}

/* A body read a word at a time: any byte anywhere among plain ones, and
 * runs of escapes before plain bytes, come back as they went. */
static void a_body_comes_back_whatever_its_bytes_and_their_places(void **state)
{
    (void)state;
    const char special[] = {'\0', '"', '\\', '\x01', '\n', '\x7f', '\xc3', '/'};
    char body[64];
    for (size_t len = 0; len < 40; len++) {
        for (size_t at = 0; at <= len; at++) {
            for (size_t k = 0; k < sizeof(special); k++) {
                for (size_t j = 0; j < len; j++)
                    body[j] = j < at / 2 ? '"' : (char)('a' + j % 26);
                if (at < len)
                    body[at] = special[k];
                mc_envelope_t env = {.type = MC_ENV_WS_SEND, .body = body, .body_len = len}, back;
                char *wire;
                round_trip(&env, &back, &wire);
                assert_int_equal(back.body_len, len);
                assert_memory_equal(back.body, body, len);
                assert_int_equal(back.body[len], '\0');
                mc_envelope_clear(&back);
                free(wire);
            }
        }
    }
}

/* Whole numbers are summed digit by digit when short, and read by strtod
 * otherwise: every spelling gives what strtod gives. */
static void numbers_read_as_strtod_reads_them(void **state)
{
    (void)state;
    const char *spellings[] = {"0",
                               "-0",
                               "7",
                               "1000",
                               "1e3",
                               "10E2",
                               "1000.0",
                               "1.0e3",
                               "1e+3",
                               "123456789012345",
                               "999999999999999",
                               "1234567890123456",
                               "9007199254740992",
                               "9007199254740993",
                               "4.2e1"};
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text),
                 "{\"type\":\"websocket.accept\",\"scope\":{\"user_id\":%s,"
                 "\"username\":\"a\",\"is_staff\":false}}",
                 spellings[i]);
        mc_envelope_t env;
        assert_int_equal(decode_text(&env, text), 0);
        assert_int_equal(env.scope.user_id, (int64_t)strtod(spellings[i], NULL));
        mc_envelope_clear(&env);
    }
    mc_envelope_t env;
    assert_int_equal(decode_text(&env, "{\"type\":\"websocket.close\",\"code\":4001}"), 0);
    assert_int_equal(env.code, 4001);
    mc_envelope_clear(&env);
    assert_int_equal(decode_text(&env, "{\"type\":\"websocket.close\",\"code\":4001.5}"),
                     MC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_read_as_strtod_reads_them),
        cmocka_unit_test(a_body_comes_back_whatever_its_bytes_and_their_places),
        cmocka_unit_test(http_request_round_trips),
        cmocka_unit_test(body_is_taken_by_length_not_by_nul),
        cmocka_unit_test(a_body_with_a_nul_round_trips),
        cmocka_unit_test(an_escaped_nul_in_a_text_is_kept),
        cmocka_unit_test(a_nul_outside_the_body_is_refused),
        cmocka_unit_test(websocket_envelopes_round_trip),
        cmocka_unit_test(optional_fields_default),
        cmocka_unit_test(unknown_and_repeated_keys),
        cmocka_unit_test(malformed_envelopes_are_refused),
        cmocka_unit_test(limits_are_enforced),
        cmocka_unit_test(scheme_and_done_round_trip),
        cmocka_unit_test(a_text_s_cost_is_what_it_takes_encoded),
        cmocka_unit_test(type_names_are_the_asgi_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
