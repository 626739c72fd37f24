/*
 * tests/bench/chat_login.c: chat-bench's logins over blocking HTTP/1.1,
 * one request per connection, in a few threads (see chat_login.h).
 */
#include "tests/bench/chat_login.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define LOGIN_RESP_MAX (256 * 1024)

typedef struct login_pool {
    bench_t *b;
    pthread_mutex_t mu;
    long next, done, failed;
    char first_error[256];
} login_pool_t;

/* Sends req to t and reads the whole response into buf (NUL-terminated).
 * Returns the response length, or -1. */
static long http_exchange(const bench_t *b, const target_t *t, long user, const char *req,
                          size_t req_len, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (b->cfg.sources > 1) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(user % b->cfg.sources));
        bind(fd, (struct sockaddr *)&src, sizeof(src));
    }
    long got = -1;
    if (connect(fd, (const struct sockaddr *)&t->addr, sizeof(t->addr)) != 0)
        goto out;
    for (size_t off = 0; off < req_len;) {
        ssize_t w = write(fd, req + off, req_len - off);
        if (w <= 0)
            goto out;
        off += (size_t)w;
    }
    size_t len = 0;
    long need = -1; /* total length once the head and Content-Length are known */
    while (len + 1 < cap && (need < 0 || (long)len < need)) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        char *end = need < 0 ? strstr(buf, "\r\n\r\n") : NULL;
        if (end) {
            long body = 0;
            for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
                if (strncasecmp(h + 2, "content-length:", 15) == 0)
                    body = strtol(h + 17, NULL, 10);
            need = (long)(end + 4 - buf) + body;
        }
    }
    buf[len] = '\0';
    got = (long)len;
out:
    close(fd);
    return got;
}

/* Copies the value of cookie name from the Set-Cookie headers of resp. */
static int set_cookie(const char *resp, const char *name, char *out, size_t cap)
{
    const char *end = strstr(resp, "\r\n\r\n");
    size_t nl = strlen(name);
    for (const char *h = strstr(resp, "\r\n"); h && (!end || h < end); h = strstr(h + 2, "\r\n")) {
        const char *v = h + 2;
        if (strncasecmp(v, "set-cookie:", 11) != 0)
            continue;
        v += 11;
        while (*v == ' ')
            v++;
        if (strncmp(v, name, nl) != 0 || v[nl] != '=')
            continue;
        v += nl + 1;
        size_t n = strcspn(v, ";\r");
        if (n == 0 || n >= cap)
            return -1;
        memcpy(out, v, n);
        out[n] = '\0';
        return 0;
    }
    return -1;
}

/* Appends s to out, form-urlencoded. */
static size_t form_escape(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s && n + 4 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = '\0';
    return n;
}

static int login_one(bench_t *b, long user, char *resp, char *err, size_t errlen)
{
    const target_t *t = &b->targets[user % b->ntargets];
    char req[2048], name[128], csrf[128], hidden[128], sess[128];
    snprintf(name, sizeof(name), "%s%ld", b->cfg.user_prefix, b->cfg.first_user + user);
    int n = snprintf(req, sizeof(req),
                     "GET /accounts/login/?next=/ HTTP/1.1\r\nHost: %s\r\n"
                     "User-Agent: chat-bench\r\nAccept: text/html\r\n\r\n",
                     t->host);
    long len = http_exchange(b, t, user, req, (size_t)n, resp, LOGIN_RESP_MAX);
    if (len <= 0 || strncmp(resp, "HTTP/1.1 200", 12) != 0) {
        snprintf(err, errlen, "GET /accounts/login/ on %s: %.40s", t->host,
                 len > 0 ? resp : "no answer");
        return -1;
    }
    const char *field = strstr(resp, "name=\"csrfmiddlewaretoken\"");
    const char *val = field ? strstr(field, "value=\"") : NULL;
    if (set_cookie(resp, "csrftoken", csrf, sizeof(csrf)) != 0 || !val) {
        snprintf(err, errlen, "the login form of %s has no csrftoken cookie or field", t->host);
        return -1;
    }
    val += 7;
    size_t vl = strcspn(val, "\"");
    if (vl >= sizeof(hidden))
        return -1;
    memcpy(hidden, val, vl);
    hidden[vl] = '\0';
    char body[1024], e1[256], e2[256], e3[256];
    form_escape(e1, sizeof(e1), hidden);
    form_escape(e2, sizeof(e2), name);
    form_escape(e3, sizeof(e3), b->cfg.password);
    int bl = snprintf(body, sizeof(body),
                      "csrfmiddlewaretoken=%s&username=%s&password=%s&next=%%2F", e1, e2, e3);
    n = snprintf(req, sizeof(req),
                 "POST /accounts/login/ HTTP/1.1\r\nHost: %s\r\nUser-Agent: chat-bench\r\n"
                 "Origin: %s\r\nReferer: %s/accounts/login/\r\nCookie: csrftoken=%s\r\n"
                 "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"
                 "\r\n%s",
                 t->host, t->origin, t->origin, csrf, bl, body);
    len = http_exchange(b, t, user, req, (size_t)n, resp, LOGIN_RESP_MAX);
    if (len <= 0 || set_cookie(resp, "sessionid", sess, sizeof(sess)) != 0) {
        snprintf(err, errlen, "login of %s on %s refused: %.40s", name, t->host,
                 len > 0 ? resp : "no answer");
        return -1;
    }
    /* Django renews the CSRF token at login; keep whichever is current. */
    set_cookie(resp, "csrftoken", csrf, sizeof(csrf));
    snprintf(b->cookies[user], COOKIE_MAX, "csrftoken=%s; sessionid=%s", csrf, sess);
    return 0;
}

static void *login_thread(void *arg)
{
    login_pool_t *pool = arg;
    char *resp = malloc(LOGIN_RESP_MAX);
    if (!resp)
        return NULL;
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        long user = pool->next < pool->b->cfg.users + pool->b->cfg.flooders ? pool->next++ : -1;
        pthread_mutex_unlock(&pool->mu);
        if (user < 0)
            break;
        char err[256];
        int rc = login_one(pool->b, user, resp, err, sizeof(err));
        pthread_mutex_lock(&pool->mu);
        if (rc != 0 && pool->failed++ == 0)
            snprintf(pool->first_error, sizeof(pool->first_error), "%s", err);
        pool->done++;
        pthread_mutex_unlock(&pool->mu);
    }
    free(resp);
    return NULL;
}

int login_all(bench_t *b)
{
    login_pool_t pool = {.b = b};
    pthread_mutex_init(&pool.mu, NULL);
    long all = b->cfg.users + b->cfg.flooders;
    long nt = b->cfg.login_threads < all ? b->cfg.login_threads : all;
    pthread_t th[64];
    if (nt > 64)
        nt = 64;
    uint64_t t0 = now_us();
    for (long i = 0; i < nt; i++)
        pthread_create(&th[i], NULL, login_thread, &pool);
    for (long i = 0; i < nt; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&pool.mu);
    double secs = (double)(now_us() - t0) / 1e6;
    printf("login users=%ld failed=%ld seconds=%.2f logins_per_s=%.0f\n", all, pool.failed, secs,
           (double)all / (secs > 0 ? secs : 1e-9));
    fflush(stdout);
    if (pool.failed) {
        fprintf(stderr, "chat-bench: %ld logins failed; the first: %s\n", pool.failed,
                pool.first_error);
        return -1;
    }
    return 0;
}
