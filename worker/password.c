/*
 * worker/password.c: argon2id hashing and checking of passwords
 * (worker/password.h), with a dummy hash for users that do not exist.
 */
#include "worker/password.h"
#include "common/error.h"
#include "worker/token.h"

#include <argon2.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#define SALT_BYTES 16
#define HASH_BYTES 32

static int random_bytes(unsigned char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = getrandom(buf + got, len - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return MC_EIO;
        }
        got += (size_t)r;
    }
    return 0;
}

static int hash_with(const wrk_password_t *pw, const char *password, size_t len,
                     char out[WRK_PASSWORD_HASH_MAX])
{
    unsigned char salt[SALT_BYTES];
    if (len > WRK_PASSWORD_MAX_BYTES)
        return MC_ETOOBIG;
    if (random_bytes(salt, sizeof(salt)))
        return MC_EIO;
    int rc = argon2id_hash_encoded(pw->t, pw->m_kib, pw->p, password, len, salt, sizeof(salt),
                                   HASH_BYTES, out, WRK_PASSWORD_HASH_MAX);
    if (rc == ARGON2_MEMORY_ALLOCATION_ERROR)
        return MC_ENOMEM;
    return rc == ARGON2_OK ? 0 : MC_EINVAL;
}

int wrk_password_init(wrk_password_t *pw, uint32_t m_kib, uint32_t t, uint32_t p)
{
    memset(pw, 0, sizeof(*pw));
    pw->m_kib = m_kib;
    pw->t = t;
    pw->p = p;
    char secret[WRK_TOKEN_HEX_LEN + 1];
    if (wrk_token_new(secret))
        return MC_EIO;
    return hash_with(pw, secret, strlen(secret), pw->dummy);
}

int wrk_password_hash(const wrk_password_t *pw, const char *password, size_t len,
                      char out[WRK_PASSWORD_HASH_MAX])
{
    return hash_with(pw, password, len, out);
}

int wrk_password_verify(const wrk_password_t *pw, const char *encoded, const char *password,
                        size_t len)
{
    int real = encoded != NULL && len <= WRK_PASSWORD_MAX_BYTES;
    /* The dummy is a hash of a random secret nobody knows: verifying against
     * it costs what a real check costs and cannot succeed. */
    const char *against = real ? encoded : pw->dummy;
    if (len > WRK_PASSWORD_MAX_BYTES)
        len = WRK_PASSWORD_MAX_BYTES;
    int rc = argon2id_verify(against, password, len);
    return (real && rc == ARGON2_OK) ? 0 : MC_EDENIED;
}
