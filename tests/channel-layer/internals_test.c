/* The parts of the channel layer that do no I/O: names, framing, the hash
 * ring and the local group table. */
#include "channel-layer/internal.h"
#include "channel-layer/local.h"
#include "channel-layer/sentinel.h"
#include "common/error.h"

#include <hiredis/hiredis.h>
#include <limits.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void names_follow_the_asgi_rules(void **state)
{
    (void)state;
    long bang;
    assert_int_equal(chl__check_channel("http.request", &bang), 0);
    assert_int_equal(bang, -1);
    assert_int_equal(chl__check_channel("ifc.h.1.ab!12", &bang), 0);
    assert_int_equal(bang, 10);
    assert_int_equal(chl__check_channel("ifc!", &bang), 0);
    static const char *const bad[] = {"", "!a", "a!b!c", "a b", "a:b", "a\nb", "a|b", "é"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(chl__check_channel(bad[i], &bang), MC_EINVAL);
    assert_int_equal(chl__check_channel(NULL, &bang), MC_EINVAL);
    assert_int_equal(chl__check_plain("room-5"), 0);
    assert_int_equal(chl__check_plain("p!1"), MC_EINVAL);
    char name[CHL__NAME_MAX + 2];
    memset(name, 'a', sizeof(name));
    name[CHL__NAME_MAX] = '\0';
    assert_int_equal(chl__check_plain(name), 0);
    name[CHL__NAME_MAX] = 'a';
    name[CHL__NAME_MAX + 1] = '\0';
    assert_int_equal(chl__check_plain(name), MC_EINVAL);
    assert_int_equal(chl__process_len("abc!12"), 3);
    assert_int_equal(chl__process_len("abc"), 3);
    char made[CHL__NAME_MAX + 1];
    chl__make_name(made, sizeof(made), "ifc");
    assert_int_equal(chl__check_plain(made), 0);
    assert_int_equal(strncmp(made, "ifc.", 4), 0);
}

static void frames_round_trip_and_every_cut_is_refused(void **state)
{
    (void)state;
    char *buf;
    size_t len;
    const char payload[] = {'{', '\0', '\n', '|', '}'};
    assert_int_equal(chl__frame_build(&buf, &len, CHL__MSG, 1234, "p!7", 0, payload, 5), 0);
    chl__frame_t f;
    assert_int_equal(chl__frame_parse(&f, buf, len), 0);
    assert_int_equal(f.kind, CHL__MSG);
    assert_int_equal(f.deadline, 1234);
    assert_int_equal(f.name_len, 3);
    assert_memory_equal(f.name, "p!7", 3);
    assert_int_equal(f.len, 5);
    assert_memory_equal(f.payload, payload, 5);
    /* every cut inside the header is refused; cuts in the payload shorten it,
     * which the framing cannot know (Redis keeps elements whole) */
    size_t header = len - 5;
    for (size_t cut = 0; cut < header; cut++) {
        char *copy = malloc(cut ? cut : 1); /* exactly cut bytes, for ASan */
        memcpy(copy, buf, cut);
        assert_int_equal(chl__frame_parse(&f, copy, cut), MC_EPROTO);
        free(copy);
    }
    free(buf);
    char big[10];
    assert_int_equal(chl__frame_build(&buf, &len, CHL__MSG, 0, "c", 0, big, CHL__MSG_MAX + 1),
                     MC_ETOOBIG);
    assert_int_equal(chl__frame_build(&buf, &len, CHL__GROUP, 0, "room", 0, NULL, 0), 0);
    assert_int_equal(chl__frame_parse(&f, buf, len), 0);
    assert_int_equal(f.len, 0);
    assert_int_equal(f.seq, 0);
    free(buf);
    /* a group copy's seq rides after its name, the largest too */
    assert_int_equal(chl__frame_build(&buf, &len, CHL__GROUP, 9, "room-1", UINT64_MAX, "x", 1), 0);
    assert_int_equal(chl__frame_parse(&f, buf, len), 0);
    assert_int_equal(f.name_len, 6);
    assert_memory_equal(f.name, "room-1", 6);
    assert_true(f.seq == UINT64_MAX);
    assert_int_equal(f.len, 1);
    free(buf);
    /* a seq that is empty, 0, led by a zero, past 2^64 or not a number is
     * not ours */
    const char *bad[] = {"g9|room|\nx",
                         "g9|room|0\nx",
                         "g9|room|07\nx",
                         "g9|room|1a\nx",
                         "g9|room|1|2\nx",
                         "g9||5\nx",
                         "g9|room|18446744073709551616\nx"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(chl__frame_parse(&f, bad[i], strlen(bad[i])), MC_EPROTO);
}

/* Commands are written as hiredis writes them, binary arguments and empty
 * ones included, and numbers in decimal as printf writes them. */
/* A queue element marked as having more behind it is a message like
 * any other; only its mark differs. */
static void a_message_marked_more_is_a_message(void **state)
{
    (void)state;
    char *buf;
    size_t len;
    chl__frame_t f;
    assert_int_equal(chl__frame_build(&buf, &len, CHL__MSG_MORE, 77, "jobs", 0, "hi", 2), 0);
    assert_int_equal(buf[0], 'M');
    assert_int_equal(chl__frame_parse(&f, buf, len), 0);
    assert_int_equal(f.kind, CHL__MSG);
    assert_int_equal(f.more, 1);
    assert_int_equal(f.deadline, 77);
    assert_memory_equal(f.name, "jobs", 4);
    assert_memory_equal(f.payload, "hi", 2);
    buf[0] = CHL__MSG;
    assert_int_equal(chl__frame_parse(&f, buf, len), 0);
    assert_int_equal(f.kind, CHL__MSG);
    assert_int_equal(f.more, 0);
    buf[0] = 'G'; /* only a message has a marked letter */
    assert_int_equal(chl__frame_parse(&f, buf, len), MC_EPROTO);
    free(buf);
}

static void commands_and_numbers_are_written_as_redis_reads_them(void **state)
{
    (void)state;
    /* Lengths of one, two, three and four digits. */
    static char long_arg[1000];
    memset(long_arg, 'x', sizeof(long_arg));
    const char *argv[] = {"EVALSHA", "", "a\r\nb\0c", "12345678901", long_arg, long_arg, long_arg};
    size_t lens[] = {7, 0, 6, 11, 99, 100, 1000};
    char *want = NULL;
    long long wlen = redisFormatCommandArgv(&want, 7, argv, lens);
    assert_true(wlen > 0);
    size_t size = chl__resp_size(7, lens);
    assert_int_equal(size, (size_t)wlen);
    char *got = malloc(size);
    assert_non_null(got);
    assert_int_equal(chl__resp_write(got, 7, argv, lens), size);
    assert_memory_equal(got, want, size);
    free(got);
    redisFreeCommand(want);
    static const long nums[] = {0, 7, 9, 10, 99, 100, -1, -99, 60000, 120000, LONG_MAX, LONG_MIN};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        char buf[24], ref[24];
        chl__decimal(buf, nums[i]);
        snprintf(ref, sizeof(ref), "%ld", nums[i]);
        assert_string_equal(buf, ref);
    }
}

static void the_ring_spreads_names_and_ignores_the_order_of_servers(void **state)
{
    (void)state;
    chl__ring_t a, b, one;
    assert_int_equal(chl__ring_init(&a, "redis://h1:1,redis://h2:2,redis://h3:3"), 0);
    assert_int_equal(chl__ring_init(&b, "redis://h3:3,redis://h1:1,redis://h2:2"), 0);
    assert_int_equal(a.nshards, 3);
    int per_shard[3] = {0};
    for (int i = 0; i < 3000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "ifc.host.%d.%x!9", i, i * 7919);
        size_t sa = chl__ring_channel(&a, name);
        size_t sb = chl__ring_channel(&b, name);
        assert_true(sa < 3);
        assert_string_equal(a.addrs[sa].host, b.addrs[sb].host);
        per_shard[sa]++;
        /* the connection part does not move a channel */
        name[strlen(name) - 1] = '3';
        assert_int_equal(chl__ring_channel(&a, name), sa);
    }
    for (int s = 0; s < 3; s++)
        assert_true(per_shard[s] > 600); /* each gets a fair share of 1000 */
    assert_int_equal(chl__ring_init(&one, "redis://localhost"), 0);
    assert_int_equal(one.addrs[0].port, 6379);
    assert_int_equal(chl__ring_channel(&one, "x"), 0);
    chl__ring_clear(&a);
    chl__ring_clear(&b);
    chl__ring_clear(&one);
    static const char *const bad[] = {"",
                                      "localhost:1",
                                      "redis://",
                                      "redis://h:0",
                                      "redis://h:1,",
                                      "redis://h:1x",
                                      "redis://h:1/2x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        chl__ring_t r;
        assert_int_equal(chl__ring_init(&r, bad[i]), MC_EINVAL);
        chl__ring_clear(&r);
    }
    chl__ring_t db;
    assert_int_equal(chl__ring_init(&db, "redis://127.0.0.1:7000/3"), 0);
    assert_int_equal(db.addrs[0].db, 3);
    chl__ring_clear(&db);
}

