/* The chat's WebSocket commands (worker/consumer.c) in a world
 * (tests/support/world.h): rooms, messages, edits, whispers, presence,
 * replays, permissions, bad input and rate limits. What the parser and the
 * reply encoders decide (control characters, lists cut to fit) is tested
 * in command_test.c, a send the store refuses in port_test.c. */
#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "tests/support/world.h"
#include "worker/command.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void two_sockets_chat_in_a_room(void **state)
{
    ts_world_t *w = *state;
    char ca[256], cb[256];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_login(w, "bob", "pw-bob", cb, sizeof(cb));
    ts_sock_t a, b;
    ts_ws_connect(w, ca, "ifc.t!1", &a);
    ts_ws_connect(w, cb, "ifc.u!1", &b);
    assert_string_equal(a.scope.username, "ann");

    ts_ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text(w, a.channel,
                   "{\"join\":\"1\",\"title\":\"Lobby\",\"history\":[],\"members\":[\"ann\"]}");
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":\"1\"}");
    ts_expect_text_has(
        w, b.channel,
        "{\"join\":\"1\",\"title\":\"Lobby\",\"history\":[],\"members\":[\"ann\",\"bob\"]}");
    ts_expect_text(w, a.channel,
                   "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":4}");
    assert_false(ts_pending(w, b.channel)); /* no notice of one's own entry */

    ts_ws_send(w, &a,
               "{\"command\":\"send\",\"room\":1,\"message\":\"hello\",\"client_id\":\"c1\"}");
    char *own = ts_next_text(w, a.channel);
    char *other = ts_next_text(w, b.channel);
    assert_non_null(strstr(own, "\"own\":true"));
    assert_null(strstr(other, "\"own\""));
    assert_non_null(strstr(other, "{\"room\":\"1\",\"message\":\"hello\",\"username\":\"ann\","
                                  "\"msg_type\":0,\"id\":1,\"ts\":"));
    assert_false(ts_pending(w, a.channel)); /* the sender is skipped in the room copy */
    free(own);
    free(other);

    /* A replayed send is stored once and delivered once. */
    ts_ws_send(w, &a,
               "{\"command\":\"send\",\"room\":1,\"message\":\"hello\",\"client_id\":\"c1\"}");
    assert_false(ts_pending(w, a.channel));
    assert_false(ts_pending(w, b.channel));
    ts_ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"hi ann\"}");
    /* Ids increase, with gaps allowed. */
    ts_expect_text_has(w, a.channel,
                       "\"message\":\"hi ann\",\"username\":\"bob\",\"msg_type\":0,\"id\":");
    ts_expect_text_has(w, b.channel, "\"own\":true");

    ts_ws_send(w, &b, "{\"command\":\"who\",\"room\":1}");
    ts_expect_text(w, b.channel, "{\"who\":\"1\",\"members\":[\"ann\",\"bob\"]}");

    /* As in the example, the leaver hears its own leave notice first. */
    ts_ws_send(w, &b, "{\"command\":\"leave\",\"room\":1}");
    ts_expect_text(w, b.channel,
                   "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":5}");
    ts_expect_text(w, b.channel, "{\"leave\":\"1\"}");
    ts_expect_text(w, a.channel,
                   "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":5}");
    ts_ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"x\"}");
    ts_expect_text(w, b.channel,
                   "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"1\",\"command\":\"send\"}");

    /* History on rejoin, and since. */
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1,\"since\":1}");
    ts_expect_text_has(w, b.channel, "\"history\":[{\"room\":\"1\",\"message\":\"hi ann\"");
    ts_expect_text_has(w, a.channel, "\"msg_type\":4");
    ts_ws_send(w, &b, "{\"command\":\"history\",\"room\":1,\"before\":2}");
    ts_expect_text_has(w, b.channel,
                       "{\"history\":\"1\",\"messages\":[{\"room\":\"1\",\"message\":\"hello\"");

    /* Disconnecting leaves with a notice. */
    ts_ws_disconnect(w, &b);
    ts_expect_text(w, a.channel,
                   "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":5}");
    ts_ws_send(w, &a, "{\"command\":\"who\",\"room\":1}");
    ts_expect_text(w, a.channel, "{\"who\":\"1\",\"members\":[\"ann\"]}");
}

/* Without a client_id, the interface's id of the envelope tells a send
 * handled again (its first worker died before acknowledging it) from the
 * same text sent again. */
