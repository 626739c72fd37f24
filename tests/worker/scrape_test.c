/* The metrics endpoint (worker/scrape.c): its request parser, whole and cut
 * at every byte, and its thread over real sockets: answers, limits, and a
 * client that says nothing holding up neither the loop nor other scrapes
 * for more than the timeout. */
#include "common/error.h"
#include "worker/scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

/* Every proper prefix of a request is "more to come"; the whole is status. */
static void parses(const char *req, int status)
{
    size_t len = strlen(req);
    for (size_t cut = 0; cut < len; cut++)
        if (wrk_scrape_request(req, cut) != 0)
            fail_msg("%s cut at %zu: %d", req, cut, wrk_scrape_request(req, cut));
    assert_int_equal(wrk_scrape_request(req, len), status);
}

static void requests_are_parsed_whole_and_cut_anywhere(void **state)
{
    (void)state;
    parses("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200);
    parses("GET /metrics?name[]=up HTTP/1.0\r\n\r\n", 200);
    parses("GET /metrics HTTP/1.1\n\n", 200);
    parses("GET /metricsx HTTP/1.1\r\n\r\n", 404);
    parses("GET / HTTP/1.1\r\n\r\n", 404);
    parses("POST /metrics HTTP/1.1\r\n\r\n", 405);
    parses("get /metrics HTTP/1.1\r\n\r\n", 400);
    parses("GET  /metrics HTTP/1.1\r\n\r\n", 400);
    parses("GET /metrics\r\n\r\n", 400);
    parses("GET /metrics SPDY/3\r\n\r\n", 400);
    parses("\r\n\r\n", 400);
}

static void a_head_over_the_limit_is_431(void **state)
{
    (void)state;
    char big[WRK_SCRAPE_HEAD_MAX + 64];
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    assert_int_equal(wrk_scrape_request(big, WRK_SCRAPE_HEAD_MAX - 1), 0);
    assert_int_equal(wrk_scrape_request(big, WRK_SCRAPE_HEAD_MAX), 431);
    memcpy(big + WRK_SCRAPE_HEAD_MAX + 10, "\r\n\r\n", 4);
    assert_int_equal(wrk_scrape_request(big, WRK_SCRAPE_HEAD_MAX + 14), 431);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Sends req and reads the whole answer into out (NUL-terminated). */
static void ask(int port, const char *req, size_t reqlen, char *out, size_t size)
{
    int fd = dial(port);
    assert_int_equal(send(fd, req, reqlen, MSG_NOSIGNAL), (ssize_t)reqlen);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < size && (n = recv(fd, out + len, size - 1 - len, 0)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    close(fd);
}

static void the_endpoint_answers_what_was_published(void **state)
{
    (void)state;
    wrk_scrape_t *s;
    assert_int_equal(wrk_scrape_start(&s, "127.0.0.1:0"), 0);
    int port = wrk_scrape_port(s);
    assert_true(port > 0);
    static wrk_metrics_t m;
    memset(&m, 0, sizeof(m));
    wrk_metrics_count(&m, WRK_M_COMMANDS, "send");
    wrk_scrape_publish(s, &m);
    static char answer[65536];
    const char *get = "GET /metrics HTTP/1.1\r\nHost: w\r\n\r\n";
    ask(port, get, strlen(get), answer, sizeof(answer));
    assert_non_null(strstr(answer, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(answer, "content-type: text/plain; version=0.0.4\r\n"));
    assert_non_null(strstr(answer, "\nchat_worker_commands_total{command=\"send\"} 1\n"));
    /* What the loop publishes next, the next scrape shows. */
    wrk_metrics_count(&m, WRK_M_COMMANDS, "send");
    wrk_scrape_publish(s, &m);
    ask(port, get, strlen(get), answer, sizeof(answer));
    assert_non_null(strstr(answer, "\nchat_worker_commands_total{command=\"send\"} 2\n"));
    const char *other = "GET /other HTTP/1.1\r\n\r\n";
    ask(port, other, strlen(other), answer, sizeof(answer));
    assert_non_null(strstr(answer, "HTTP/1.1 404 Not Found\r\n"));
    static char big[WRK_SCRAPE_HEAD_MAX + 100];
    memset(big, 'x', sizeof(big));
    memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
    ask(port, big, sizeof(big), answer, sizeof(answer));
    assert_non_null(strstr(answer, "HTTP/1.1 431 "));
    wrk_scrape_stop(s);
    wrk_scrape_stop(NULL);
}

/* A client that connects and says nothing: the loop still publishes at
 * once, and the next scrape is answered once the silent one timed out. */
static void a_silent_client_stalls_nothing(void **state)
{
    (void)state;
    wrk_scrape_t *s;
    assert_int_equal(wrk_scrape_start(&s, "127.0.0.1:0"), 0);
    int port = wrk_scrape_port(s);
    int silent = dial(port);
    static wrk_metrics_t m;
    memset(&m, 0, sizeof(m));
    for (int i = 0; i < 1000; i++) {
        wrk_metrics_count(&m, WRK_M_COMMANDS, "who");
        wrk_scrape_publish(s, &m);
    }
    /* The publishes did not wait for the client: it is still being waited
     * for (its connection is open, nothing came). */
    char c;
    assert_int_equal(recv(silent, &c, 1, MSG_DONTWAIT), -1);
    static char answer[65536];
    const char *get = "GET /metrics HTTP/1.1\r\n\r\n";
    ask(port, get, strlen(get), answer, sizeof(answer));
    assert_non_null(strstr(answer, "\nchat_worker_commands_total{command=\"who\"} 1000\n"));
    /* The silent client got no answer: it was closed. */
    assert_int_equal(recv(silent, &c, 1, 0), 0);
    close(silent);
    wrk_scrape_stop(s);
}

static void bad_addresses_are_refused(void **state)
{
    (void)state;
    wrk_scrape_t *s;
    assert_int_equal(wrk_scrape_start(&s, "nowhere"), MC_EINVAL);
    assert_int_equal(wrk_scrape_start(&s, "127.0.0.1:"), MC_EINVAL);
    assert_int_equal(wrk_scrape_start(&s, "[::1:9"), MC_EINVAL);
    assert_int_equal(wrk_scrape_start(&s, "192.0.2.1:9101"), MC_EIO); /* not ours */
    assert_null(s);
    assert_int_equal(wrk_scrape_start(&s, "[::1]:0"), 0);
    wrk_scrape_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(requests_are_parsed_whole_and_cut_anywhere),
        cmocka_unit_test(a_head_over_the_limit_is_431),
        cmocka_unit_test(the_endpoint_answers_what_was_published),
        cmocka_unit_test(a_silent_client_stalls_nothing),
        cmocka_unit_test(bad_addresses_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
