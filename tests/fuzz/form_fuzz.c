/* Fuzz target of common/form.c: any bytes parse or fail cleanly, and every
 * field found is within the decoded buffer. */
#include "common/form.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mc_form_t form;
    if (mc_form_parse(&form, (const char *)data, size) == 0) {
        size_t total = 0;
        for (size_t i = 0; i < form.nfields; i++) {
            total += form.fields[i].name_len + form.fields[i].value_len;
            if (form.fields[i].name[form.fields[i].name_len] != '\0' ||
                form.fields[i].value[form.fields[i].value_len] != '\0')
                __builtin_trap();
        }
        if (total > size)
            __builtin_trap();
        (void)mc_form_get(&form, "next", NULL);
    }
    mc_form_clear(&form);
    return 0;
}