static void a_send_handled_twice_is_stored_once_without_a_client_id(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    const char *send = "{\"command\":\"send\",\"room\":1,\"message\":\"once\"}";
    ts_ws_send_named(w, &a, send, "ifc.host.12.0a0b0c0d-7");
    ts_expect_text_has(w, a.channel, "\"message\":\"once\"");
    ts_expect_text_has(w, b.channel, "\"message\":\"once\"");
    ts_ws_send_named(w, &a, send, "ifc.host.12.0a0b0c0d-7");
    assert_false(ts_pending(w, a.channel));
    assert_false(ts_pending(w, b.channel));
    /* another envelope: the person sent it again */
    ts_ws_send_named(w, &a, send, "ifc.host.12.0a0b0c0d-8");
    ts_expect_text_has(w, b.channel, "\"message\":\"once\"");
    /* a long process name: what makes the id unique is at its end */
    char id[200];
    memset(id, 'h', sizeof(id));
    memcpy(id, "ifc.", 4);
    snprintf(id + 120, sizeof(id) - 120, ".12.0a0b0c0d-9");
    ts_ws_send_named(w, &a, send, id);
    ts_expect_text_has(w, b.channel, "\"message\":\"once\"");
    ts_ws_send_named(w, &a, send, id);
    id[strlen(id) - 1] = '1'; /* ...-1, not ...-9 */
    ts_ws_send_named(w, &a, send, id);
    ts_expect_text_has(w, b.channel, "\"message\":\"once\"");
    assert_false(ts_pending(w, b.channel));
    ts_ws_send(w, &b, "{\"command\":\"history\",\"room\":1}");
    char *h = ts_next_text(w, b.channel);
    size_t n = 0;
    for (const char *at = h; (at = strstr(at, "\"message\":\"once\"")); at++)
        n++;
    assert_int_equal(n, 4); /* -7, -8, the long -9 and the long -1 */
    free(h);
}

/* A message sent again (its client_id: a retry, or a replayed envelope)
 * is published again with its id, which its room's members had: it
 * reaches nobody twice, not even a socket that joined in between and has
 * it in its join's history. */
static void a_message_sent_again_reaches_nobody_twice(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b, c;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    const char *send = "{\"command\":\"send\",\"room\":1,\"message\":\"once\",\"client_id\":\"k\"}";
    ts_ws_send(w, &a, send);
    ts_expect_text_has(w, a.channel, "\"message\":\"once\"");
    ts_expect_text_has(w, b.channel, "\"message\":\"once\"");
    char cc[256];
    ts_log_in_and_connect(w, "bob", "ifc.v!1", cc, sizeof(cc), &c);
    ts_ws_send(w, &c, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, c.channel, "\"history\":[{\"room\":\"1\",\"message\":\"once\"");
    ts_ws_send(w, &a, send);
    assert_false(ts_pending(w, a.channel));
    assert_false(ts_pending(w, b.channel));
    assert_false(ts_pending(w, c.channel));
    ts_ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"next\"}");
    ts_expect_text_has(w, c.channel, "\"message\":\"next\"");
}

static void a_user_with_two_sockets_counts_once(void **state)
{
    ts_world_t *w = *state;
    char ca[256], cb[256];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_login(w, "bob", "pw-bob", cb, sizeof(cb));
    ts_sock_t a1, a2, b;
    ts_ws_connect(w, ca, "ifc.t!1", &a1);
    ts_ws_connect(w, ca, "ifc.u!2", &a2);
    ts_ws_connect(w, cb, "ifc.u!3", &b);
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, b.channel, "{\"join\":\"1\"");
    ts_ws_send(w, &a1, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, a1.channel, "\"members\":[\"ann\",\"bob\"]");
    ts_expect_text(w, b.channel,
                   "{\"room\":\"1\",\"message\":null,\"username\":\"ann\",\"msg_type\":4}");
    /* The second socket: no second arrival, and ann is listed once. */
    ts_ws_send(w, &a2, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, a2.channel, "\"members\":[\"ann\",\"bob\"]}");
    ts_ws_send(w, &a1, "{\"command\":\"join\",\"room\":1}"); /* again: nothing new */
    ts_expect_text_has(w, a1.channel, "{\"join\":\"1\"");
    assert_false(ts_pending(w, b.channel));
    assert_false(ts_pending(w, a1.channel));
    ts_ws_send(w, &b, "{\"command\":\"who\",\"room\":\"1\"}");
    ts_expect_text(w, b.channel, "{\"who\":\"1\",\"members\":[\"ann\",\"bob\"]}");
    /* One socket leaves: ann is still there, nobody hears of it. */
    ts_ws_send(w, &a1, "{\"command\":\"leave\",\"room\":1}");
    ts_expect_text(w, a1.channel, "{\"leave\":\"1\"}");
    assert_false(ts_pending(w, b.channel));
    assert_false(ts_pending(w, a2.channel));
    ts_ws_send(w, &b, "{\"command\":\"who\",\"room\":1}");
    ts_expect_text(w, b.channel, "{\"who\":\"1\",\"members\":[\"ann\",\"bob\"]}");
    /* The last one goes: now ann has left. */
    ts_ws_disconnect(w, &a2);
    ts_expect_text(w, b.channel,
                   "{\"room\":\"1\",\"message\":null,\"username\":\"ann\",\"msg_type\":5}");
    assert_false(ts_pending(w, b.channel));
    ts_ws_send(w, &b, "{\"command\":\"who\",\"room\":1}");
    ts_expect_text(w, b.channel, "{\"who\":\"1\",\"members\":[\"bob\"]}");
    ts_ws_disconnect(w, &a1); /* in no room: nothing to say */
    assert_false(ts_pending(w, b.channel));
}

