/* channel-layer/frame.c: the framing of a message inside a Redis list (see
 * internal.h). */
#include "channel-layer/internal.h"
#include "common/error.h"

#include <stdlib.h>
#include <string.h>

int chl__frame_header(char *hdr, size_t size, int kind, int64_t deadline, const char *name,
                      uint64_t seq)
{
    size_t len = strlen(name);
    if (deadline < 0 || size < 45 || len + 45 > size)
        return MC_ETOOBIG;
    size_t n = 0;
    hdr[n++] = (char)kind;
    n += chl__digits(hdr + n, (uint64_t)deadline);
    hdr[n++] = '|';
    memcpy(hdr + n, name, len);
    n += len;
    if (seq) {
        hdr[n++] = '|';
        n += chl__digits(hdr + n, seq);
    }
    hdr[n++] = '\n';
    hdr[n] = '\0';
    return (int)n;
}

int chl__frame_build(char **out, size_t *outlen, int kind, int64_t deadline, const char *name,
                     uint64_t seq, const void *payload, size_t len)
{
    char hdr[CHL__HEADER_MAX];
    if (len > CHL__MSG_MAX)
        return MC_ETOOBIG;
    int h = chl__frame_header(hdr, sizeof(hdr), kind, deadline, name, seq);
    if (h < 0)
        return h;
    char *buf = malloc((size_t)h + len + 1);
    if (!buf)
        return MC_ENOMEM;
    memcpy(buf, hdr, (size_t)h);
    if (len)
        memcpy(buf + h, payload, len);
    buf[(size_t)h + len] = '\0';
    *out = buf;
    *outlen = (size_t)h + len;
    return 0;
}

int chl__frame_parse(chl__frame_t *f, const char *data, size_t len)
{
    /* The header is short; look for its end only in its first bytes so that
     * a large payload without a header is rejected quickly. */
    size_t lim = len < CHL__HEADER_MAX ? len : CHL__HEADER_MAX;
    const char *nl = memchr(data, '\n', lim);
    if (!nl || len < 4)
        return MC_EPROTO;
    int kind = data[0];
    int more = kind == CHL__MSG_MORE;
    if (more)
        kind = CHL__MSG;
    if (kind != CHL__MSG && kind != CHL__GROUP && kind != CHL__ADD && kind != CHL__DISCARD)
        return MC_EPROTO;
    const char *p = data + 1;
    int64_t deadline = 0;
    if (p == nl || *p < '0' || *p > '9')
        return MC_EPROTO;
    for (; p < nl && *p >= '0' && *p <= '9'; p++) {
        if (deadline > (INT64_MAX - 9) / 10)
            return MC_EPROTO;
        deadline = deadline * 10 + (*p - '0');
    }
    if (p >= nl || *p != '|')
        return MC_EPROTO;
    p++;
    const char *end = p; /* of the name */
    while (end < nl && *end != '|' && *end != '\0')
        end++;
    if (end == p || (end < nl && *end == '\0'))
        return MC_EPROTO;
    uint64_t seq = 0;
    if (end < nl) { /* "|<seq>": digits, no leading zero (0 is "none") */
        const char *q = end + 1;
        if (q == nl || *q < '1' || *q > '9')
            return MC_EPROTO;
        for (; q < nl && *q >= '0' && *q <= '9'; q++) {
            uint64_t digit = (uint64_t)(*q - '0');
            if (seq > (UINT64_MAX - digit) / 10)
                return MC_EPROTO;
            seq = seq * 10 + digit;
        }
        if (q != nl)
            return MC_EPROTO;
    }
    f->kind = kind;
    f->deadline = deadline;
    f->name = p;
    f->name_len = (size_t)(end - p);
    f->seq = seq;
    f->more = more;
    f->payload = nl + 1;
    f->len = len - (size_t)(nl + 1 - data);
    return 0;
}

int chl__message_fill(chl_message_t *out, const char *channel, size_t channel_len,
                      const char *payload, size_t len)
{
    memset(out, 0, sizeof(*out));
    out->channel = malloc(channel_len + 1);
    out->data = malloc(len + 1);
    if (!out->channel || !out->data) {
        chl_message_free(out);
        return MC_ENOMEM;
    }
    memcpy(out->channel, channel, channel_len);
    out->channel[channel_len] = '\0';
    if (len)
        memcpy(out->data, payload, len);
    out->data[len] = '\0';
    out->len = len;
    return 0;
}
