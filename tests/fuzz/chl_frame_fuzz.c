/* List elements come from Redis, where any client may have written: the
 * frame parser must hold for any bytes, and what it accepts must be rebuilt
 * by the frame builder to the same bytes. */
#include "channel-layer/internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    chl__frame_t f;
    if (chl__frame_parse(&f, (const char *)data, size) != 0)
        return 0;
    if (f.name_len >= CHL__NAME_MAX)
        return 0; /* the builder refuses names the parser may pass over */
    char name[CHL__NAME_MAX];
    memcpy(name, f.name, f.name_len);
    name[f.name_len] = '\0';
    char *again;
    size_t len;
    int letter = f.more ? CHL__MSG_MORE : f.kind;
    if (chl__frame_build(&again, &len, letter, f.deadline, name, f.seq, f.payload, f.len) == 0) {
        chl__frame_t g;
        if (chl__frame_parse(&g, again, len) != 0 || g.kind != f.kind || g.more != f.more ||
            g.deadline != f.deadline || g.seq != f.seq || g.len != f.len ||
            memcmp(g.payload, f.payload, f.len))
            abort();
        free(again);
    }
    return 0;
}