static void staff_only_rooms_are_refused_at_join_and_send(void **state)
{
    ts_world_t *w = *state;
    char ca[256], cs[256];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_login(w, "sue", "pw-sue", cs, sizeof(cs));
    ts_sock_t a, s;
    ts_ws_connect(w, ca, "ifc.t!1", &a);
    ts_ws_connect(w, cs, "ifc.t!2", &s);
    ts_ws_send(w, &a, "{\"command\":\"join\",\"room\":2}");
    ts_expect_text(w, a.channel,
                   "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"2\",\"command\":\"join\"}");
    ts_ws_send(w, &s, "{\"command\":\"join\",\"room\":2}");
    ts_expect_text_has(w, s.channel, "{\"join\":\"2\",\"title\":\"Staff\"");
    /* A socket that claims the group without the right is refused at send. */
    ts_world_group_add(w, "room-2", a.channel);
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":2,\"message\":\"sneaky\"}");
    ts_expect_text(w, a.channel,
                   "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"2\",\"command\":\"send\"}");
    assert_false(ts_pending(w, s.channel));
}

static void bad_input_is_answered_and_the_socket_stays(void **state)
{
    ts_world_t *w = *state;
    char ca[256];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_sock_t a;
    ts_ws_connect(w, ca, "ifc.t!1", &a);
    struct {
        const char *in, *out;
    } cases[] = {
        {"not json", "{\"error\":\"BAD_REQUEST\"}"},
        {"[1]", "{\"error\":\"BAD_REQUEST\"}"},
        {"{\"command\":\"fly\"}", "{\"error\":\"UNKNOWN_COMMAND\"}"},
        {"{\"command\":\"join\",\"room\":\"abc\"}",
         "{\"error\":\"ROOM_INVALID\",\"command\":\"join\"}"},
        {"{\"command\":\"join\",\"room\":99}",
         "{\"error\":\"ROOM_INVALID\",\"room\":\"99\",\"command\":\"join\"}"},
        {"{\"command\":\"send\",\"room\":99,\"message\":\"x\"}",
         "{\"error\":\"ROOM_INVALID\",\"room\":\"99\",\"command\":\"send\"}"},
        {"{\"command\":\"send\",\"room\":1,\"message\":\"x\"}",
         "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"1\",\"command\":\"send\"}"},
        {"{\"command\":\"send\",\"room\":1,\"message\":\"\"}",
         "{\"error\":\"MESSAGE_EMPTY\",\"room\":\"1\",\"command\":\"send\"}"},
        {"{\"command\":\"send\",\"room\":1}",
         "{\"error\":\"BAD_REQUEST\",\"room\":\"1\",\"command\":\"send\"}"},
        {"{\"command\":\"edit\",\"room\":1,\"id\":77,\"message\":\"x\"}",
         "{\"error\":\"MESSAGE_INVALID\",\"room\":\"1\",\"command\":\"edit\"}"},
        {"{\"command\":\"whisper\",\"to\":\"nobody\",\"message\":\"x\"}",
         "{\"error\":\"USER_INVALID\",\"command\":\"whisper\"}"},
        {"{\"command\":\"leave\",\"room\":99}",
         "{\"error\":\"ROOM_INVALID\",\"room\":\"99\",\"command\":\"leave\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ts_ws_send(w, &a, cases[i].in);
        ts_expect_text(w, a.channel, cases[i].out);
    }
    /* A message over the limit. */
    char *big = malloc(5000);
    int n = sprintf(big, "{\"command\":\"send\",\"room\":1,\"message\":\"");
    memset(big + n, 'x', 4097);
    strcpy(big + n + 4097, "\"}");
    ts_ws_send(w, &a, big);
    ts_expect_text(w, a.channel,
                   "{\"error\":\"MESSAGE_TOO_LONG\",\"room\":\"1\",\"command\":\"send\"}");
    free(big);
    /* The socket still works. */
    ts_ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, a.channel, "{\"join\":\"1\"");
}

