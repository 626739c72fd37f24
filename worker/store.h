/*
 * worker/store.h: everything the chat keeps: users, sessions, rooms,
 * messages, login failure counters, secrets the workers share, and a log of
 * changes to users, rooms and sessions.
 *
 * This header is the whole contract of the data layer and the only door to
 * the database; it speaks of the chat's things, not of any query language.
 * Two backends keep that contract alike, chosen by the target a store is
 * opened with:
 *  - a path: sqlite in WAL mode, the embedded default. Any number of
 *    processes (and, with one wrk_store_t each, threads) may use one file at
 *    once; a write that meets a busy database waits and retries, it is
 *    never dropped.
 *  - a postgresql:// (or postgres://) URI, or a libpq conninfo string
 *    ("host=... dbname=..."): PostgreSQL, for workers on several hosts. The
 *    database must exist; wrk_store_migrate creates the tables. A connection
 *    the server closed is opened again on the next call made outside a
 *    batch.
 * Whatever must hold across workers holds across hosts too: each message
 * and whisper id, change claims, presence counts, and login failure counts.
 *
 * A wrk_store_t is one connection: use it from one thread at a time. Strings
 * passed in are borrowed for the call. Functions return 0 or a negative MC_E*
 * code: MC_ENOTFOUND (no such thing), MC_EEXIST (a unique name taken),
 * MC_EINVAL (an argument out of range, or text the database refuses),
 * MC_ENOMEM, MC_EDB (the database failed; wrk_store_errmsg says why).
 */
#ifndef MC_WORKER_STORE_H
#define MC_WORKER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/envelope.h" /* MC_USERNAME_MAX */

#define WRK_STORE_SCHEMA_VERSION 7 /* the version wrk_store_migrate brings a store to */
#define WRK_STORE_HASH_MAX 256     /* a password hash, with its NUL */
#define WRK_ROOM_TITLE_MAX 200     /* bytes */
#define WRK_CLIENT_ID_MAX 64       /* bytes of a message's or whisper's client id */
#define WRK_STORE_SINCE_MAX 500    /* messages one "since" query returns at most */

typedef struct wrk_store wrk_store_t;

typedef struct wrk_user {
    int64_t id;
    char username[MC_USERNAME_MAX + 1];
    char password[WRK_STORE_HASH_MAX]; /* encoded hash */
    int is_staff;                      /* manages rooms and users who are not staff */
    int is_active;
    int is_superuser; /* also manages staff and superusers (is_staff too, by convention) */
} wrk_user_t;

typedef struct wrk_room {
    int64_t id;
    char title[WRK_ROOM_TITLE_MAX + 1];
    int staff_only;
} wrk_room_t;

typedef struct wrk_message {
    int64_t id; /* increasing: a later message has a larger id */
    int64_t room_id;
    int64_t user_id;
    char username[MC_USERNAME_MAX + 1];
    char *body; /* owned, NUL-terminated, body_len bytes */
    size_t body_len;
    int64_t created_ms; /* ms since the Unix epoch */
    int64_t edited_ms;  /* 0: never edited */
    int deleted;
} wrk_message_t;

/* Messages in increasing id order. */
typedef struct wrk_message_list {
    wrk_message_t *items;
    size_t n;
    int truncated; /* more matched than were returned */
} wrk_message_list_t;

/* What changed, for processes that must react to changes made elsewhere
 * (chatctl, another worker). */
enum wrk_change_kind {
    WRK_CHANGE_ROOM = 1,    /* ref: a room added, renamed, re-flagged or deleted */
    WRK_CHANGE_USER = 2,    /* ref: a user's is_staff or is_active changed */
    WRK_CHANGE_LOGOUT = 3,  /* ref: a user one of whose sessions ended; no longer logged,
                             * but a log written by an earlier version may hold it */
    WRK_CHANGE_SESSION = 4, /* ref: the id of a session that ended, however it ended: a
                             * logout, expiry, deactivation, a new password */
};

/* What a login failure counter counts: key is a username, an address,
 * "<address>/<username>" or a device cookie's id. */
enum wrk_limit_kind {
    WRK_LIMIT_USER = 1,      /* a username, from browsers without its device cookie */
    WRK_LIMIT_ADDR = 2,      /* a client address, whatever the username */
    WRK_LIMIT_USER_ADDR = 3, /* a username from one address */
    WRK_LIMIT_DEVICE = 4,    /* a browser holding a device cookie */
};

