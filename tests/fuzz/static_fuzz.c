/* Fuzz target for interface/static.c: whatever the URL path, the decoded
 * path is relative, has no "..", no hidden segment, no NUL, no backslash and
 * no control character. */
#include "interface/static.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[IFC_STATIC_PATH_MAX];
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    int rc = ifc_static_decode(copy, size, out, sizeof(out));
    free(copy);
    if (rc != 0)
        return 0;
    size_t n = strlen(out);
    if (n == 0 || out[0] == '/' || out[n - 1] == '/')
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c < 0x20 || c == 0x7F || c == '\\')
            abort();
        if ((i == 0 || out[i - 1] == '/') && c == '.')
            abort();
    }
    return 0;
}