static void edits_deletes_and_whispers(void **state)
{
    ts_world_t *w = *state;
    char ca[256], cb[256], cs[256];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_login(w, "bob", "pw-bob", cb, sizeof(cb));
    ts_login(w, "sue", "pw-sue", cs, sizeof(cs));
    ts_sock_t a, b, s;
    ts_ws_connect(w, ca, "ifc.t!1", &a);
    ts_ws_connect(w, cb, "ifc.t!2", &b);
    ts_ws_connect(w, cs, "ifc.t!3", &s);
    w->app.port.notify_enter_leave = 0;
    ts_ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"typo\"}");
    ts_expect_text_has(w, a.channel, "{\"join\"");
    ts_expect_text_has(w, b.channel, "{\"join\"");
    ts_expect_text_has(w, a.channel, "\"own\":true");
    ts_expect_text_has(w, b.channel, "\"message\":\"typo\"");
    ts_ws_send(w, &b, "{\"command\":\"edit\",\"room\":1,\"id\":1,\"message\":\"mine now\"}");
    ts_expect_text(w, b.channel, "{\"error\":\"NOT_ALLOWED\",\"room\":\"1\",\"command\":\"edit\"}");
    ts_ws_send(w, &a, "{\"command\":\"edit\",\"room\":1,\"id\":1,\"message\":\"fixed\"}");
    ts_expect_text_has(w, a.channel, "{\"edited\":1,\"room\":\"1\",\"message\":\"fixed\",\"ts\":");
    ts_expect_text_has(w, b.channel, "{\"edited\":1,");
    ts_ws_send(w, &s, "{\"command\":\"delete\",\"room\":1,\"id\":1}");
    ts_expect_text(w, s.channel, "{\"deleted\":1,\"room\":\"1\"}");
    ts_expect_text(w, a.channel, "{\"deleted\":1,\"room\":\"1\"}");
    ts_expect_text(w, b.channel, "{\"deleted\":1,\"room\":\"1\"}");
    /* Deleted is gone: from the database, and from history. */
    wrk_message_t m;
    assert_int_equal(wrk_store_message_get(w->app.store, 1, &m), 0);
    assert_int_equal(m.deleted, 1);
    assert_string_equal(m.body, "");
    wrk_message_clear(&m);
    ts_ws_send(w, &a, "{\"command\":\"edit\",\"room\":1,\"id\":1,\"message\":\"again\"}");
    ts_expect_text(w, a.channel,
                   "{\"error\":\"MESSAGE_INVALID\",\"room\":\"1\",\"command\":\"edit\"}");
    /* Deleting it again is done already: said to the deleter only. */
    ts_ws_send(w, &s, "{\"command\":\"delete\",\"room\":1,\"id\":1}");
    ts_expect_text(w, s.channel, "{\"deleted\":1,\"room\":\"1\"}");
    assert_false(ts_pending(w, a.channel));
    assert_false(ts_pending(w, b.channel));
    /* Staff edit others' messages; history shows the edited text and when. */
    ts_ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"bob says\"}");
    ts_expect_text_has(w, b.channel, "\"id\":2,");
    ts_expect_text_has(w, a.channel, "\"id\":2,");
    ts_ws_send(w, &a, "{\"command\":\"delete\",\"room\":1,\"id\":2}");
    ts_expect_text(w, a.channel,
                   "{\"error\":\"NOT_ALLOWED\",\"room\":\"1\",\"command\":\"delete\"}");
    ts_ws_send(w, &s, "{\"command\":\"edit\",\"room\":1,\"id\":2,\"message\":\"moderated\"}");
    ts_expect_text_has(w, s.channel, "{\"edited\":2,\"room\":\"1\",\"message\":\"moderated\"");
    ts_expect_text_has(w, a.channel, "{\"edited\":2,");
    ts_expect_text_has(w, b.channel, "{\"edited\":2,");
    /* An id of another room is no message of this one. */
    ts_ws_send(w, &s, "{\"command\":\"join\",\"room\":2}");
    ts_expect_text_has(w, s.channel, "{\"join\":\"2\"");
    ts_ws_send(w, &s, "{\"command\":\"delete\",\"room\":2,\"id\":2}");
    ts_expect_text(w, s.channel,
                   "{\"error\":\"MESSAGE_INVALID\",\"room\":\"2\",\"command\":\"delete\"}");
    ts_ws_send(w, &b, "{\"command\":\"history\",\"room\":1}");
    char *h = ts_next_text(w, b.channel);
    assert_non_null(strstr(h, "{\"history\":\"1\",\"messages\":[{\"room\":\"1\","
                              "\"message\":\"moderated\",\"username\":\"bob\",\"msg_type\":0,"
                              "\"id\":2,\"ts\":"));
    assert_non_null(strstr(h, "\"edited\":"));
    assert_null(strstr(h, "\"id\":1,")); /* the deleted one is left out */
    free(h);
    ts_ws_send(w, &a, "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"psst\"}");
    ts_expect_text_has(
        w, b.channel,
        "{\"whisper\":1,\"from\":\"ann\",\"to\":\"bob\",\"message\":\"psst\",\"ts\":");
    ts_expect_text_has(w, a.channel, "{\"whisper\":1,\"from\":\"ann\",\"to\":\"bob\"");
    assert_false(ts_pending(w, s.channel));
    /* Every socket of both users; ids come from the database. */
    ts_sock_t b2;
    ts_ws_connect(w, cb, "ifc.u!9", &b2);
    ts_ws_send(w, &b2, "{\"command\":\"whisper\",\"to\":\"ann\",\"message\":\"hi\"}");
    ts_expect_text_has(w, a.channel, "{\"whisper\":2,\"from\":\"bob\",\"to\":\"ann\"");
    ts_expect_text_has(w, b.channel, "{\"whisper\":2,");
    ts_expect_text_has(w, b2.channel, "{\"whisper\":2,");
    ts_ws_send(w, &s, "{\"command\":\"whisper\",\"to\":\"ann\",\"message\":\"staff\"}");
    ts_expect_text_has(w, a.channel, "{\"whisper\":3,");
    ts_expect_text_has(w, s.channel, "{\"whisper\":3,");
    /* Stored: a socket catches up with those sent since an id, its own only. */
    ts_ws_send(w, &b2, "{\"command\":\"whispers\",\"since\":1}");
    char *t = ts_next_text(w, b2.channel);
    assert_non_null(strstr(t, "{\"whispers\":[{\"whisper\":2,\"from\":\"bob\",\"to\":\"ann\","
                              "\"message\":\"hi\",\"ts\":"));
    assert_null(strstr(t, "\"whisper\":3"));
    assert_null(strstr(t, "\"whisper\":1,"));
    free(t);
    ts_ws_send(w, &a, "{\"command\":\"whispers\"}");
    t = ts_next_text(w, a.channel);
    assert_non_null(strstr(t, "\"whisper\":1,"));
    assert_non_null(strstr(t, "\"whisper\":3,"));
    free(t);
    /* A deactivated user is no one to whisper to. */
    ts_ctl(w, "", "user deactivate bob");
    ts_ws_send(w, &a, "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"x\"}");
    ts_expect_text(w, a.channel, "{\"error\":\"USER_INVALID\",\"command\":\"whisper\"}");
}

