/*
 * worker/service.h: the chat-worker process: settings from flags and CHAT_*
 * variables, then the loop that pops envelopes from the worker queue,
 * handles them (worker/dispatch.h) and acknowledges them, requeues the in-flight
 * envelopes of dead workers every few seconds, and reacts to changes made
 * elsewhere every second.
 *
 * SIGINT and SIGTERM stop the loop after the envelope in hand; they are
 * blocked and polled between pops, so no handler and no global flag exist.
 */
#ifndef MC_WORKER_SERVICE_H
#define MC_WORKER_SERVICE_H

/* Runs chat-worker with its command line. Returns the process exit status:
 * 0 after a signal, 1 when the database or Redis cannot be opened (or the
 * metrics address listened on), 2 for a bad command line. */
int wrk_service_main(int argc, char **argv);

#endif
