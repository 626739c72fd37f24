/*
 * common/error.h: the one error vocabulary of Multichat.
 *
 * Every function that can fail returns int: 0 on success or a negative MC_E*
 * code below. Results travel through out-parameters. The codes are grouped so
 * that a caller can tell "the input was bad" from "a server was unreachable"
 * without parsing text.
 */
#ifndef MC_COMMON_ERROR_H
#define MC_COMMON_ERROR_H

enum mc_error {
    MC_OK = 0,
    MC_EINVAL = -1,     /* an argument or an input was malformed */
    MC_ENOMEM = -2,     /* an allocation failed */
    MC_ETOOBIG = -3,    /* an input or a value exceeded its limit */
    MC_EPROTO = -4,     /* a peer broke its protocol */
    MC_EFULL = -5,      /* a channel is at capacity; the message was not queued */
    MC_EREDIS = -6,     /* Redis could not be reached or answered with an error */
    MC_EDB = -7,        /* the database failed */
    MC_ENOTFOUND = -8,  /* the named thing does not exist */
    MC_EEXIST = -9,     /* the thing to create exists already */
    MC_EIO = -10,       /* a system call failed; errno says more */
    MC_ETIMEDOUT = -11, /* a deadline passed */
    MC_EAGAIN = -12,    /* nothing is available yet; try again later */
    MC_EDENIED = -13,   /* the caller may not do this */
    MC_ECLOSED = -14,   /* the connection or object is closed or closing */
};

/* Returns a short, static, human-readable text for an MC_E* code (or "unknown
 * error" for anything else). Never NULL. */
const char *mc_strerror(int code);

/* Returns the code's symbolic name, e.g. "MC_EFULL". Never NULL. */
const char *mc_error_name(int code);

#endif