static void sentinel_urls_name_a_master_and_its_sentinels(void **state)
{
    (void)state;
    chl__ring_t r;
    assert_int_equal(chl__ring_init(&r, "redis+sentinel://h1:26380,h2,10.0.0.3:1/chat-main"), 0);
    assert_int_equal(r.nshards, 1);
    const chl__addr_t *a = &r.addrs[0];
    assert_string_equal(a->master, "chat-main");
    assert_int_equal(a->nsentinels, 3);
    assert_string_equal(a->sentinels[0].host, "h1");
    assert_int_equal(a->sentinels[0].port, 26380);
    assert_string_equal(a->sentinels[1].host, "h2");
    assert_int_equal(a->sentinels[1].port, 26379);
    assert_string_equal(a->sentinels[2].host, "10.0.0.3");
    assert_int_equal(a->sentinels[2].port, 1);
    assert_int_equal(a->db, 0);
    assert_string_equal(a->password, "");
    chl__ring_clear(&r);

    /* a password (%XX escapes) and a db, for Sentinel and plain shards */
    assert_int_equal(chl__ring_init(&r, "redis+sentinel://:s%40c,r/t@h1/m/2,"
                                        "redis://:pw@h:7/3,redis+sentinel://h1,h2/n"),
                     0);
    assert_int_equal(r.nshards, 3);
    assert_string_equal(r.addrs[0].password, "s@c,r/t");
    assert_int_equal(r.addrs[0].db, 2);
    assert_int_equal(r.addrs[0].nsentinels, 1);
    assert_string_equal(r.addrs[1].password, "pw");
    assert_string_equal(r.addrs[1].host, "h");
    assert_int_equal(r.addrs[1].port, 7);
    assert_int_equal(r.addrs[1].db, 3);
    assert_string_equal(r.addrs[1].master, "");
    assert_string_equal(r.addrs[2].master, "n");
    assert_int_equal(r.addrs[2].nsentinels, 2);
    chl__ring_clear(&r);

    static const char *const bad[] = {
        "redis+sentinel://h1,h2",                    /* no master name */
        "redis+sentinel://h1/",                      /* empty name */
        "redis+sentinel:///m",                       /* no sentinel */
        "redis+sentinel://h1,/m",                    /* an empty sentinel */
        "redis+sentinel://h1/m x",                   /* a name with a space */
        "redis+sentinel://h1/m/",                    /* a db of no digits */
        "redis+sentinel://h1/m/10000",               /* a db too large */
        "redis+sentinel://h1:0/m",                   /* port 0 */
        "redis+sentinel://h1:65536/m",               /* port too large */
        "redis+sentinel://a,b,c,d,e,f,g,h,i/m",      /* nine sentinels */
        "redis+sentinel://a/m,redis+sentinel://b/m", /* one master twice */
        "redis://h:1,redis://h:1",                   /* one server twice */
        "redis://:pw@",                              /* no host */
        "redis://:@h",                               /* an empty password */
        "redis://:pw",                               /* no '@' */
        "redis://:p%4@h",                            /* a broken escape */
        "redis://:p%00@h",                           /* NUL */
        "redis://user:pw@h",                         /* user names are not supported */
        "redis://h:1,redis+sentinel://a/m/x",
        "redis://h:123456",
        "redis://h h",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chl__ring_init(&r, bad[i]), MC_EINVAL);
        chl__ring_clear(&r);
    }
}