typedef struct wrk_store_options {
    long busy_timeout_ms; /* sqlite: how long one attempt waits for a busy database, default 5000 */
    /* PostgreSQL: the server ends this connection once it has been idle this
     * long, in a transaction or not, and so frees its locks (the order locks
     * below); the next call outside a batch opens a new one. 0, the
     * default: never. Keep it above the longest pause between the calls of
     * a healthy process. */
    long idle_timeout_ms;
} wrk_store_options_t;

/* ---- Opening and migrations ---------------------------------------------- */

/* Opens the store at target: a sqlite file (created if needed), or a
 * PostgreSQL database (see above). opts may be NULL for the defaults. It
 * does not migrate. Returns 0 and *out, MC_EDB (logged: why it failed),
 * MC_ENOMEM. */
int wrk_store_open(wrk_store_t **out, const char *target, const wrk_store_options_t *opts);
void wrk_store_close(wrk_store_t *s); /* wrk_store_close(NULL) does nothing */

/* The text of the last failure on this connection (never NULL). */
const char *wrk_store_errmsg(const wrk_store_t *s);

/* The backend's name: "sqlite" or "postgresql". */
const char *wrk_store_backend(const wrk_store_t *s);

/* Writes into buf[size] a form of target fit for logs: a path as it is, a
 * PostgreSQL target as postgresql://user@host:port/db, without password. */
void wrk_store_describe(const char *target, char *buf, size_t size);

/* What a connection did since it was opened, for the worker's metrics
 * (across the connections PostgreSQL opened again, if any). */
typedef struct wrk_store_stats {
    uint64_t statements;   /* statements run */
    uint64_t busy_retries; /* statements retried: the database was busy, or undid them */
    int64_t ns;            /* the time the statements took */
} wrk_store_stats_t;

void wrk_store_stats(const wrk_store_t *s, wrk_store_stats_t *out);

/* Brings the schema to WRK_STORE_SCHEMA_VERSION, atomically; running it
 * again (or from several processes at once) changes nothing. *from and *to
 * (may be NULL) get the versions before and after. Returns 0, MC_EDB (also
 * for a store newer than this program). */
int wrk_store_migrate(wrk_store_t *s, int *from, int *to);

/* Stores the schema version in *version. */
int wrk_store_version(wrk_store_t *s, int *version);

/* Groups the following calls into one all-or-nothing batch (they also run
 * much faster). Batches do not nest. batch_end commits when commit is
 * non-zero, else undoes everything since batch_begin. A call that fails in
 * a batch with MC_EDB may have undone the batch (on PostgreSQL it always
 * does): batch_end then returns MC_EDB and keeps nothing. */
int wrk_store_batch_begin(wrk_store_t *s);
int wrk_store_batch_end(wrk_store_t *s, int commit);

/* ---- Users --------------------------------------------------------------- */

/* Adds an active user. Returns 0 and *id (may be NULL), MC_EEXIST when the
 * username is taken, MC_EINVAL for an empty or over-long username or hash,
 * or a username that is not UTF-8. */
int wrk_store_user_add(wrk_store_t *s, const char *username, const char *hash, int is_staff,
                       int64_t *id);
int wrk_store_user_by_name(wrk_store_t *s, const char *username, wrk_user_t *out);
int wrk_store_user_by_id(wrk_store_t *s, int64_t id, wrk_user_t *out);
/* Setters return MC_ENOTFOUND when there is no such user. A new password
 * ends every session of the user but keep_session (0: none): a stolen
 * cookie does not outlive a reset, and whoever changes their own password
 * stays logged in. */
int wrk_store_user_set_password(wrk_store_t *s, int64_t id, const char *hash, int64_t keep_session);
int wrk_store_user_set_staff(wrk_store_t *s, int64_t id, int is_staff);
int wrk_store_user_set_superuser(wrk_store_t *s, int64_t id, int is_superuser);
/* Deactivating also ends every session of the user. */
int wrk_store_user_set_active(wrk_store_t *s, int64_t id, int is_active);
/* Calls fn for every user in id order (password left empty); stops and
 * returns fn's value when it is non-zero. fn must not call this store. */
int wrk_store_user_each(wrk_store_t *s, int (*fn)(void *arg, const wrk_user_t *u), void *arg);

/* ---- Sessions ------------------------------------------------------------ */

/* The store never keeps a session's token, only its SHA-256 (hex): the
 * functions below take the token and hash it. Every session that ends, by
 * any function here, logs WRK_CHANGE_SESSION with its id. */

