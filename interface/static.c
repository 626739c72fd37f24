/*
 * interface/static.c: safe URL-to-file mapping for the web root (see
 * static.h).
 */
#include "interface/static.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/form.h"

/* Appends one finished segment seg[0..n) to out unless it is "." or empty;
 * refuses "..", hidden names. */
static int add_segment(const char *seg, size_t n, char *out, size_t size, size_t *o)
{
    if (n == 0 || (n == 1 && seg[0] == '.'))
        return 0;
    if (seg[0] == '.')
        return MC_EINVAL; /* "..", ".git", ".env" */
    size_t need = n + (*o > 0 ? 1 : 0);
    if (need >= size - *o)
        return MC_ETOOBIG;
    if (*o > 0)
        out[(*o)++] = '/';
    memcpy(out + *o, seg, n);
    *o += n;
    out[*o] = '\0';
    return 0;
}

int ifc_static_decode(const char *path, size_t len, char *out, size_t size)
{
    char seg[IFC_STATIC_PATH_MAX] = {0};
    size_t sl = 0, o = 0;
    int rc, trailing = 1;
    if (size == 0)
        return MC_ETOOBIG;
    out[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c == '/') {
            if ((rc = add_segment(seg, sl, out, size, &o)) != 0)
                return rc;
            sl = 0;
            trailing = 1;
            continue;
        }
        trailing = 0;
        if (c == '%') {
            if (mc_percent_byte(path + i, len - i, &c) != 0)
                return MC_EINVAL;
            i += 2;
            if (c == '/')
                return MC_EINVAL; /* an encoded slash */
        }
        if (c < 0x20 || c == 0x7F || c == '\\')
            return MC_EINVAL;
        if (sl >= sizeof(seg))
            return MC_ETOOBIG;
        seg[sl++] = (char)c;
    }
    if ((rc = add_segment(seg, sl, out, size, &o)) != 0)
        return rc;
    if (trailing || o == 0)
        return add_segment("index.html", 10, out, size, &o);
    return 0;
}

int ifc_static_root(const char *dir, char *out, size_t size)
{
    char buf[PATH_MAX];
    if (!realpath(dir, buf))
        return MC_ENOTFOUND;
    size_t n = strlen(buf);
    if (n >= size)
        return MC_ETOOBIG;
    memcpy(out, buf, n + 1);
    return 0;
}

static const struct {
    const char *ext;
    const char *type;
} TYPES[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"wasm", "application/wasm"},
};

const char *ifc_static_content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *slash = strrchr(name, '/');
    if (dot && (!slash || dot > slash)) {
        for (size_t i = 0; i < sizeof(TYPES) / sizeof(TYPES[0]); i++)
            if (strcasecmp(dot + 1, TYPES[i].ext) == 0)
                return TYPES[i].type;
    }
    return "application/octet-stream";
}

void ifc_static_etag(uint64_t size, int64_t mtime, char out[IFC_STATIC_ETAG_MAX])
{
    snprintf(out, IFC_STATIC_ETAG_MAX, "\"%llx-%llx\"", (unsigned long long)size,
             (unsigned long long)mtime);
}

int ifc_static_open(const char *root, const char *rel, ifc_static_file_t *f)
{
    char full[PATH_MAX], real[PATH_MAX];
    size_t rl = strlen(root);
    int n = snprintf(full, sizeof(full), "%s/%s", root, rel);
    if (n < 0 || (size_t)n >= sizeof(full))
        return MC_ENOTFOUND;
    if (!realpath(full, real))
        return errno == ENOENT || errno == ENOTDIR || errno == EACCES || errno == ELOOP
                   ? MC_ENOTFOUND
                   : MC_EIO;
    if (strncmp(real, root, rl) != 0 || real[rl] != '/')
        return MC_ENOTFOUND;
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT || errno == EACCES || errno == ELOOP ? MC_ENOTFOUND : MC_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return MC_ENOTFOUND;
    }
    f->fd = fd;
    f->size = (uint64_t)st.st_size;
    f->mtime = (int64_t)st.st_mtim.tv_sec;
    f->content_type = ifc_static_content_type(real);
    ifc_static_etag(f->size, f->mtime, f->etag);
    return 0;
}

int ifc_static_etag_match(const char *value, size_t len, const char *etag)
{
    size_t el = strlen(etag);
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end - start == 1 && value[start] == '*')
            return 1;
        if (end - start > 2 && value[start] == 'W' && value[start + 1] == '/')
            start += 2;
        if (end - start == el && memcmp(value + start, etag, el) == 0)
            return 1;
    }
    return 0;
}
