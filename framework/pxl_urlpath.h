/*
 * pxl_urlpath.h - what static file serving needs from a request, as pure
 * functions (no I/O): the request path turned into a safe relative file
 * path, the Content-Type of a file name, and HTTP dates.
 */
#ifndef PXL_URLPATH_H
#define PXL_URLPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * The request path (from '/', without the query) as a path relative to
 * the served folder, written to out (NUL-terminated): percent-escapes
 * decoded, empty and "." segments dropped, "index.html" added after a
 * trailing '/' (*dir_index is then true). 0 when good; 400 for what
 * must never reach the file system (a path not starting with '/', a bad
 * or encoded '/' or '\' escape, NUL, control characters, a ".."
 * segment, a segment starting with '.' other than ".well-known"); 414
 * when it does not fit in cap.
 */
int pxl_urlpath_resolve(const char *path, size_t len, char *out, size_t cap,
                        bool *dir_index);

/* The Content-Type of a file by its extension (octet-stream if unknown). */
const char *pxl_urlpath_type(const char *name);

/* "Sun, 06 Nov 1994 08:49:37 GMT" (29 characters) into out[30]. */
void pxl_http_date(time_t t, char out[30]);
/* The IMF-fixdate t of text (len bytes), or -1 when it is not one. */
time_t pxl_http_date_parse(const char *text, size_t len);

#endif