/* Records a session token (the caller makes it unguessable) for user_id,
 * valid until expires_ms. Returns 0, MC_EEXIST (token in use), MC_ENOTFOUND
 * (no such user). */
int wrk_store_session_add(wrk_store_t *s, const char *token, int64_t user_id, int64_t expires_ms);
/* Finds the active user of an unexpired session. Returns 0, *out and
 * *session (may be NULL) the session's id, or MC_ENOTFOUND (no such token,
 * expired, or the user is inactive). A session id is never reused and is
 * no secret: it names the session where the token must not appear (group
 * names, logs). */
int wrk_store_session_user(wrk_store_t *s, const char *token, int64_t now_ms, wrk_user_t *out,
                           int64_t *session);
/* Ends a session. Ending an unknown one is not an error. */
int wrk_store_session_delete(wrk_store_t *s, const char *token);
/* Ends every session of user_id except keep_session (0: none). */
int wrk_store_user_end_sessions(wrk_store_t *s, int64_t user_id, int64_t keep_session);
/* Ends every session that expired by now_ms; *ended (may be NULL) gets how
 * many. Cheap when there is none (no write). Of several workers calling it
 * at once, each expired session is ended, and logged, once. */
int wrk_store_sessions_expire(wrk_store_t *s, int64_t now_ms, long *ended);
/* Ends expired sessions and forgets change-log entries older than keep_ms. */
int wrk_store_purge(wrk_store_t *s, int64_t now_ms, int64_t keep_ms);

/* ---- Secrets ------------------------------------------------------------- */

/* The secret called name, shared by every worker of the database: the one
 * stored, or fresh (a random text the caller made) when none was, stored
 * now. Copies it with a NUL into out[0..size). Returns 0, MC_EINVAL (fresh
 * empty or too long for out), MC_ETOOBIG (the stored one is), MC_EDB. */
int wrk_store_secret(wrk_store_t *s, const char *name, const char *fresh, char *out, size_t size);

/* ---- Rooms --------------------------------------------------------------- */

/* Adds a room. Returns 0 and *id (may be NULL), MC_EINVAL for an empty or
 * over-long title, or one that is not UTF-8 (rename alike). Ids of deleted
 * rooms are never reused. */
int wrk_store_room_add(wrk_store_t *s, const char *title, int staff_only, int64_t *id);
int wrk_store_room_get(wrk_store_t *s, int64_t id, wrk_room_t *out);
int wrk_store_room_rename(wrk_store_t *s, int64_t id, const char *title);
int wrk_store_room_set_staff_only(wrk_store_t *s, int64_t id, int staff_only);
/* Deletes a room and its messages. */
int wrk_store_room_delete(wrk_store_t *s, int64_t id);
/* Calls fn for every room in id order, as wrk_store_user_each. */
int wrk_store_room_each(wrk_store_t *s, int (*fn)(void *arg, const wrk_room_t *r), void *arg);

/* ---- Messages ------------------------------------------------------------ */

/* Stores a message by user_id in room_id at now_ms, when the user is active
 * and may be in the room (a staff-only room: staff only). client_id (may be
 * NULL) names it for its sender: a second call with the same user and
 * client id stores nothing and returns the first message with
 * *duplicate = 1 (duplicate may be NULL).
 * Fills *out (release with wrk_message_clear). Returns 0, MC_ENOTFOUND (no
 * such room), MC_ECLOSED (the user is gone or no longer active),
 * MC_EDENIED (the user may not be in the room), MC_EINVAL (client id over
 * WRK_CLIENT_ID_MAX). */
int wrk_store_message_add(wrk_store_t *s, int64_t room_id, int64_t user_id, const char *body,
                          size_t body_len, const char *client_id, int64_t now_ms,
                          wrk_message_t *out, int *duplicate);
/* A chat message for wrk_store_messages_add, and what became of it. */
typedef struct wrk_new_message {
    int64_t room_id, user_id;
    const char *body; /* borrowed for the call, as client_id and sender */
    size_t body_len;
    const char *client_id; /* NULL: none */
    const char *sender;    /* the connection that sent it (Publishing below), NULL: none */
    int rc;                /* out: what wrk_store_message_add would return */
    int duplicate;         /* out */
    wrk_message_t stored;  /* out, when rc is 0: release with wrk_message_clear */
} wrk_new_message_t;

typedef struct wrk_unpublished_list wrk_unpublished_list_t;

