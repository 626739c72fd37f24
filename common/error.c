/*
 * common/error.c: the texts and names of the MC_E* codes of
 * common/error.h.
 */
#include "common/error.h"

#include <stddef.h>

struct mc_error_text {
    int code;
    const char *name;
    const char *text;
};

static const struct mc_error_text mc_error_texts[] = {
    {MC_OK, "MC_OK", "success"},
    {MC_EINVAL, "MC_EINVAL", "invalid argument or input"},
    {MC_ENOMEM, "MC_ENOMEM", "out of memory"},
    {MC_ETOOBIG, "MC_ETOOBIG", "value exceeds its limit"},
    {MC_EPROTO, "MC_EPROTO", "protocol error"},
    {MC_EFULL, "MC_EFULL", "channel is full"},
    {MC_EREDIS, "MC_EREDIS", "Redis error"},
    {MC_EDB, "MC_EDB", "database error"},
    {MC_ENOTFOUND, "MC_ENOTFOUND", "not found"},
    {MC_EEXIST, "MC_EEXIST", "already exists"},
    {MC_EIO, "MC_EIO", "input/output error"},
    {MC_ETIMEDOUT, "MC_ETIMEDOUT", "timed out"},
    {MC_EAGAIN, "MC_EAGAIN", "nothing available yet"},
    {MC_EDENIED, "MC_EDENIED", "permission denied"},
    {MC_ECLOSED, "MC_ECLOSED", "connection closed"},
};

static const struct mc_error_text *mc_error_find(int code)
{
    for (size_t i = 0; i < sizeof(mc_error_texts) / sizeof(mc_error_texts[0]); i++)
        if (mc_error_texts[i].code == code)
            return &mc_error_texts[i];
    return NULL;
}

const char *mc_strerror(int code)
{
    const struct mc_error_text *e = mc_error_find(code);
    return e ? e->text : "unknown error";
}

const char *mc_error_name(int code)
{
    const struct mc_error_text *e = mc_error_find(code);
    return e ? e->name : "MC_E?";
}
