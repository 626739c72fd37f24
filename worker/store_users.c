/*
 * worker/store_users.c: users and their sessions (worker/store.h).
 *
 * A session is kept as the SHA-256 of its token, never the token; a
 * trigger logs every session that ends, however it ends (store_schema.c).
 */
#include "worker/store_impl.h"
#include "common/error.h"
#include "common/sha256.h"
#include "common/utf8.h"

#include <string.h>

/* The columns read_user reads, in its order. */
#define USER_COLUMNS "id, username, password, is_staff, is_active, is_superuser"

static const wrk_sql_t sql_user_add = {
    .text = "INSERT INTO users(username, password, is_staff) VALUES (?1, ?2, ?3) RETURNING id"};
static const wrk_sql_t sql_user_by_name = {.text = "SELECT " USER_COLUMNS
                                                   " FROM users WHERE username = ?1"};
static const wrk_sql_t sql_user_by_id = {.text =
                                             "SELECT " USER_COLUMNS " FROM users WHERE id = ?1"};
static const wrk_sql_t sql_user_set_password = {.text =
                                                    "UPDATE users SET password = ?2 WHERE id = ?1"};
static const wrk_sql_t sql_user_set_staff = {.text =
                                                 "UPDATE users SET is_staff = ?2 WHERE id = ?1"};
static const wrk_sql_t sql_user_set_superuser = {
    .text = "UPDATE users SET is_superuser = ?2 WHERE id = ?1"};
static const wrk_sql_t sql_user_set_active = {.text =
                                                  "UPDATE users SET is_active = ?2 WHERE id = ?1"};
static const wrk_sql_t sql_user_each = {
    .text = "SELECT id, username, '', is_staff, is_active, is_superuser FROM users ORDER BY id"};
static const wrk_sql_t sql_session_add = {
    .text = "INSERT INTO sessions(token_hash, user_id, expires) VALUES (?1, ?2, ?3)"};
static const wrk_sql_t sql_session_user = {
    .text = "SELECT u.id, u.username, u.password, u.is_staff, u.is_active, u.is_superuser, s.id "
            "FROM sessions s JOIN users u ON u.id = s.user_id "
            "WHERE s.token_hash = ?1 AND s.expires > ?2 AND u.is_active = 1"};
static const wrk_sql_t sql_session_delete = {.text = "DELETE FROM sessions WHERE token_hash = ?1"};
static const wrk_sql_t sql_session_delete_user = {.text =
                                                      "DELETE FROM sessions WHERE user_id = ?1"};
static const wrk_sql_t sql_session_end_others = {
    .text = "DELETE FROM sessions WHERE user_id = ?1 AND id != ?2"};
static const wrk_sql_t sql_session_expired_any = {
    .text = "SELECT 1 FROM sessions WHERE expires <= ?1 LIMIT 1"};
static const wrk_sql_t sql_session_expire = {.text = "DELETE FROM sessions WHERE expires <= ?1"};

static int check_hash(const char *hash)
{
    size_t n = strlen(hash);
    return n == 0 || n >= WRK_STORE_HASH_MAX ? MC_EINVAL : 0;
}

static void read_user(wrk_db_stmt_t *st, wrk_user_t *u)
{
    u->id = wrk_db_int(st, 0);
    wrk__copy_text(st, 1, u->username, sizeof(u->username));
    wrk__copy_text(st, 2, u->password, sizeof(u->password));
    u->is_staff = (int)wrk_db_int(st, 3);
    u->is_active = (int)wrk_db_int(st, 4);
    u->is_superuser = (int)wrk_db_int(st, 5);
}

/* Runs a query that returns at most one user; with session (may be NULL)
 * the query's seventh column is a session id. */
static int one_user(wrk_store_t *s, wrk_db_stmt_t *st, wrk_user_t *out, int64_t *session)
{
    int rc = wrk__step(s, st, "user");
    if (rc == WRK_DB_ROW) {
        read_user(st, out);
        if (session)
            *session = wrk_db_int(st, 6);
    }
    wrk_db_reset(st);
    if (rc < 0)
        return rc;
    return rc == WRK_DB_ROW ? 0 : MC_ENOTFOUND;
}

int wrk_store_user_add(wrk_store_t *s, const char *username, const char *hash, int is_staff,
                       int64_t *id)
{
    size_t n = strlen(username);
    if (n == 0 || n > MC_USERNAME_MAX || mc_utf8_check(username, n) || check_hash(hash))
        return MC_EINVAL;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_user_add);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, username, n);
    wrk_db_bind_text(st, 2, hash, strlen(hash));
    wrk_db_bind_int(st, 3, is_staff ? 1 : 0);
    int64_t got;
    int rc = wrk__query_int(s, st, &got, "add user");
    if (rc == 0 && id)
        *id = got;
    return rc;
}

int wrk_store_user_by_name(wrk_store_t *s, const char *username, wrk_user_t *out)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_user_by_name);
    if (!st)
        return MC_EDB;
    wrk_db_bind_text(st, 1, username, strlen(username));
    return one_user(s, st, out, NULL);
}