/* Stores msgs[0..n) (at most WRK_STORE_MESSAGES_MAX) at now_ms, each as
 * wrk_store_message_add would, in this order (a later one gets a larger
 * id), in one transaction of their own, which also marks their rooms as
 * publishing (below): on PostgreSQL in one round trip to the server. When
 * stale is not NULL, it gets the messages of these rooms that an earlier
 * batch left unpublished, as wrk_store_unpublished returns them, read in
 * the same transaction before the new ones are stored. Returns 0 once that
 * committed, and each msgs[i].rc says what became of its message; else the
 * failure (MC_EDB, MC_ENOMEM), and nothing of them is kept: each rc is
 * that code. Not inside a batch (MC_EINVAL). */
#define WRK_STORE_MESSAGES_MAX 64
int wrk_store_messages_add(wrk_store_t *s, wrk_new_message_t *msgs, size_t n, int64_t now_ms,
                           wrk_unpublished_list_t *stale);
/* Fills *out with a message (deleted ones too). */
int wrk_store_message_get(wrk_store_t *s, int64_t id, wrk_message_t *out);
/* Replaces the body of a message that is not deleted. MC_ENOTFOUND else. */
int wrk_store_message_edit(wrk_store_t *s, int64_t id, const char *body, size_t body_len,
                           int64_t now_ms);
/* Marks a message deleted and overwrites its body with "" (the text is gone
 * from the database, not hidden). MC_ENOTFOUND when there is none or it is
 * deleted already. */
int wrk_store_message_delete(wrk_store_t *s, int64_t id);

/* The queries below skip deleted messages, fill *out (release with
 * wrk_message_list_clear) in increasing id order, and set out->truncated
 * when more matched than were returned. */

/* The last `limit` messages of a room. */
int wrk_store_messages_last(wrk_store_t *s, int64_t room_id, long limit, wrk_message_list_t *out);
/* The messages after id `since`: all of them, or when more than `limit`
 * (at most WRK_STORE_SINCE_MAX) the newest `limit`, truncated. */
int wrk_store_messages_since(wrk_store_t *s, int64_t room_id, int64_t since, long limit,
                             wrk_message_list_t *out);
/* The newest `limit` messages with an id below `before` (history paging). */
int wrk_store_messages_before(wrk_store_t *s, int64_t room_id, int64_t before, long limit,
                              wrk_message_list_t *out);

void wrk_message_clear(wrk_message_t *m);
void wrk_message_list_clear(wrk_message_list_t *l);

/* ---- Login failures ------------------------------------------------------ */

/* Counts one failed login for key (a username or an address) in a window of
 * window_ms that starts at the first failure. Stores the count in the
 * current window in *count (may be NULL). */
int wrk_store_login_failure_add(wrk_store_t *s, enum wrk_limit_kind kind, const char *key,
                                int64_t now_ms, int64_t window_ms, long *count);
/* Stores in *count the failures of key in its current window (0 after it)
 * and in *last_ms (may be NULL) the time of the last one (0: none). */
int wrk_store_login_failures(wrk_store_t *s, enum wrk_limit_kind kind, const char *key,
                             int64_t now_ms, int64_t window_ms, long *count, int64_t *last_ms);
/* Forgets the failures of key (after a successful login). */
int wrk_store_login_failure_reset(wrk_store_t *s, enum wrk_limit_kind kind, const char *key);
/* Forgets every count whose window (window_ms from its first failure) is
 * over; *purged (may be NULL) gets how many. */
int wrk_store_login_failures_purge(wrk_store_t *s, int64_t now_ms, int64_t window_ms, long *purged);

/* ---- Presence -------------------------------------------------------------- */

/* Which connection (its reply channel) is in which room, for "who" and for
 * taking connections out of rooms they lost. */
typedef struct wrk_presence {
    char channel[128];
    int64_t room_id;
    int64_t user_id;
    char username[MC_USERNAME_MAX + 1];
    int is_staff; /* the user's current flag */
} wrk_presence_t;

typedef struct wrk_presence_list {
    wrk_presence_t *items;
    size_t n;
} wrk_presence_list_t;

/* Records that channel (under 128 bytes) is in room_id as user_id; again
 * is not an error. Returns 0, MC_EINVAL (channel too long). */
int wrk_store_presence_add(wrk_store_t *s, const char *channel, int64_t room_id, int64_t user_id);
/* As presence_add, and sets *first when channel is the user's first
 * connection in the room (it was not there, and no other connection of the
 * user is): the room hears of an arrival only then. Atomic, so that two
 * workers adding two connections of one user agree. */
