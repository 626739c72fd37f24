/*
 * channel-layer/local.h: a process endpoint's own view of its groups.
 *
 * Which local connections are in which group, indexed both ways: by group
 * for the fan-out of a group message, by connection for its list of groups
 * and for forgetting it. Owned by one chl_proc_t, used on its loop only.
 * Group names are copied in; nothing returned outlives the next change.
 */
#ifndef MC_CHANNEL_LAYER_LOCAL_H
#define MC_CHANNEL_LAYER_LOCAL_H

#include <stddef.h>
#include <stdint.h>

typedef struct chl__local chl__local_t;

/* Returns a new, empty table, or NULL when out of memory. */
chl__local_t *chl__local_new(void);
void chl__local_free(chl__local_t *t); /* NULL does nothing */

/* Adds conn to group (name of len bytes), whose members then are handed
 * no message of seq seq or below (0: none; chl_group_add_after). Returns 1
 * when it was added, 0 when it was a member already (seq counts all the
 * same), MC_ENOMEM (nothing changed). */
int chl__local_add(chl__local_t *t, const char *group, size_t len, uint64_t conn, uint64_t seq);

/* Removes conn from group. Returns 1 when it was a member, else 0. */
int chl__local_remove(chl__local_t *t, const char *group, size_t len, uint64_t conn);

/* The members of group, for a message of seq (chl_group_msg_t; 0: none):
 * *conns points into the table and is valid until the next change; their
 * number is returned (0 when the group is unknown). When seq is not above
 * the last one the group's members were handed, they had it (or a later
 * one) already: *had is set and none are returned; else seq becomes the
 * last one handed. */
size_t chl__local_members_for(chl__local_t *t, const char *group, size_t len, uint64_t seq,
                              const uint64_t **conns, int *had);

/* Calls fn with the NUL-terminated name of every group of conn; fn must not
 * change the table. */
void chl__local_each_group(const chl__local_t *t, uint64_t conn,
                           void (*fn)(void *arg, const char *group), void *arg);

/* Calls fn with every group that has members, and its members; fn must
 * not change the table. */
void chl__local_each(const chl__local_t *t,
                     void (*fn)(void *arg, const char *group, const uint64_t *conns, size_t n),
                     void *arg);

/* Removes conn from every group. */
void chl__local_forget(chl__local_t *t, uint64_t conn);

#endif
