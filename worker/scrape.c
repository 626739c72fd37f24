/*
 * worker/scrape.c: the metrics endpoint's thread, its one-connection-at-a-
 * time server and its request parser (worker/scrape.h).
 */
#include "worker/scrape.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define STOP_CHECK_MS 200 /* how soon the thread sees a stop */

struct wrk_scrape {
    int fd;
    int port;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock; /* guards published */
    wrk_metrics_t published;
};

/* ---- The request ------------------------------------------------------------- */

static int is_token_char(char c)
{
    return c > 0x20 && c < 0x7f;
}

int wrk_scrape_request(const char *buf, size_t len)
{
    /* The head ends at the first blank line. */
    size_t end = 0;
    for (size_t i = 0; i + 1 < len && !end; i++) {
        if (buf[i] == '\n' && buf[i + 1] == '\n')
            end = i + 2;
        else if (i + 3 < len && memcmp(buf + i, "\r\n\r\n", 4) == 0)
            end = i + 4;
    }
    if (!end)
        return len >= WRK_SCRAPE_HEAD_MAX ? 431 : 0;
    if (end > WRK_SCRAPE_HEAD_MAX)
        return 431;
    /* METHOD SP TARGET SP HTTP/1.x CRLF */
    size_t m = 0;
    while (m < end && buf[m] >= 'A' && buf[m] <= 'Z')
        m++;
    if (m == 0 || buf[m] != ' ')
        return 400;
    size_t t = m + 1, te = t;
    while (te < end && is_token_char(buf[te]))
        te++;
    if (te == t || buf[te] != ' ' || end - te < 9 || memcmp(buf + te + 1, "HTTP/1.", 7) != 0)
        return 400;
    if (!(m == 3 && memcmp(buf, "GET", 3) == 0))
        return 405;
    size_t plen = te - t;
    const char *path = buf + t;
    if (plen >= 8 && memcmp(path, "/metrics", 8) == 0 && (plen == 8 || path[8] == '?'))
        return 200;
    return 404;
}

/* ---- Serving ------------------------------------------------------------------ */

/* Writes data[0..len) before deadline (ms, monotonic). Returns 0 or -1. */
static int write_all(int fd, const char *data, size_t len, int64_t deadline)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        int64_t left = deadline - mc_mono_ms();
        struct pollfd p = {fd, POLLOUT, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
    }
    return 0;
}

static void answer(wrk_scrape_t *s, int fd, int status, int64_t deadline)
{
    char *body = NULL;
    size_t blen = 0;
    if (status == 200) {
        wrk_metrics_t copy;
        pthread_mutex_lock(&s->lock);
        copy = s->published;
        pthread_mutex_unlock(&s->lock);
        if (wrk_metrics_render(&copy, &body, &blen))
            status = 500;
    }
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 500 ? "Internal Server Error"
                                         : "Bad Request";
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n"
                     "cache-control: no-store\r\nconnection: close\r\n\r\n",
                     status, reason, status == 200 ? "text/plain; version=0.0.4" : "text/plain",
                     status == 200 ? blen : strlen(reason) + 1);
    if (write_all(fd, head, (size_t)n, deadline) == 0) {
        if (status == 200)
            write_all(fd, body, blen, deadline);
        else if (write_all(fd, reason, strlen(reason), deadline) == 0)
            write_all(fd, "\n", 1, deadline);
    }
    free(body);
}

/* One connection: its head within the timeout, one answer, closed. A
 * client too slow or too big gets nothing more than that. */
static void serve(wrk_scrape_t *s, int fd)
{
    char buf[WRK_SCRAPE_HEAD_MAX];
    size_t len = 0;
    int64_t deadline = mc_mono_ms() + WRK_SCRAPE_TIMEOUT_MS;
    int status = 0;
    while (status == 0) {
        int64_t left = deadline - mc_mono_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return; /* too slow: closed without an answer */
        ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n <= 0)
            return;
        len += (size_t)n;
        status = wrk_scrape_request(buf, len);
    }
    answer(s, fd, status, mc_mono_ms() + WRK_SCRAPE_TIMEOUT_MS);
}

static void *run(void *arg)
{
    wrk_scrape_t *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, STOP_CHECK_MS) <= 0)
            continue;
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve(s, fd);
        close(fd);
    }
    return NULL;
}

/* ---- Starting and stopping ------------------------------------------------------ */

/* Splits "host:port" or "[host]:port" into host and port. */
static int split(const char *address, char *host, size_t hsize, const char **port)
{
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || !colon[1])
        return MC_EINVAL;
    const char *h = address;
    size_t n = (size_t)(colon - address);
    if (h[0] == '[') {
        if (n < 2 || h[n - 1] != ']')
            return MC_EINVAL;
        h++;
        n -= 2;
    }
    if (n == 0 || n >= hsize)
        return MC_EINVAL;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = colon + 1;
    return 0;
}

static int listen_on(const char *address, int *fd_out, int *port_out)
{
    char host[256];
    const char *port;
    if (split(address, host, sizeof(host), &port))
        return MC_EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return MC_EINVAL;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    int rc = fd < 0 ? MC_EIO : 0;
    if (rc == 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 16))
            rc = MC_EIO;
    }
    freeaddrinfo(res);
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    if (rc == 0 && getsockname(fd, (struct sockaddr *)&sa, &salen))
        rc = MC_EIO;
    if (rc) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    *fd_out = fd;
    *port_out = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
                                         : ntohs(((struct sockaddr_in *)&sa)->sin_port);
    return 0;
}

int wrk_scrape_start(wrk_scrape_t **out, const char *address)
{
    *out = NULL;
    wrk_scrape_t *s = calloc(1, sizeof(*s));
    if (!s)
        return MC_ENOMEM;
    int rc = listen_on(address, &s->fd, &s->port);
    if (rc) {
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->stop, 0);
    if (pthread_create(&s->thread, NULL, run, s) != 0) {
        pthread_mutex_destroy(&s->lock);
        close(s->fd);
        free(s);
        return MC_ENOMEM;
    }
    *out = s;
    return 0;
}

int wrk_scrape_port(const wrk_scrape_t *s)
{
    return s->port;
}

void wrk_scrape_publish(wrk_scrape_t *s, const wrk_metrics_t *m)
{
    pthread_mutex_lock(&s->lock);
    s->published = *m;
    pthread_mutex_unlock(&s->lock);
}

void wrk_scrape_stop(wrk_scrape_t *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->lock);
    close(s->fd);
    free(s);
}