int wrk_store_presence_join(wrk_store_t *s, const char *channel, int64_t room_id, int64_t user_id,
                            int *first);
/* Forgets channel (with prefix set: every channel that starts with it, such
 * as "<process>!") in room_id, or in every room when room_id is 0. Fills
 * *gone (release with wrk_presence_list_clear) with one of the removed
 * entries for each room and user left with no connection in that room: the
 * departures the room hears of. Atomic, as presence_join. */
int wrk_store_presence_leave(wrk_store_t *s, const char *channel, int prefix, int64_t room_id,
                             wrk_presence_list_t *gone);
/* Forgets channel in room_id, or in every room when room_id is 0. */
int wrk_store_presence_remove(wrk_store_t *s, const char *channel, int64_t room_id);
/* Fills *out with the connections in room_id (every room when 0) ordered by
 * username; release with wrk_presence_list_clear. */
int wrk_store_presence_list(wrk_store_t *s, int64_t room_id, wrk_presence_list_t *out);
void wrk_presence_list_clear(wrk_presence_list_t *l);

/* ---- Whispers ------------------------------------------------------------ */

typedef struct wrk_whisper {
    int64_t id; /* increasing, unique across every worker */
    char from[MC_USERNAME_MAX + 1];
    char to[MC_USERNAME_MAX + 1];
    char *body; /* owned, NUL-terminated, body_len bytes */
    size_t body_len;
    int64_t created_ms;
} wrk_whisper_t;

/* Whispers in increasing id order. */
typedef struct wrk_whisper_list {
    wrk_whisper_t *items;
    size_t n;
    int truncated; /* more matched than were returned */
} wrk_whisper_list_t;

/* Stores a whisper from one user to another at now_ms. client_id (may be
 * NULL) names it for its sender: a second call with the same sender and
 * client id stores nothing and gives the first whisper, with *duplicate =
 * 1 (duplicate may be NULL). Fills *out (may be NULL; release with
 * wrk_whisper_clear). Returns 0, MC_ENOTFOUND (no such user), MC_EINVAL
 * (client id over WRK_CLIENT_ID_MAX). */
int wrk_store_whisper_add(wrk_store_t *s, int64_t from_id, int64_t to_id, const char *body,
                          size_t body_len, const char *client_id, int64_t now_ms,
                          wrk_whisper_t *out, int *duplicate);
/* The whispers to or from user_id with an id above since: all of them, or
 * when more than limit (1..WRK_STORE_SINCE_MAX) the newest limit, truncated.
 * Fills *out (release with wrk_whisper_list_clear). */
int wrk_store_whispers_since(wrk_store_t *s, int64_t user_id, int64_t since, long limit,
                             wrk_whisper_list_t *out);
void wrk_whisper_clear(wrk_whisper_t *w);
void wrk_whisper_list_clear(wrk_whisper_list_t *l);

/* ---- Change log ---------------------------------------------------------- */

/* Stores in *seq the number of the latest change (0 when none). */
int wrk_store_change_last(wrk_store_t *s, int64_t *seq);
/* Calls fn for each change after `after`, in order; stops and returns fn's
 * value when non-zero. fn must not call this store. */
int wrk_store_change_each(wrk_store_t *s, int64_t after,
                          int (*fn)(void *arg, int64_t seq, enum wrk_change_kind kind, int64_t ref),
                          void *arg);

/* Claims every change not claimed yet by any connection to this store, so
 * that of several workers exactly one reacts to each change: stores in
 * *from and *to the range (from, to] now this caller's (empty when equal). */
int wrk_store_change_claim(wrk_store_t *s, int64_t *from, int64_t *to);

/* ---- Order locks ----------------------------------------------------------- */

/* A room's order lock, held by one connection of the database at a time,
 * whatever host it is on (worker/order.h says what it orders). PostgreSQL
 * holds them: advisory locks of the connection, which outlast its batches
 * and go with it when it ends, or when the server ends it (idle_timeout_ms).
 * sqlite holds none: wrk_store_has_order_locks is 0 there, the calls below
 * grant everything, and the workers of its one host keep their own. */
int wrk_store_has_order_locks(const wrk_store_t *s);
/* Takes room's lock, waiting for it when wait is set. Returns 0, MC_EAGAIN
 * (not waiting, and another connection holds it), MC_EDB. Take a lock at
 * most once before releasing it. */