/* How many times part occurs in the stored text of every message of room 1
 * (edited text included). */
static int stored_in_lobby(ts_world_t *w, const char *part)
{
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(w->app.store, 1, 100, &l), 0);
    int n = 0;
    for (size_t i = 0; i < l.n; i++)
        n += strstr(l.items[i].body, part) != NULL;
    wrk_message_list_clear(&l);
    return n;
}

/* An edit or a deletion handled twice (its worker died before it was
 * acknowledged, so the envelope is replayed with the same id), or sent
 * again by a client that did not see it take effect (a new envelope, the
 * same client_id): the room hears of it once, and the sender hears of it
 * each time, with its client_id, so that it can stop sending. */
static void an_edit_or_deletion_handled_twice_reaches_the_room_once(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"draft\"}");
    ts_expect_text_has(w, a.channel, "\"own\":true");
    ts_expect_text_has(w, b.channel, "\"message\":\"draft\"");

    const char *edit =
        "{\"command\":\"edit\",\"room\":1,\"id\":1,\"message\":\"final\",\"client_id\":\"e1\"}";
    ts_ws_send_named(w, &a, edit, "ifc.h.1.ab-1");
    char *own = ts_next_text(w, a.channel);
    assert_non_null(strstr(own, "{\"edited\":1,\"room\":\"1\",\"message\":\"final\",\"ts\":"));
    assert_non_null(strstr(own, ",\"client_id\":\"e1\"}"));
    free(own);
    char *other = ts_next_text(w, b.channel);
    assert_non_null(strstr(other, "{\"edited\":1,\"room\":\"1\",\"message\":\"final\",\"ts\":"));
    assert_null(strstr(other, "client_id"));
    free(other);
    ts_ws_send_named(w, &a, edit, "ifc.h.1.ab-1"); /* the replay */
    ts_expect_text_has(w, a.channel, ",\"client_id\":\"e1\"}");
    assert_false(ts_pending(w, b.channel));
    ts_ws_send_named(w, &a, edit, "ifc.h.1.ab-2"); /* the page sends it again */
    ts_expect_text_has(w, a.channel, ",\"client_id\":\"e1\"}");
    assert_false(ts_pending(w, b.channel));
    assert_int_equal(stored_in_lobby(w, "final"), 1);

    /* Without a client_id the envelope's id tells a replay from an edit
     * made again. */
    const char *plain = "{\"command\":\"edit\",\"room\":1,\"id\":1,\"message\":\"plain\"}";
    ts_ws_send_named(w, &a, plain, "ifc.h.1.ab-3");
    ts_expect_text_has(w, b.channel, "\"message\":\"plain\"");
    ts_ws_send_named(w, &a, plain, "ifc.h.1.ab-3");
    assert_false(ts_pending(w, b.channel));
    ts_ws_send_named(w, &a, plain, "ifc.h.1.ab-4");
    ts_expect_text_has(w, b.channel, "\"message\":\"plain\"");
    for (int i = 0; i < 3; i++)
        ts_expect_text_has(w, a.channel, "\"message\":\"plain\"");
    assert_false(ts_pending(w, a.channel));

    const char *del = "{\"command\":\"delete\",\"room\":1,\"id\":1,\"client_id\":\"d1\"}";
    ts_ws_send_named(w, &a, del, "ifc.h.1.ab-5");
    ts_expect_text(w, a.channel, "{\"deleted\":1,\"room\":\"1\",\"client_id\":\"d1\"}");
    ts_expect_text(w, b.channel, "{\"deleted\":1,\"room\":\"1\"}");
    ts_ws_send_named(w, &a, del, "ifc.h.1.ab-5");
    ts_ws_send_named(w, &a, del, "ifc.h.1.ab-6");
    ts_expect_text(w, a.channel, "{\"deleted\":1,\"room\":\"1\",\"client_id\":\"d1\"}");
    ts_expect_text(w, a.channel, "{\"deleted\":1,\"room\":\"1\",\"client_id\":\"d1\"}");
    assert_false(ts_pending(w, b.channel));
    /* An edit of it now has nothing to edit, and says which edit. */
    ts_ws_send(w, &a, edit);
    ts_expect_text(w, a.channel,
                   "{\"error\":\"MESSAGE_INVALID\",\"room\":\"1\",\"command\":"
                   "\"edit\",\"client_id\":\"e1\"}");
    assert_false(ts_pending(w, b.channel));
}

