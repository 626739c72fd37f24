/*
 * worker/app.c: a worker's state (worker/app.h): default settings, and
 * opening and closing the store, the hasher and the port together.
 */
#include "worker/app.h"
#include "common/error.h"
#include "common/log.h"
#include "worker/command.h"
#include "worker/token.h"

#include <string.h>

_Static_assert(WRK_DEVICE_KEY_HEX_LEN == 2 * WRK_TOKEN_HEX_LEN, "a key is two tokens");

void wrk_settings_defaults(wrk_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->message_max = WRK_MESSAGE_MAX_DEFAULT;
    s->notify_enter_leave = 1;
    s->session_ttl_s = 14 * 24 * 3600;
    s->web_root = "web";
    s->login_max_failures = 5;
    s->login_addr_max_failures = 30;
    s->login_backoff_after = 10;
    s->login_window_s = 900;
    s->argon2_m = WRK_PASSWORD_DEFAULT_M_KIB;
    s->argon2_t = WRK_PASSWORD_DEFAULT_T;
    s->argon2_p = WRK_PASSWORD_DEFAULT_P;
    s->rate_messages = 5;
    s->rate_burst = 20;
    s->rate_close_after = 20;
    s->rate_connects = 20;
    s->rate_connect_burst = 60;
    s->rate_notices = 6;
    s->rate_notice_burst = 10;
    s->socket_rooms = WRK_SOCKET_ROOMS_DEFAULT;
    s->db_idle_timeout_ms = 5000;
}

int wrk_app_init(wrk_app_t *app, const wrk_settings_t *cfg, const char *db_path,
                 const wrk_sink_t *sink)
{
    memset(app, 0, sizeof(*app));
    app->cfg = *cfg;
    int rc = wrk_password_init(&app->pw, (uint32_t)cfg->argon2_m, (uint32_t)cfg->argon2_t,
                               (uint32_t)cfg->argon2_p);
    if (rc) {
        mc_error("worker: argon2 parameters refused: %s", mc_strerror(rc));
        return rc;
    }
    wrk_store_options_t opts = {.idle_timeout_ms = cfg->db_idle_timeout_ms};
    rc = wrk_store_open(&app->store, db_path, &opts);
    if (rc)
        return rc;
    rc = wrk_port_init(&app->port, sink, app->store, db_path, cfg->notify_enter_leave);
    if (rc) {
        wrk_store_close(app->store);
        app->store = NULL;
        return rc;
    }
    app->port.notice_rate = cfg->rate_notices;
    app->port.notice_burst = cfg->rate_notice_burst;
    int from = 0, to = 0;
    rc = wrk_store_migrate(app->store, &from, &to);
    if (rc) {
        mc_error("worker: migrating the database: %s", wrk_store_errmsg(app->store));
        wrk_app_close(app);
        return rc;
    }
    /* The first worker of a database makes the key; the others read it. */
    char fresh[WRK_DEVICE_KEY_HEX_LEN + 1];
    rc = wrk_token_new(fresh);
    if (rc == 0)
        rc = wrk_token_new(fresh + WRK_TOKEN_HEX_LEN);
    if (rc == 0)
        rc = wrk_store_secret(app->store, "device-cookie-key", fresh, app->device_key,
                              sizeof(app->device_key));
    if (rc) {
        mc_error("worker: the device cookie key: %s", mc_strerror(rc));
        wrk_app_close(app);
        return rc;
    }
    return 0;
}

void wrk_app_close(wrk_app_t *app)
{
    if (!app->store)
        return;
    wrk_port_close(&app->port);
    wrk_store_close(app->store);
    app->store = NULL;
}