int wrk_store_user_by_id(wrk_store_t *s, int64_t id, wrk_user_t *out)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_user_by_id);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, id);
    return one_user(s, st, out, NULL);
}

typedef struct password_args {
    int64_t id, keep_session;
    const char *hash;
} password_args_t;

static int set_password(wrk_store_t *s, void *arg)
{
    const password_args_t *a = arg;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_user_set_password);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, a->id);
    wrk_db_bind_text(st, 2, a->hash, strlen(a->hash));
    int rc = wrk__update_one(s, st, "set password");
    return rc ? rc : wrk_store_user_end_sessions(s, a->id, a->keep_session);
}

int wrk_store_user_set_password(wrk_store_t *s, int64_t id, const char *hash, int64_t keep_session)
{
    if (check_hash(hash))
        return MC_EINVAL;
    password_args_t a = {id, keep_session, hash};
    return wrk__in_batch(s, set_password, &a);
}

int wrk_store_user_set_staff(wrk_store_t *s, int64_t id, int is_staff)
{
    return wrk__set_flag(s, &sql_user_set_staff, id, is_staff, "set staff");
}

int wrk_store_user_set_superuser(wrk_store_t *s, int64_t id, int is_superuser)
{
    return wrk__set_flag(s, &sql_user_set_superuser, id, is_superuser, "set superuser");
}

typedef struct active_args {
    int64_t id;
    int is_active;
} active_args_t;

static int set_active(wrk_store_t *s, void *arg)
{
    const active_args_t *a = arg;
    int rc = wrk__set_flag(s, &sql_user_set_active, a->id, a->is_active, "set active");
    if (rc || a->is_active)
        return rc;
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_session_delete_user);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, a->id);
    return wrk__exec(s, st, "end sessions");
}

int wrk_store_user_set_active(wrk_store_t *s, int64_t id, int is_active)
{
    active_args_t a = {id, is_active};
    return wrk__in_batch(s, set_active, &a);
}

int wrk_store_user_each(wrk_store_t *s, int (*fn)(void *arg, const wrk_user_t *u), void *arg)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_user_each);
    if (!st)
        return MC_EDB;
    int rc, ret = 0;
    while ((rc = wrk__step(s, st, "list users")) == WRK_DB_ROW) {
        wrk_user_t u;
        read_user(st, &u);
        if ((ret = fn(arg, &u)) != 0)
            break;
    }
    wrk_db_reset(st);
    return ret ? ret : rc;
}

/* ---- Sessions ------------------------------------------------------------ */

/* Binds the SHA-256 of token (hex) as parameter i; hex must outlive the
 * statement's run. */
static void bind_token(wrk_db_stmt_t *st, int i, const char *token, char hex[MC_SHA256_HEX_LEN + 1])
{
    mc_sha256_hex(token, strlen(token), hex);
    wrk_db_bind_text(st, i, hex, MC_SHA256_HEX_LEN);
}

int wrk_store_session_add(wrk_store_t *s, const char *token, int64_t user_id, int64_t expires_ms)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_session_add);
    if (!st)
        return MC_EDB;
    char hex[MC_SHA256_HEX_LEN + 1];
    bind_token(st, 1, token, hex);
    wrk_db_bind_int(st, 2, user_id);
    wrk_db_bind_int(st, 3, expires_ms);
    return wrk__exec(s, st, "add session");
}

int wrk_store_session_user(wrk_store_t *s, const char *token, int64_t now_ms, wrk_user_t *out,
                           int64_t *session)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_session_user);
    if (!st)
        return MC_EDB;
    char hex[MC_SHA256_HEX_LEN + 1];
    bind_token(st, 1, token, hex);
    wrk_db_bind_int(st, 2, now_ms);
    return one_user(s, st, out, session);
}

int wrk_store_session_delete(wrk_store_t *s, const char *token)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_session_delete);
    if (!st)
        return MC_EDB;
    char hex[MC_SHA256_HEX_LEN + 1];
    bind_token(st, 1, token, hex);
    return wrk__exec(s, st, "end session");
}

int wrk_store_user_end_sessions(wrk_store_t *s, int64_t user_id, int64_t keep_session)
{
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_session_end_others);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, user_id);
    wrk_db_bind_int(st, 2, keep_session);
    return wrk__exec(s, st, "end sessions");
}

int wrk_store_sessions_expire(wrk_store_t *s, int64_t now_ms, long *ended)
{
    if (ended)
        *ended = 0;
    /* Most calls find nothing: find that out without writing. */
    wrk_db_stmt_t *st = wrk__stmt(s, &sql_session_expired_any);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, now_ms);
    int64_t any;
    int rc = wrk__query_int(s, st, &any, "expired sessions");
    if (rc == MC_ENOTFOUND)
        return 0;
    if (rc)
        return rc;
    st = wrk__stmt(s, &sql_session_expire);
    if (!st)
        return MC_EDB;
    wrk_db_bind_int(st, 1, now_ms);
    rc = wrk__exec(s, st, "expire sessions");
    if (rc == 0 && ended)
        *ended = (long)s->drv->changes(s->db);
    return rc;
}