/* A whisper handled twice (a replayed envelope) or sent again with its
 * client_id is stored once and reaches every other socket of both users
 * once; the socket that sent it hears of it each time, with the client_id.
 * Without a client_id, the envelope's id names it. */
static void a_whisper_handled_twice_is_stored_and_delivered_once(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, a2, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    char cookie[256];
    ts_log_in_and_connect(w, "ann", "ifc.v!7", cookie, sizeof(cookie), &a2);
    const char *psst =
        "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"psst\",\"client_id\":\"w1\"}";
    ts_ws_send_named(w, &a, psst, "ifc.h.1.ab-1");
    ts_expect_text_has(w, a.channel, "\"message\":\"psst\",\"ts\":");
    ts_expect_text_has(w, b.channel, "{\"whisper\":1,\"from\":\"ann\",\"to\":\"bob\"");
    ts_expect_text_has(w, a2.channel, "{\"whisper\":1,\"from\":\"ann\",\"to\":\"bob\"");
    ts_ws_send_named(w, &a, psst, "ifc.h.1.ab-1"); /* the replay */
    ts_ws_send_named(w, &a, psst, "ifc.h.1.ab-2"); /* the page sends it again */
    for (int i = 0; i < 2; i++) {
        char *own = ts_next_text(w, a.channel);
        assert_non_null(strstr(own, "{\"whisper\":1,\"from\":\"ann\",\"to\":\"bob\""));
        assert_non_null(strstr(own, ",\"client_id\":\"w1\"}"));
        free(own);
    }
    assert_false(ts_pending(w, a.channel));
    assert_false(ts_pending(w, b.channel));
    assert_false(ts_pending(w, a2.channel));
    /* The same client_id for another recipient is that whisper still. */
    ts_ws_send_named(w, &a,
                     "{\"command\":\"whisper\",\"to\":\"sue\",\"message\":\"other\","
                     "\"client_id\":\"w1\"}",
                     "ifc.h.1.ab-3");
    ts_expect_text_has(w, a.channel,
                       "{\"whisper\":1,\"from\":\"ann\",\"to\":\"bob\",\"message\":\"psst\"");
    assert_false(ts_pending(w, b.channel));

    const char *plain = "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"plain\"}";
    ts_ws_send_named(w, &a, plain, "ifc.h.1.ab-4");
    ts_ws_send_named(w, &a, plain, "ifc.h.1.ab-4");
    ts_expect_text_has(w, b.channel, "\"message\":\"plain\"");
    assert_false(ts_pending(w, b.channel));
    ts_ws_send_named(w, &a, plain, "ifc.h.1.ab-5"); /* another envelope: said again */
    ts_expect_text_has(w, b.channel, "\"message\":\"plain\"");

    wrk_whisper_list_t l;
    assert_int_equal(wrk_store_whispers_since(w->app.store, b.scope.user_id, 0, 10, &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.items[0].body, "psst");
    wrk_whisper_list_clear(&l);
}

/* An error names the command it answers by its client_id, whoever finds
 * the fault: the parser, the rate limit, the permission check. */
static void errors_name_the_client_id_of_their_command(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    ts_ws_send(w, &a,
               "{\"command\":\"send\",\"room\":1,\"message\":\"mine\",\"client_id\":\"s1\"}");
    ts_expect_text_has(w, a.channel, "\"own\":true");
    ts_expect_text_has(w, b.channel, "\"message\":\"mine\"");
    ts_ws_send(w, &b,
               "{\"command\":\"edit\",\"room\":1,\"id\":1,\"message\":\"x\",\"client_id\":\"b1\"}");
    ts_expect_text(w, b.channel,
                   "{\"error\":\"NOT_ALLOWED\",\"room\":\"1\",\"command\":\"edit\","
                   "\"client_id\":\"b1\"}");
    ts_ws_send(w, &b, "{\"command\":\"delete\",\"room\":1,\"id\":1,\"client_id\":\"b2\"}");
    ts_expect_text(w, b.channel,
                   "{\"error\":\"NOT_ALLOWED\",\"room\":\"1\",\"command\":"
                   "\"delete\",\"client_id\":\"b2\"}");
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\" \",\"client_id\":\"s2\"}");
    ts_expect_text(w, a.channel,
                   "{\"error\":\"MESSAGE_EMPTY\",\"room\":\"1\",\"command\":"
                   "\"send\",\"client_id\":\"s2\"}");
    ts_ws_send(
        w, &a,
        "{\"command\":\"whisper\",\"to\":\"nobody\",\"message\":\"x\",\"client_id\":\"w1\"}");
    ts_expect_text(w, a.channel,
                   "{\"error\":\"USER_INVALID\",\"command\":\"whisper\",\"client_id\":\"w1\"}");
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":2,\"message\":\"x\",\"client_id\":\"s3\"}");
    ts_expect_text(w, a.channel,
                   "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"2\",\"command\":"
                   "\"send\",\"client_id\":\"s3\"}");
    /* Over the rate (ann used 3 of her tokens above): the refusal names
     * its message. */
    w->app.cfg.rate_burst = 3;
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"x\",\"client_id\":\"r1\"}");
    ts_expect_text(w, a.channel,
                   "{\"error\":\"RATE_LIMITED\",\"room\":\"1\",\"command\":"
                   "\"send\",\"client_id\":\"r1\"}");
    assert_false(ts_pending(w, b.channel));
}

