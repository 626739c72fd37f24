/*
 * worker/password.h: password hashing with argon2id (libargon2).
 *
 * Hashes are argon2's encoded strings ("$argon2id$v=19$m=19456,t=2,p=1$..."),
 * which carry their own parameters, so changing the parameters later keeps
 * old hashes verifiable. A wrk_password_t holds the parameters for new
 * hashes and a dummy hash made with them: checking a login for a user that
 * does not exist verifies against the dummy, so a failed login costs the
 * same time whether or not the user exists. It is read-only after
 * wrk_password_init and may be shared by threads.
 */
#ifndef MC_WORKER_PASSWORD_H
#define MC_WORKER_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

#define WRK_PASSWORD_MAX_BYTES 4096 /* longer passwords are refused */
#define WRK_PASSWORD_HASH_MAX 160   /* an encoded hash, with its NUL */

/* OWASP's minimum for argon2id; tests pass smaller values. */
#define WRK_PASSWORD_DEFAULT_M_KIB 19456
#define WRK_PASSWORD_DEFAULT_T 2
#define WRK_PASSWORD_DEFAULT_P 1

typedef struct wrk_password {
    uint32_t m_kib;                    /* read-only: memory cost in KiB */
    uint32_t t;                        /* read-only: passes */
    uint32_t p;                        /* read-only: lanes */
    char dummy[WRK_PASSWORD_HASH_MAX]; /* private */
} wrk_password_t;

/* Sets the parameters and makes the dummy hash. Returns 0, MC_EINVAL for
 * parameters argon2 refuses, MC_EIO when no randomness is available. */
int wrk_password_init(wrk_password_t *pw, uint32_t m_kib, uint32_t t, uint32_t p);

/* Hashes password[0..len) with a fresh random salt into out (a NUL-terminated
 * encoded string). Returns 0, MC_ETOOBIG (password over
 * WRK_PASSWORD_MAX_BYTES), MC_EIO (no randomness), MC_ENOMEM. */
int wrk_password_hash(const wrk_password_t *pw, const char *password, size_t len,
                      char out[WRK_PASSWORD_HASH_MAX]);

/* Checks password[0..len) against encoded; with encoded NULL (no such user)
 * against the dummy, which never matches. Returns 0 on a match, MC_EDENIED
 * otherwise (including a malformed hash or an over-long password, which still
 * cost one verification). */
int wrk_password_verify(const wrk_password_t *pw, const char *encoded, const char *password,
                        size_t len);

#endif
