/* Envelopes come from Redis, written by other processes: decoding must hold
 * for any bytes, and whatever decodes must encode and decode again alike. */
#include "common/envelope.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mc_envelope_t env;
    if (mc_envelope_decode(&env, (const char *)data, size) != 0)
        return 0;
    char *wire;
    size_t len;
    if (mc_envelope_encode(&env, &wire, &len) == 0) {
        mc_envelope_t again;
        if (mc_envelope_decode(&again, wire, len) != 0 || again.type != env.type ||
            again.nheaders != env.nheaders || again.ngroups != env.ngroups ||
            again.body_len != env.body_len ||
            (env.body_len && memcmp(again.body, env.body, env.body_len) != 0))
            abort();
        mc_envelope_clear(&again);
        free(wire);
    }
    mc_envelope_clear(&env);
    return 0;
}