static void rate_limits_refuse_then_close(void **state)
{
    ts_world_t *w = *state;
    w->app.cfg.rate_burst = 3;
    w->app.cfg.rate_close_after = 2;
    w->app.cfg.rate_connect_burst = 2;
    w->app.port.notify_enter_leave = 0;
    char ca[256], cb[256];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_login(w, "bob", "pw-bob", cb, sizeof(cb));
    ts_sock_t a, b, a2;
    ts_ws_connect(w, ca, "ifc.t!1", &a);
    ts_ws_connect(w, cb, "ifc.t!2", &b);
    /* A user's third socket is refused before any accept; another user of
     * the same address is not held up by it. */
    ts_ws_connect(w, ca, "ifc.t!3", &a2);
    ts_ws_open(w, ca, "ifc.t!4");
    ts_expect_close(w, "ifc.t!4", 1008);
    assert_false(ts_pending(w, "ifc.t!4"));

    ts_ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, a.channel, "{\"join\"");
    ts_expect_text_has(w, b.channel, "{\"join\"");
    for (int i = 0; i < 3; i++) {
        ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"hi\"}");
        ts_expect_text_has(w, a.channel, "\"own\":true");
        ts_expect_text_has(w, b.channel, "\"message\":\"hi\"");
    }
    /* Over the burst: refused, nothing stored or sent to the room; joins
     * and who are not counted. */
    ts_ws_send(w, &a, "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"x\"}");
    ts_expect_text(w, a.channel, "{\"error\":\"RATE_LIMITED\",\"command\":\"whisper\"}");
    ts_ws_send(w, &a, "{\"command\":\"who\",\"room\":1}");
    ts_expect_text_has(w, a.channel, "{\"who\"");
    assert_false(ts_pending(w, b.channel));
    /* bob has his own bucket. */
    ts_ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"bob\"}");
    ts_expect_text_has(w, b.channel, "\"own\":true");
    ts_expect_text_has(w, a.channel, "\"message\":\"bob\"");
    /* The second refusal in a row closes the socket with 1008. */
    ts_ws_send(w, &a, "{\"command\":\"send\",\"room\":1,\"message\":\"more\"}");
    ts_expect_text(w, a.channel,
                   "{\"error\":\"RATE_LIMITED\",\"room\":\"1\",\"command\":\"send\"}");
    ts_expect_close(w, a.channel, 1008);
    assert_false(ts_pending(w, b.channel));
    wrk_message_list_t l;
    assert_int_equal(wrk_store_messages_last(w->app.store, 1, 50, &l), 0);
    assert_int_equal(l.n, 4);
    wrk_message_list_clear(&l);
}

static void a_join_that_cannot_be_answered_is_undone(void **state)
{
    ts_world_t *w = *state;
    char ca[256], cb[256];
    ts_sock_t a, b;
    ts_log_in_and_connect(w, "ann", "ifc.t!1", ca, sizeof(ca), &a);
    ts_log_in_and_connect(w, "bob", "ifc.t!2", cb, sizeof(cb), &b);
    ts_ws_send(w, &a, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, a.channel, "{\"join\":\"1\"");
    /* The join reply meets a full reply list; the error after it gets
     * through. */
    w->fake.fail_next_send = MC_EFULL;
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text(w, b.channel, "{\"error\":\"SERVER_BUSY\",\"room\":\"1\",\"command\":\"join\"}");
    assert_false(ts_pending(w, b.channel));
    assert_false(ts_pending(w, a.channel)); /* no arrival announced */
    ts_ws_send(w, &a, "{\"command\":\"who\",\"room\":1}");
    ts_expect_text(w, a.channel, "{\"who\":\"1\",\"members\":[\"ann\"]}");
    ts_ws_send(w, &b, "{\"command\":\"send\",\"room\":1,\"message\":\"hi\"}");
    ts_expect_text(w, b.channel,
                   "{\"error\":\"ROOM_ACCESS_DENIED\",\"room\":\"1\",\"command\":\"send\"}");
    /* Asked again, the join goes through. */
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, b.channel, "\"members\":[\"ann\",\"bob\"]");
    ts_expect_text(w, a.channel,
                   "{\"room\":\"1\",\"message\":null,\"username\":\"bob\",\"msg_type\":4}");
}