int wrk_store_order_lock(wrk_store_t *s, int64_t room, int wait);
/* Takes the locks of rooms[0..n) (at most WRK_STORE_LOCK_ROOMS_MAX),
 * waiting for each, in one round trip: in the order of their keys, as
 * every connection takes several, so that two never wait for each other.
 * Returns 0, MC_EINVAL (too many), MC_EDB. */
#define WRK_STORE_LOCK_ROOMS_MAX 64
int wrk_store_order_lock_rooms(wrk_store_t *s, const int64_t *rooms, size_t n);
/* Releases room's lock, or every order lock of the connection. */
int wrk_store_order_unlock(wrk_store_t *s, int64_t room);
int wrk_store_order_unlock_all(wrk_store_t *s);

/* ---- Publishing ------------------------------------------------------------ */

/* A room's chat messages are published (handed to the channel layer) after
 * the transaction that stores them committed, and under the room's order
 * lock: a worker stopped or killed between the two leaves messages stored
 * that nobody saw, and its lock goes to the next worker, whose newer
 * messages must not reach the room first. So the transaction that stores a
 * batch marks each of its rooms as publishing, with the connections that
 * sent the messages, and the worker clears the marks once it published
 * them (wrk_store_published, in a transaction of its own: not inside a
 * batch), before it lets the locks go. Only rooms with a message that has
 * a client id are marked: one without is stored again when its envelope
 * runs again, and a mark would publish both. A mark that the
 * next holder of a room's lock finds set was left by a holder that never
 * published: wrk_store_unpublished hands its messages over, to be
 * published first. A message is published with its id as its seq, and a
 * socket joins a room after the newest published one
 * (wrk_store_published_last, chl_group_add_after), so publishing a
 * message twice delivers it once. */

/* A message left unpublished, and the connection that sent it. */
typedef struct wrk_unpublished {
    wrk_message_t m;
    char sender[160]; /* "" when not known */
} wrk_unpublished_t;

struct wrk_unpublished_list {
    wrk_unpublished_t *items;
    size_t n;
};

void wrk_unpublished_list_clear(wrk_unpublished_list_t *l);

/* The messages of rooms[0..n) (at most WRK_STORE_LOCK_ROOMS_MAX) that a
 * batch marked and nobody published, oldest first (at most
 * WRK_STORE_SINCE_MAX; deleted ones left out). Call it holding the rooms'
 * order locks. Returns 0, MC_EDB, MC_ENOMEM. */
int wrk_store_unpublished(wrk_store_t *s, const int64_t *rooms, size_t n,
                          wrk_unpublished_list_t *out);

/* Clears the marks of rooms[0..n): their messages are published. */
int wrk_store_published(wrk_store_t *s, const int64_t *rooms, size_t n);

/* *id: the newest message of room that is published for sure (every one
 * up to it was, or is not to be: one stored again under a new id), 0 when
 * none; those a pending mark may have left unpublished are above it. Call
 * it holding the room's order lock. Returns 0 or MC_EDB. */
int wrk_store_published_last(wrk_store_t *s, int64_t room, int64_t *id);

/* ---- Copying --------------------------------------------------------------- */

typedef struct wrk_store_copy_counts {
    int64_t users, rooms, sessions, messages, whispers, secrets;
} wrk_store_copy_counts_t;

/* Told, after each page of rows, how many rows of table are copied (done)
 * of how many (total). */
typedef void (*wrk_store_copy_progress_fn)(void *arg, const char *table, int64_t done,
                                           int64_t total);

/* Copies what from keeps into to, whatever their backends: users with their
 * password hashes and flags, rooms, sessions, messages with their ids,
 * edits and deletions, whispers, and the secrets the workers share; and
 * sets each id counter of to past the ids from ever handed out. Presence, login failures and the
 * change log are not copied. to must hold none of these (else MC_EEXIST, and nothing is written);
 * both must be migrated (else MC_EINVAL). The copy is one transaction on to, and reads from in one
 * transaction: stop every other writer of from first. progress (may be NULL) is told how it goes.
 * Returns 0 and *counts, or MC_EEXIST, MC_EINVAL, MC_EDB, MC_ENOMEM; the
 * reason is in wrk_store_errmsg(to). */
int wrk_store_copy(wrk_store_t *from, wrk_store_t *to, wrk_store_copy_progress_fn progress,
                   void *arg, wrk_store_copy_counts_t *counts);

#endif
