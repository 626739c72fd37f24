/*
 * tests/support/world.h: one worker in-process, for the tests of the
 * worker's modules (tests/worker/<module>_test.c).
 *
 * A world is a worker (wrk_app_t) on a fresh sqlite file in a temporary
 * directory, with users ann, bob (password "pw-<name>") and staff sue, and
 * the rooms Lobby (1) and Staff (2, staff only), made by the real chatctl
 * ($MC_BUILD/bin/chatctl) as an admin would. Its sink is a fake channel
 * layer that records every envelope sent, keeps group membership and fans
 * group messages out to member channels as Redis and an interface do
 * (skipping "except", adding ,"own":true for "own", delivering a named
 * send once, counting "done" marks as answers and keeping no envelope
 * that carries the mark only). Envelopes go in as an interface would send them; the
 * helpers read what came out, in order, per channel, and fail the test
 * (cmocka) when it is not what they expect.
 *
 * Use ts_world_setup and ts_world_teardown as a test's setup and teardown;
 * the test's state is the ts_world_t.
 */
#ifndef MC_TESTS_SUPPORT_WORLD_H
#define MC_TESTS_SUPPORT_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h"
#include "worker/app.h"

#define TS_WORLD_MAX_OUT 512
#define TS_WORLD_MAX_MEMBERS 256

/* The fake channel layer: what was sent, and the groups. As the real one,
 * it refuses a payload over its limit (MC_ETOOBIG). */
typedef struct ts_fake {
    struct {
        char channel[128];
        char *data; /* "" once read */
    } out[TS_WORLD_MAX_OUT];
    size_t nout, read;
    struct {
        char group[64];
        char channel[128];
        uint64_t seq; /* the last seq handed to it, or it was added after */
    } members[TS_WORLD_MAX_MEMBERS];
    size_t nmembers;
    struct {
        char key[96];
        long taken, refused;
    } buckets[16]; /* never refilled: a burst, then refusals */
    size_t nbuckets;
    char names[TS_WORLD_MAX_OUT][32]; /* the group sends named so far */
    size_t nnames;
    struct {
        char channel[128];
        int n;
    } answers[64]; /* envelopes marked "done" for each connection */
    size_t nanswers;
    int fail_next_send; /* 0, or the code the next send to one channel fails with
                           (MC_EFULL: a full reply list) */
} ts_fake_t;

typedef struct ts_world {
    char dir[64];
    char db[128];
    ts_fake_t fake;
    wrk_app_t app;
    wrk_settings_t cfg;
    const char *scheme; /* of the HTTP requests below: "https", or NULL for plain HTTP */
    const char *client; /* their client address, NULL for 10.0.0.1 */
} ts_world_t;

/* A cmocka setup: a world in *state. Argon2 is cheap, the login lockout
 * comes after 3 failures. */
int ts_world_setup(void **state);
/* Closes the worker and removes the world's directory. */
int ts_world_teardown(void **state);

/* Runs chatctl with args on the world's database, input on its stdin. */
void ts_ctl(ts_world_t *w, const char *input, const char *args);
/* Puts channel into group behind the worker's back, as a forged scope
 * would claim. */
void ts_world_group_add(ts_world_t *w, const char *group, const char *channel);
/* Takes group's membership of channel away, as Redis does for a process
 * that died. */
void ts_world_group_discard(ts_world_t *w, const char *group, const char *channel);

/* The next envelope recorded for channel, decoded (the caller clears it). */
void ts_next_for(ts_world_t *w, const char *channel, mc_envelope_t *env);
/* Whether anything unread is left for channel. */
int ts_pending(ts_world_t *w, const char *channel);
/* The next envelope for channel must be a websocket.send of want... */
void ts_expect_text(ts_world_t *w, const char *channel, const char *want);
/* ...of a text holding part... */
void ts_expect_text_has(ts_world_t *w, const char *channel, const char *part);
/* ...of any text, copied (the caller frees it)... */
char *ts_next_text(ts_world_t *w, const char *channel);
/* ...or a websocket.close with code, and the reason that code has. */
void ts_expect_close(ts_world_t *w, const char *channel, int code);
/* How many envelopes marked "done" (answers to its websocket.receives)
 * channel got so far. */
int ts_answers(ts_world_t *w, const char *channel);

/* An HTTP response as a browser sees it. */
typedef struct ts_http_reply {
    int status;
    char location[256];
    char cookies[512]; /* the Set-Cookie values, one a line */
    long retry_after;  /* its Retry-After, 0: none */
    char *body;        /* malloc'd: the caller frees it */
} ts_http_reply_t;

/* An http.request (cookie and csrf_header may be NULL: no such header) and
 * its http.response. */
void ts_http(ts_world_t *w, const char *method, const char *path, const char *query,
             const char *cookie, const char *csrf_header, const char *body, ts_http_reply_t *out);
/* The same with a body of body_len bytes, which may hold a NUL. */
void ts_http_body(ts_world_t *w, const char *method, const char *path, const char *query,
                  const char *cookie, const char *csrf_header, const char *body, size_t body_len,
                  ts_http_reply_t *out);
/* The status of a request with the Cookie header cookie (NULL: none) and,
 * when it holds a csrftoken, that token in X-CSRFToken, as the pages send
 * it. */
int ts_status(ts_world_t *w, const char *method, const char *path, const char *cookie,
              const char *body);
/* Copies the value of cookie name from r's Set-Cookie lines. Returns 0 or -1. */
int ts_cookie_value(const ts_http_reply_t *r, const char *name, char *out, size_t size);
/* Logs in through the login form as a browser does; cookie gets the Cookie
 * header to send afterwards (csrftoken and sessionid). */
void ts_login(ts_world_t *w, const char *user, const char *password, char *cookie, size_t size);

/* One WebSocket as the interface knows it. */
typedef struct ts_sock {
    char channel[64];
    mc_scope_t scope;
} ts_sock_t;

/* websocket.connect from 10.0.0.1 with cookie (NULL: none) on channel,
 * whatever the answer. */
void ts_ws_open(ts_world_t *w, const char *cookie, const char *channel);
/* The same, and it must be accepted (and get the room list). */
void ts_ws_connect(ts_world_t *w, const char *cookie, const char *channel, ts_sock_t *s);
/* A websocket.receive of text on s, with its scope and groups, handled as
 * part of a batch: the chat messages it stores wait for the batch's end
 * (wrk_port_flush). */
void ts_ws_send_in_batch(ts_world_t *w, const ts_sock_t *s, const char *text);
/* The same as a batch of one. */
void ts_ws_send(ts_world_t *w, const ts_sock_t *s, const char *text);
/* ts_ws_send of an envelope with the id an interface gives it. */
void ts_ws_send_named(ts_world_t *w, const ts_sock_t *s, const char *text, const char *id);
/* websocket.disconnect of s (code 1001). */
void ts_ws_disconnect(ts_world_t *w, const ts_sock_t *s);
/* Logs user in (password "pw-<user>") as a new device does and opens a
 * socket on channel with the session; cookie gets the Cookie header. */
void ts_log_in_and_connect(ts_world_t *w, const char *user, const char *channel, char *cookie,
                           size_t size, ts_sock_t *s);
/* ann on a (ifc.t!1) and bob on b (ifc.u!1): logged in, connected and in
 * the Lobby, their join replies (and bob's enter notice to ann) read. */
void ts_ann_and_bob_in_the_lobby(ts_world_t *w, ts_sock_t *a, ts_sock_t *b);

#endif
