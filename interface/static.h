/*
 * interface/static.h: files of the web root, mapped from URL paths safely.
 *
 * ifc_static_decode is pure: it percent-decodes a URL path and refuses
 * anything that could name a file outside the root or a file we do not
 * serve: a ".." segment (also when written %2e%2e), an encoded '/' or '\'
 * (%2f, %5c), a raw '\', NUL or another control character, a malformed
 * escape, a segment starting with '.' (hidden files such as .git). "."
 * segments and repeated slashes are dropped; a path ending in '/' names its
 * index.html.
 * ifc_static_open then resolves the decoded path under the root with every
 * symlink followed (realpath) and opens it only if the result is a regular
 * file still under the root.
 */
#ifndef MC_INTERFACE_STATIC_H
#define MC_INTERFACE_STATIC_H

#include <stddef.h>
#include <stdint.h>

#define IFC_STATIC_PATH_MAX 1024
#define IFC_STATIC_ETAG_MAX 48

typedef struct ifc_static_file {
    int fd; /* open for reading; the caller closes it */
    uint64_t size;
    int64_t mtime;                  /* seconds since the epoch */
    const char *content_type;       /* static text */
    char etag[IFC_STATIC_ETAG_MAX]; /* quoted, e.g. "\"1f4-65a1b2c3\"" */
} ifc_static_file_t;

/* Decodes path[0..len) (percent-encoded, without query) into out as a
 * relative path, NUL-terminated. Returns 0, MC_EINVAL (refused, see above;
 * answer 404 or 400) or MC_ETOOBIG (over size). */
int ifc_static_decode(const char *path, size_t len, char *out, size_t size);

/* Resolves dir to an absolute path without symlinks into out (the root to
 * pass to ifc_static_open). Returns 0, MC_ENOTFOUND, MC_ETOOBIG. */
int ifc_static_root(const char *dir, char *out, size_t size);

/* Opens the decoded relative path rel under root (from ifc_static_root).
 * Returns 0 and *f (the caller closes f->fd), MC_ENOTFOUND (missing, not a
 * regular file, or resolving outside the root), MC_EIO. */
int ifc_static_open(const char *root, const char *rel, ifc_static_file_t *f);

/* The Content-Type for a file name, by extension
 * ("application/octet-stream" when unknown). */
const char *ifc_static_content_type(const char *name);

/* Writes a quoted ETag made of size and mtime into out. */
void ifc_static_etag(uint64_t size, int64_t mtime, char out[IFC_STATIC_ETAG_MAX]);

/* 1 when an If-None-Match value (a list, "*", weak tags W/"...") matches
 * etag, else 0. */
int ifc_static_etag_match(const char *value, size_t len, const char *etag);

#endif