static void unix_urls_name_a_socket_with_a_password_and_a_db(void **state)
{
    (void)state;
    chl__ring_t r;
    assert_int_equal(chl__ring_init(&r, "unix:///run/redis/redis.sock"), 0);
    assert_int_equal(r.nshards, 1);
    assert_string_equal(r.addrs[0].host, "/run/redis/redis.sock");
    assert_int_equal(r.addrs[0].port, 0);
    assert_int_equal(r.addrs[0].db, 0);
    assert_string_equal(r.addrs[0].password, "");
    assert_string_equal(r.addrs[0].master, "");
    chl__server_t at = {.port = r.addrs[0].port};
    memcpy(at.host, r.addrs[0].host, sizeof(at.host));
    char text[CHL__SERVER_TEXT];
    assert_string_equal(chl__server_text(&at, text), "/run/redis/redis.sock"); /* for the log */
    at.port = 7;
    assert_string_equal(chl__server_text(&at, text), "/run/redis/redis.sock:7");
    chl__ring_clear(&r);

    /* a password and a db as redis:// takes them; escapes in the path; two
     * sockets and a TCP server as three shards */
    assert_int_equal(chl__ring_init(&r, "unix://:s%40c,r@/tmp/a%2Cb.sock?db=12,"
                                        "unix:///tmp/a%2Cb.sock?db=3,redis://h:1"),
                     0);
    assert_int_equal(r.nshards, 3);
    assert_string_equal(r.addrs[0].password, "s@c,r");
    assert_string_equal(r.addrs[0].host, "/tmp/a,b.sock");
    assert_int_equal(r.addrs[0].db, 12);
    assert_string_equal(r.addrs[1].password, "");
    assert_int_equal(r.addrs[1].db, 3);
    assert_string_equal(r.addrs[2].host, "h");
    assert_int_equal(r.addrs[2].port, 1);
    chl__ring_clear(&r);

    /* the longest path sun_path holds, and one byte more */
    char url[256] = "unix://";
    size_t scheme = strlen(url);
    memset(url + scheme, 'x', CHL__SOCKET_PATH_MAX);
    url[scheme] = '/';
    url[scheme + CHL__SOCKET_PATH_MAX] = '\0';
    assert_int_equal(chl__ring_init(&r, url), 0);
    assert_int_equal(strlen(r.addrs[0].host), CHL__SOCKET_PATH_MAX);
    chl__ring_clear(&r);
    strcat(url, "x");
    assert_int_equal(chl__ring_init(&r, url), MC_EINVAL);
    assert_non_null(strstr(r.why, "longer than sun_path"));
    chl__ring_clear(&r);

    static const struct {
        const char *url, *why;
    } bad[] = {
        {"unix://", "must be absolute"},
        {"unix:///", "is empty"},
        {"unix:///?db=1", "is empty"},
        {"unix:///,redis://h", "is empty"},
        {"unix://run/redis.sock", "must be absolute"},
        {"unix://:pw@run/redis.sock", "must be absolute"},
        {"unix:///a.sock,unix:///a.sock", "listed twice"},
        {"unix:///a.sock?db=", "not a shard URL"},
        {"unix:///a.sock?db=10000", "not a shard URL"},
        {"unix:///a.sock?x=1", "not a shard URL"},
        {"unix:///a%00b", "not a shard URL"},
        {"unix:///a%4", "not a shard URL"},
        {"unix://:@/a.sock", "not a shard URL"},
        {"unix://:pw/a.sock", "not a shard URL"},
        {"unixx:///a.sock", "not a shard URL"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chl__ring_init(&r, bad[i].url), MC_EINVAL);
        assert_non_null(r.why);
        if (!strstr(r.why, bad[i].why))
            fail_msg("%s: \"%s\", not \"%s\"", bad[i].url, r.why, bad[i].why);
        chl__ring_clear(&r);
    }
}

