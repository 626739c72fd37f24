/*
 * worker/app.h: one worker's state: its settings, its store connection,
 * its password hasher and its output port (worker/port.h). chat-worker's
 * main builds one wrk_app_t and passes it down to every module that
 * handles an envelope or a change (dispatch, consumer, views, session,
 * changes); it is used by one thread.
 *
 * Above it: worker/dispatch.h hands it the envelopes of the worker queue,
 * worker/changes.h the changes made elsewhere. Below it: the port, the
 * store, the hasher.
 */
#ifndef MC_WORKER_APP_H
#define MC_WORKER_APP_H

#include "worker/metrics.h"
#include "worker/password.h"
#include "worker/port.h"
#include "worker/store.h"

/* Settings, read-only after start-up (chat-worker fills them from flags and
 * CHAT_* variables). */
typedef struct wrk_settings {
    long message_max;             /* bytes of one chat message, default 4096 */
    int notify_enter_leave;       /* send msg_type 4/5 notices, default on */
    long session_ttl_s;           /* default two weeks */
    int https;                    /* every request came over HTTPS, whatever its scheme says */
    const char *web_root;         /* holds templates/, default "web" */
    long login_max_failures;      /* per username from one address (or one device cookie)
                                   * in a window, default 5 */
    long login_addr_max_failures; /* per address, whatever the username, default 30 */
    long login_backoff_after;     /* failures of a username, from browsers without its device
                                   * cookie, after which each try waits 1 s, 2 s, 4 s... */
    long login_window_s;          /* default 900 */
    long argon2_m, argon2_t, argon2_p;
    long rate_messages; /* per user: sends, edits, deletes, whispers a second, default 5; 0 off */
    long rate_burst;    /* ... and at once, default 20 */
    long rate_close_after;   /* refusals in a row that close the socket with 1008, default 20 */
    long rate_connects;      /* per user: new WebSockets a second, default 20; 0 off */
    long rate_connect_burst; /* ... and at once, default 60 */
    long rate_notices;       /* per user and room: enter and leave notices a minute, default 6;
                                0 off */
    long rate_notice_burst;  /* ... and at once, default 10 */
    long socket_rooms;       /* rooms one socket may be in, default WRK_SOCKET_ROOMS_DEFAULT */
    long db_idle_timeout_ms; /* PostgreSQL: the server ends a worker's connection idle this
                              * long, and its order locks go, default 5000; 0 never */
} wrk_settings_t;

void wrk_settings_defaults(wrk_settings_t *s);

#define WRK_DEVICE_KEY_HEX_LEN 64 /* a device cookie's signing key, 256 bits in hex */

typedef struct wrk_app {
    wrk_settings_t cfg;                          /* read-only */
    char device_key[WRK_DEVICE_KEY_HEX_LEN + 1]; /* read-only: signs device cookies; the same
                                                  * for every worker of the database */
    wrk_store_t *store;                          /* owned */
    wrk_password_t pw;                           /* read-only */
    wrk_port_t port;                             /* owned: every answer leaves through it */
    wrk_metrics_t metrics;            /* owned: what this worker counts (worker/metrics.h) */
    int64_t changes_from, changes_to; /* private (worker/changes.c): changes claimed and
                                       * handled up to from, claimed up to to */
} wrk_app_t;

/* Opens the store at db_path, migrates it, prepares the password hasher,
 * reads (or makes) the device cookie key and sets the port up over sink
 * (copied). Workers sharing db_path also share
 * the order locks (worker/order.h). Returns 0, MC_EDB, MC_EIO (the order
 * lock file), MC_EINVAL (bad argon2 parameters), MC_ENOMEM. */
int wrk_app_init(wrk_app_t *app, const wrk_settings_t *cfg, const char *db_path,
                 const wrk_sink_t *sink);
/* Publishes what the port holds, then closes the store. */
void wrk_app_close(wrk_app_t *app);

#endif
