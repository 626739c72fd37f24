/*
 * worker/scrape.h: the worker's metrics endpoint. Prometheus scrapes
 * GET /metrics on an address of the worker's own (CHAT_METRICS_LISTEN),
 * answered by a small thread of its own, so that nothing a client does can
 * stall the worker's loop.
 *
 * The thread serves one connection at a time: a request head of at most
 * WRK_SCRAPE_HEAD_MAX bytes, read within WRK_SCRAPE_TIMEOUT_MS, gets one
 * answer and the connection closes. The loop publishes its counters
 * (wrk_scrape_publish, a copy under a lock); a scrape renders the latest
 * copy.
 */
#ifndef MC_WORKER_SCRAPE_H
#define MC_WORKER_SCRAPE_H

#include <stddef.h>

#include "worker/metrics.h"

#define WRK_SCRAPE_HEAD_MAX 4096   /* bytes of a request head (431 above) */
#define WRK_SCRAPE_TIMEOUT_MS 2000 /* to send the head, and to take the answer */

typedef struct wrk_scrape wrk_scrape_t;

/* Listens on address ("host:port", "[v6]:port"; port 0 picks a free one)
 * and starts the thread. Returns 0 and *out, MC_EINVAL (not an address),
 * MC_EIO (cannot listen there), MC_ENOMEM. */
int wrk_scrape_start(wrk_scrape_t **out, const char *address);

/* The port it listens on (useful after port 0). */
int wrk_scrape_port(const wrk_scrape_t *s);

/* Makes m what the next scrapes show (copied). Call from the loop's thread. */
void wrk_scrape_publish(wrk_scrape_t *s, const wrk_metrics_t *m);

/* Stops the thread (within a few hundred ms) and closes the socket.
 * wrk_scrape_stop(NULL) does nothing. */
void wrk_scrape_stop(wrk_scrape_t *s);

/* The request head in buf[0..len) (outside input: any bytes). Returns 0
 * while it may still grow into a request (no blank line yet), else the
 * status to answer: 200 for GET /metrics (a query allowed), 404 another
 * path, 405 another method, 400 a malformed request line, 431 a head over
 * WRK_SCRAPE_HEAD_MAX bytes. */
int wrk_scrape_request(const char *buf, size_t len);

#endif