static void a_sentinel_shard_keeps_its_channels_whatever_its_sentinels(void **state)
{
    (void)state;
    /* the same masters behind other sentinels, listed in another order,
     * with a plain shard among them */
    chl__ring_t a, b;
    assert_int_equal(chl__ring_init(&a, "redis+sentinel://s1,s2,s3/m1,redis://h:1,"
                                        "redis+sentinel://s1,s2,s3/m2"),
                     0);
    assert_int_equal(chl__ring_init(&b, "redis+sentinel://t9:1/m2,redis+sentinel://t8/m1,"
                                        "redis://h:1"),
                     0);
    int per_shard[3] = {0};
    for (int i = 0; i < 3000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "ifc.h.%d.%x!1", i, i * 7919);
        size_t sa = chl__ring_channel(&a, name), sb = chl__ring_channel(&b, name);
        assert_string_equal(a.addrs[sa].master, b.addrs[sb].master);
        assert_string_equal(a.addrs[sa].host, b.addrs[sb].host);
        per_shard[sa]++;
    }
    for (int s = 0; s < 3; s++)
        assert_true(per_shard[s] > 600);
    chl__ring_clear(&a);
    chl__ring_clear(&b);

    /* a plain shard places channels as it always did: by host:port/db */
    chl__ring_t old, withpw;
    assert_int_equal(chl__ring_init(&old, "redis://h1:1,redis://h2:2"), 0);
    assert_int_equal(chl__ring_init(&withpw, "redis://:pw@h1:1,redis://h2:2/"), 0);
    for (int i = 0; i < 500; i++) {
        char name[32];
        snprintf(name, sizeof(name), "p%d", i);
        assert_int_equal(chl__ring_channel(&old, name), chl__ring_channel(&withpw, name));
    }
    chl__ring_clear(&old);
    chl__ring_clear(&withpw);
}