static void a_socket_in_as_many_rooms_as_allowed_is_refused_one_more(void **state)
{
    ts_world_t *w = *state;
    w->app.cfg.socket_rooms = 3;
    w->app.port.notify_enter_leave = 0;
    int64_t id;
    for (int i = 3; i <= 5; i++)
        assert_int_equal(wrk_store_room_add(w->app.store, "More", 0, &id), 0);
    char cb[256];
    ts_sock_t b;
    ts_log_in_and_connect(w, "bob", "ifc.t!2", cb, sizeof(cb), &b);
    for (int room = 3; room <= 5; room++) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "{\"command\":\"join\",\"room\":%d}", room);
        ts_ws_send(w, &b, cmd);
        ts_expect_text_has(w, b.channel, "{\"join\":");
    }
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text(w, b.channel,
                   "{\"error\":\"TOO_MANY_ROOMS\",\"room\":\"1\",\"command\":\"join\"}");
    ts_ws_send(w, &b, "{\"command\":\"who\",\"room\":1}");
    ts_expect_text(w, b.channel, "{\"who\":\"1\",\"members\":[]}");
    /* A room it is in already may be joined again; one left makes room. */
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":5}");
    ts_expect_text_has(w, b.channel, "{\"join\":\"5\"");
    ts_ws_send(w, &b, "{\"command\":\"leave\",\"room\":4}");
    ts_expect_text(w, b.channel, "{\"leave\":\"4\"}");
    ts_ws_send(w, &b, "{\"command\":\"join\",\"room\":1}");
    ts_expect_text_has(w, b.channel, "{\"join\":\"1\"");
    /* The default leaves the envelope's group list room to spare. */
    assert_true(WRK_SOCKET_ROOMS_DEFAULT <= WRK_SOCKET_ROOMS_MAX);
    assert_true(2 * WRK_SOCKET_ROOMS_MAX <= MC_ENVELOPE_MAX_GROUPS);
}

/* Handshakes with made-up session cookies, all from the address every
 * user here shares (one proxy, one NAT), are refused without spending a
 * quota: the real users of that address still get in. */
static void made_up_sessions_lock_nobody_out(void **state)
{
    ts_world_t *w = *state;
    w->app.cfg.rate_connect_burst = 2;
    char ca[256], cb[256], channel[32];
    ts_login(w, "ann", "pw-ann", ca, sizeof(ca));
    ts_login(w, "bob", "pw-bob", cb, sizeof(cb));
    for (int i = 0; i < 10; i++) {
        snprintf(channel, sizeof(channel), "ifc.x!%d", i);
        ts_ws_open(w, i % 2 ? "sessionid=made-up-token" : NULL, channel);
        ts_expect_close(w, channel, 1008);
    }
    ts_sock_t a, b;
    ts_ws_connect(w, ca, "ifc.t!1", &a);
    ts_ws_connect(w, cb, "ifc.t!2", &b);
}

/* Every websocket.receive is answered exactly once (the "done" mark the
 * interface counts its in-flight messages by): a chat message by its
 * sender's copy, a join by its reply, an edit or a whisper (which reach
 * the sender through a group) by the mark alone, and a replayed send,
 * whose room message went out before, by the mark alone too. */
static void every_command_is_answered_once(void **state)
{
    ts_world_t *w = *state;
    ts_sock_t a, b;
    ts_ann_and_bob_in_the_lobby(w, &a, &b);
    int before = ts_answers(w, a.channel), before_b = ts_answers(w, b.channel);
    const char *commands[] = {
        "{\"command\":\"send\",\"room\":1,\"message\":\"hi\",\"client_id\":\"c-1\"}",
        "{\"command\":\"send\",\"room\":1,\"message\":\"hi\",\"client_id\":\"c-1\"}",
        "{\"command\":\"who\",\"room\":1}",
        "{\"command\":\"whisper\",\"to\":\"bob\",\"message\":\"psst\"}",
        "{\"command\":\"history\",\"room\":1}",
        "not json",
        "{\"command\":\"join\",\"room\":99}",
        "{\"command\":\"leave\",\"room\":1}",
    };
    size_t n = sizeof(commands) / sizeof(commands[0]);
    for (size_t i = 0; i < n; i++) {
        ts_ws_send(w, &a, commands[i]);
        assert_int_equal(ts_answers(w, a.channel), before + (int)i + 1);
    }
    assert_int_equal(ts_answers(w, b.channel), before_b);
}

#define T(name) cmocka_unit_test_setup_teardown(name, ts_world_setup, ts_world_teardown)

int main(void)
{
    mc_log_init("consumer_test", MC_LOG_OFF);
    const struct CMUnitTest tests[] = {
        T(two_sockets_chat_in_a_room),
        T(a_send_handled_twice_is_stored_once_without_a_client_id),
        T(a_message_sent_again_reaches_nobody_twice),
        T(a_user_with_two_sockets_counts_once),
        T(an_edit_or_deletion_handled_twice_reaches_the_room_once),
        T(a_whisper_handled_twice_is_stored_and_delivered_once),
        T(errors_name_the_client_id_of_their_command),
        T(staff_only_rooms_are_refused_at_join_and_send),
        T(bad_input_is_answered_and_the_socket_stays),
        T(edits_deletes_and_whispers),
        T(rate_limits_refuse_then_close),
        T(made_up_sessions_lock_nobody_out),
        T(every_command_is_answered_once),
        T(a_join_that_cannot_be_answered_is_undone),
        T(a_socket_in_as_many_rooms_as_allowed_is_refused_one_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
