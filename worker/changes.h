/*
 * worker/changes.h: the worker's reactions to what changed elsewhere: rooms
 * added, renamed, deleted or made staff-only, sessions that ended, users
 * deactivated or whose staff flag changed (by any worker, the staff API or
 * chatctl: the store's change log says), and interface processes that
 * died.
 *
 * Called by chat-worker's loop (worker/service.h), beside the dispatch of
 * envelopes; answers leave through the port (worker/port.h).
 */
#ifndef MC_WORKER_CHANGES_H
#define MC_WORKER_CHANGES_H

#include "worker/app.h"

/* Ends the sessions that expired, then reacts to every change made
 * anywhere since the last call by any worker (each change is claimed by one
 * worker; a burst is handled in rounds, all of it): pushes room lists,
 * takes sockets out of rooms that were deleted or became staff-only,
 * closes with 4001 "session ended" the sockets of every session that ended
 * (a logout, expiry, a new password: the user's other sessions keep
 * theirs) and every socket of users who were deactivated, and with 4002
 * "rights changed" every socket of users who gained or lost staff. Call
 * every second or so. Returns 0 or MC_EDB (what was claimed and not
 * handled is handled by the next call). */
int wrk_changes_poll(wrk_app_t *app);

/* An interface process died (its heartbeat expired; the channel layer has
 * dropped its group memberships): forgets its sockets' presence and tells
 * each room of the users who had no other socket there. Returns 0,
 * MC_EINVAL (a process name too long) or MC_EDB. */
int wrk_changes_process_gone(wrk_app_t *app, const char *process);

#endif
