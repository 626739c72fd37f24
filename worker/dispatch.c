/*
 * worker/dispatch.c: decodes an envelope and routes it on its type
 * (worker/dispatch.h).
 */
#include "worker/dispatch.h"
#include "common/clock.h"
#include "common/envelope.h"
#include "common/error.h"
#include "common/log.h"
#include "worker/consumer.h"
#include "worker/views.h"

int wrk_dispatch_envelope(wrk_app_t *app, const char *data, size_t len)
{
    int64_t start = mc_mono_ns();
    mc_envelope_t env;
    int rc = mc_envelope_decode(&env, data, len);
    if (rc) {
        wrk_metrics_count(&app->metrics, WRK_M_ENVELOPES, "undecodable");
        mc_warn("worker: dropped an envelope that does not decode (%zu bytes): %s", len,
                mc_strerror(rc));
        return MC_EINVAL;
    }
    const char *type = mc_envelope_type_name(env.type);
    wrk_metrics_count(&app->metrics, WRK_M_ENVELOPES, type);
    switch (env.type) {
    case MC_ENV_HTTP_REQUEST:
        rc = wrk_views_request(app, &env);
        break;
    case MC_ENV_WS_CONNECT:
        rc = wrk_consumer_connect(app, &env);
        break;
    case MC_ENV_WS_RECEIVE:
        /* Exactly one answer, whatever the command does. */
        wrk_port_answer_begin(&app->port, env.reply);
        rc = wrk_consumer_receive(app, &env);
        wrk_port_answer_end(&app->port);
        break;
    case MC_ENV_WS_DISCONNECT:
        rc = wrk_consumer_disconnect(app, &env);
        break;
    default:
        mc_warn("worker: dropped a %s envelope, which workers do not handle",
                mc_envelope_type_name(env.type));
        rc = MC_EINVAL;
        break;
    }
    mc_envelope_clear(&env);
    wrk_metrics_observe(&app->metrics, type, mc_mono_ns() - start);
    return rc;
}