/* A sentinel's +switch-master payload moves the watched master only when
 * it names it, in exactly five fields; anything else is refused. */
static void switch_master_events_are_read_strictly(void **state)
{
    (void)state;
    chl__server_t to = {"", 0};
    const char *ok = "mc-0 127.0.0.1 6379 10.0.0.2 6380";
    assert_int_equal(chl__switch_parse(ok, strlen(ok), "mc-0", &to), 0);
    assert_string_equal(to.host, "10.0.0.2");
    assert_int_equal(to.port, 6380);
    assert_int_equal(chl__switch_parse(ok, strlen(ok), "mc-1", &to), MC_ENOTFOUND);
    assert_int_equal(chl__switch_parse(ok, strlen(ok), "mc", &to), MC_ENOTFOUND);
    const char *bad[] = {
        "",
        "mc-0",
        "mc-0 127.0.0.1 6379 10.0.0.2",
        "mc-0 127.0.0.1 6379 10.0.0.2 6380 x",
        "mc-0  127.0.0.1 6379 10.0.0.2 6380",
        "mc-0 127.0.0.1 6379 10.0.0.2 6380 ",
        " mc-0 127.0.0.1 6379 10.0.0.2 6380",
        "mc-0 127.0.0.1 6379 10.0.0.2 0",
        "mc-0 127.0.0.1 6379 10.0.0.2 65536",
        "mc-0 127.0.0.1 6379 10.0.0.2 +80",
        "mc-0 127.0.0.1 6379 10.0.0.2 123456",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(chl__switch_parse(bad[i], strlen(bad[i]), "mc-0", &to), MC_EPROTO);
    char host[CHL__HOST_MAX + 40];
    int n = snprintf(host, sizeof(host), "mc-0 a 1 %0*d 2", CHL__HOST_MAX + 1, 0);
    assert_int_equal(chl__switch_parse(host, (size_t)n, "mc-0", &to), MC_EPROTO);
    n = snprintf(host, sizeof(host), "mc-0 a 1 %0*d 2", CHL__HOST_MAX, 0);
    assert_int_equal(chl__switch_parse(host, (size_t)n, "mc-0", &to), 0);
    assert_int_equal(strlen(to.host), CHL__HOST_MAX);
    const char nul[] = "mc-0 a 1 b\0c 2";
    assert_int_equal(chl__switch_parse(nul, sizeof(nul) - 1, "mc-0", &to), MC_EPROTO);
}

static void append_group(void *arg, const char *group)
{
    strcat((char *)arg, group);
    strcat((char *)arg, ";");
}

/* The members of group, as a message without a seq finds them. */
static size_t members(chl__local_t *t, const char *group, size_t len, const uint64_t **conns)
{
    int had;
    return chl__local_members_for(t, group, len, 0, conns, &had);
}

static void the_local_table_indexes_both_ways(void **state)
{
    (void)state;
    chl__local_t *t = chl__local_new();
    assert_non_null(t);
    assert_int_equal(chl__local_add(t, "room", 4, 1, 0), 1);
    assert_int_equal(chl__local_add(t, "room", 4, 1, 0), 0);
    assert_int_equal(chl__local_add(t, "room", 4, 2, 0), 1);
    assert_int_equal(chl__local_add(t, "roomX", 4, 2, 0), 0); /* length counts, not the NUL */
    assert_int_equal(chl__local_add(t, "lobby", 5, 1, 0), 1);
    const uint64_t *m;
    assert_int_equal(members(t, "room", 4, &m), 2);
    char groups[64] = "";
    chl__local_each_group(t, 1, append_group, groups);
    assert_true(strcmp(groups, "room;lobby;") == 0 || strcmp(groups, "lobby;room;") == 0);
    assert_int_equal(chl__local_remove(t, "room", 4, 2), 1);
    assert_int_equal(chl__local_remove(t, "room", 4, 2), 0);
    assert_int_equal(chl__local_remove(t, "nope", 4, 1), 0);
    chl__local_forget(t, 1);
    assert_int_equal(members(t, "room", 4, &m), 0);
    assert_int_equal(members(t, "lobby", 5, &m), 0);

    /* many groups and members, so that the tables grow */
    for (uint64_t c = 0; c < 2000; c++) {
        char g[16];
        int n = snprintf(g, sizeof(g), "g%llu", (unsigned long long)(c % 50));
        assert_int_equal(chl__local_add(t, g, (size_t)n, c, 0), 1);
    }
    assert_int_equal(members(t, "g7", 2, &m), 40);
    for (uint64_t c = 0; c < 2000; c += 2)
        chl__local_forget(t, c);
    assert_int_equal(members(t, "g7", 2, &m), 40); /* 7 is odd: all kept */
    assert_int_equal(members(t, "g8", 2, &m), 0);

    /* connections in more groups than a connection's first room holds, many
     * sharing buckets, each moved as it grows */
    for (int k = 0; k < 10; k++)
        for (uint64_t c = 5000; c < 5040; c++) {
            char g[16];
            int n = snprintf(g, sizeof(g), "h%d", k);
            assert_int_equal(chl__local_add(t, g, (size_t)n, c, 0), 1);
        }
    for (uint64_t c = 5000; c < 5040; c++) {
        char listed[128] = "";
        chl__local_each_group(t, c, append_group, listed);
        assert_int_equal(strlen(listed), 10 * 3);
    }
    assert_int_equal(members(t, "h9", 2, &m), 40);
    assert_int_equal(chl__local_remove(t, "h0", 2, 5007), 1);
    assert_int_equal(members(t, "h0", 2, &m), 39);
    for (uint64_t c = 5000; c < 5040; c++)
        chl__local_forget(t, c);
    assert_int_equal(members(t, "h9", 2, &m), 0);
    chl__local_free(t);
    chl__local_free(NULL);
}

static void the_config_copy_fills_defaults(void **state)
{
    (void)state;
    chl_config_t in = {0}, out;
    char *mem = NULL;
    in.redis_urls = "redis://x:1";
    in.capacity = 5;
    assert_int_equal(chl__config_copy(&out, &mem, &in), 0);
    assert_string_equal(out.redis_urls, "redis://x:1");
    assert_string_equal(out.prefix, "mc:");
    assert_int_equal(out.capacity, 5);
    assert_int_equal(out.expiry_ms, 60000);
    assert_int_equal(out.group_expiry_s, 86400);
    assert_ptr_not_equal(out.redis_urls, in.redis_urls);
    free(mem);
    in.prefix = "a-prefix-that-is-far-too-long-for-keys:";
    assert_int_equal(chl__config_copy(&out, &mem, &in), MC_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_follow_the_asgi_rules),
        cmocka_unit_test(frames_round_trip_and_every_cut_is_refused),
        cmocka_unit_test(a_message_marked_more_is_a_message),
        cmocka_unit_test(commands_and_numbers_are_written_as_redis_reads_them),
        cmocka_unit_test(the_ring_spreads_names_and_ignores_the_order_of_servers),
        cmocka_unit_test(sentinel_urls_name_a_master_and_its_sentinels),
        cmocka_unit_test(unix_urls_name_a_socket_with_a_password_and_a_db),
        cmocka_unit_test(a_sentinel_shard_keeps_its_channels_whatever_its_sentinels),
        cmocka_unit_test(switch_master_events_are_read_strictly),
        cmocka_unit_test(the_local_table_indexes_both_ways),
        cmocka_unit_test(the_config_copy_fills_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
