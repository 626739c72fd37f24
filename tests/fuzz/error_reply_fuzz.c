/* A client's frame that cannot be handled is answered with an error that
 * names it: whatever the frame holds, the answer is one JSON object whose
 * "error" is the code. */
#include "common/error_reply.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out;
    if (mc_error_reply("SERVER_BUSY", (const char *)data, size, &out) != 0)
        return 0;
    cJSON *o = cJSON_Parse(out);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (!cJSON_IsObject(o) || !cJSON_IsString(e) || strcmp(e->valuestring, "SERVER_BUSY") != 0)
        abort();
    cJSON_Delete(o);
    free(out);
    return 0;
}
