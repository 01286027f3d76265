/*
 * pxl_static.c - GET and HEAD of the files beneath static.root, on the
 * WebSocket listener, for the requests that are neither upgrades nor
 * the operator's endpoints (the connection layer's HTTP hook).
 *
 * Nothing outside the folder is ever served: the request path is
 * decoded and checked by pxl_urlpath (no "..", no encoded separators,
 * NUL or hidden names), then opened with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_MAGICLINKS) beneath the folder's descriptor, so the kernel
 * refuses symlinks that lead out. Files are read whole into the reply,
 * up to static.max_file_size: the loop never waits on a large file.
 * Answers carry Content-Type, Content-Length, ETag and Last-Modified,
 * and a conditional request whose copy is current gets 304.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pxl/pxl.h"
#include "pxl_http.h"
#include "pxl_log.h"
#include "pxl_static.h"
#include "pxl_urlpath.h"

struct pxl_static {
        int root;           /* the folder, O_PATH */
        size_t max_size;    /* largest file served */
        bool logged_nosys;  /* openat2 missing: said once */
        const char *pxl_js; /* the client library's file (PXL_JS) */
};

/* The path where pxl-serve serves its own client library. */
#define PXL_JS_PATH "/pxl.js"

static const struct pxl_service static_service;

static bool method_is(const struct pxl_http_request *req, const char *m)
{
        size_t n = strlen(m);

        return req->method.len == n && memcmp(req->method.p, m, n) == 0;
}

/* A short text answer (errors, redirects); HEAD gets the head only. */
static void answer_text(struct pxl_str *out, int status, const char *text,
                        const char *extra, bool head)
{
        char buf[1024];
        size_t n = pxl_http_format_head(buf, sizeof(buf), status,
                                        "text/plain; charset=utf-8",
                                        strlen(text) + 1, false, extra);

        pxl_str_append(out, buf, n < sizeof(buf) ? n : sizeof(buf) - 1);
        if (!head) {
                pxl_str_puts(out, text);
                pxl_str_puts(out, "\n");
        }
}

static int open_beneath(struct pxl_static *st, const char *rel)
{
        struct open_how how = {
                .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, st->root, rel, &how, sizeof(how));

        if (fd < 0 && errno == ENOSYS && !st->logged_nosys) {
                st->logged_nosys = true;
                pxl_logs(PXL_LOG_ERR, "static files need openat2 (Linux "
                                      "5.6 or later); none are served");
        }
        return fd;
}

/* If-None-Match (a list, weak or not) or else If-Modified-Since. */
static bool not_modified(const struct pxl_http_request *req,
                         const char *etag, time_t mtime)
{
        const char *p = req->if_none_match.p, *end;
        size_t elen = strlen(etag);

        if (p != NULL) {
                end = p + req->if_none_match.len;
                while (p < end) {
                        const char *comma = memchr(p, ',', (size_t)(end - p));
                        const char *e = comma ? comma : end;

                        while (p < e && (*p == ' ' || *p == '\t'))
                                p++;
                        if (e - p >= 2 && p[0] == 'W' && p[1] == '/')
                                p += 2;
                        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
                                e--;
                        if ((e - p == 1 && *p == '*') ||
                            ((size_t)(e - p) == elen &&
                             memcmp(p, etag, elen) == 0))
                                return true;
                        p = comma ? comma + 1 : end;
                }
                return false;
        }
        if (req->if_modified_since.p != NULL) {
                time_t since = pxl_http_date_parse(req->if_modified_since.p,
                                                   req->if_modified_since.len);

                return since >= 0 && mtime <= since;
        }
        return false;
}

static int read_all(int fd, char *buf, size_t len)
{
        size_t got = 0;

        while (got < len) {
                ssize_t n = pread(fd, buf + got, len - got, (off_t)got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return PXL_ERR;
                got += (size_t)n;
        }
        return PXL_OK;
}

/* limit: the largest size served (pxl.js is not the app's file). */
static void answer_file(size_t limit, int fd, const struct stat *sb,
                        const char *rel, const struct pxl_http_request *req,
                        struct pxl_str *out, bool head)
{
        char etag[64], date[30], extra[256], buf[1024];
        size_t size = (size_t)sb->st_size, n, at;

        if ((uintmax_t)sb->st_size > limit) {
                pxl_logs(PXL_LOG_WARN, "static: %s is larger than "
                                       "static.max_file_size; not served",
                         rel);
                answer_text(out, 404, "Not Found", NULL, head);
                return;
        }
        snprintf(etag, sizeof(etag), "\"%llx-%llx\"",
                 (unsigned long long)sb->st_size,
                 (unsigned long long)sb->st_mtim.tv_sec * 1000000000ull +
                         (unsigned long long)sb->st_mtim.tv_nsec);
        pxl_http_date(sb->st_mtim.tv_sec, date);
        snprintf(extra, sizeof(extra),
                 "ETag: %s\r\nLast-Modified: %s\r\nCache-Control: "
                 "no-cache\r\nX-Content-Type-Options: nosniff\r\n",
                 etag, date);
        if (not_modified(req, etag, sb->st_mtim.tv_sec)) {
                /* 304: the head of a 200 without Content-Length or body. */
                n = (size_t)snprintf(buf, sizeof(buf),
                                     "HTTP/1.1 304 Not Modified\r\n%s"
                                     "Connection: close\r\n\r\n",
                                     extra);
                pxl_str_append(out, buf, n < sizeof(buf) ? n : sizeof(buf) - 1);
                return;
        }
        n = pxl_http_format_head(buf, sizeof(buf), 200,
                                 pxl_urlpath_type(rel), size, false, extra);
        if (n >= sizeof(buf) || pxl_str_append(out, buf, n) < 0)
                return;
        if (head || size == 0)
                return;
        at = out->len;
        if (pxl_str_reserve(out, size) < 0 ||
            read_all(fd, out->p + at, size) < 0) {
                out->len = 0;
                answer_text(out, 500, "Internal Server Error", NULL, head);
                return;
        }
        out->len = at + size;
        out->p[out->len] = '\0';
}

/* /pxl.js: the library installed with this pxl-serve (or PXL_JS's). */
static void serve_pxl_js(struct pxl_static *st,
                         const struct pxl_http_request *req,
                         struct pxl_str *out, bool head)
{
        int fd = open(st->pxl_js, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat sb;

        if (fd < 0 || fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
                pxl_logs(PXL_LOG_WARN, "static: cannot serve %s from %s: %s",
                         PXL_JS_PATH, st->pxl_js,
                         fd < 0 ? strerror(errno) : "not a file");
                answer_text(out, 404, "Not Found", NULL, head);
        } else {
                answer_file(SIZE_MAX, fd, &sb, "pxl.js", req, out, head);
        }
        if (fd >= 0)
                close(fd);
}

static int static_http(struct pxl_worker *srv,
                       const struct pxl_http_request *req,
                       const struct sockaddr *peer, struct pxl_str *out,
                       void *arg)
{
        struct pxl_static *st = pxl_worker_service_state(srv, &static_service);
        bool head = method_is(req, "HEAD"), index;
        char rel[PATH_MAX], loc[PATH_MAX + 64];
        struct stat sb;
        int status, fd;

        (void)peer;
        (void)arg;
        if (st == NULL)
                return 0;
        if (!head && !method_is(req, "GET")) {
                answer_text(out, 405, "Method Not Allowed",
                            "Allow: GET, HEAD\r\n", false);
                return 1;
        }
        if (req->path.len == sizeof(PXL_JS_PATH) - 1 &&
            memcmp(req->path.p, PXL_JS_PATH, req->path.len) == 0) {
                serve_pxl_js(st, req, out, head);
                return 1;
        }
        status = pxl_urlpath_resolve(req->path.p, req->path.len, rel,
                                     sizeof(rel), &index);
        if (status != 0) {
                answer_text(out, status,
                            status == 414 ? "URI Too Long" : "Bad Request",
                            NULL, head);
                return 1;
        }
        fd = open_beneath(st, rel);
        if (fd < 0 || fstat(fd, &sb) < 0) {
                if (fd >= 0)
                        close(fd);
                answer_text(out, 404, "Not Found", NULL, head);
                return 1;
        }
        if (S_ISDIR(sb.st_mode) && !index) {
                /* A folder named without its slash: where its index is. */
                snprintf(loc, sizeof(loc), "Location: %.*s/%s%.*s\r\n",
                         (int)req->path.len, req->path.p,
                         req->query.p ? "?" : "",
                         (int)(req->query.p ? req->query.len : 0),
                         req->query.p ? req->query.p : "");
                answer_text(out, 301, "Moved Permanently", loc, head);
        } else if (!S_ISREG(sb.st_mode)) {
                answer_text(out, 404, "Not Found", NULL, head);
        } else {
                answer_file(st->max_size, fd, &sb, rel, req, out, head);
        }
        close(fd);
        return 1;
}

static void static_stop(struct pxl_worker *srv)
{
        struct pxl_static *st = pxl_worker_service_state(srv, &static_service);

        if (st == NULL)
                return;
        close(st->root);
        (void)pxl_worker_set_service_state(srv, &static_service, NULL);
        free(st);
}

/* In the serving worker: the folder, opened once. */
static int static_start(struct pxl_worker *srv, struct pxl_str *errors)
{
        const struct pxl_config *conf = srv->conf;
        struct pxl_static *st = calloc(1, sizeof(*st));
        const char *js = getenv("PXL_JS");

        if (st == NULL) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        st->max_size = conf->static_max_file_size;
        st->pxl_js = js != NULL && js[0] != '\0' ? js : PXL_JSDIR "/pxl.js";
        st->root = open(conf->static_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (st->root < 0) {
                pxl_str_report(errors, conf->file, 0, "static.root",
                               "cannot open the folder %s: %s",
                               conf->static_root, strerror(errno));
                free(st);
                return PXL_ERR;
        }
        if (pxl_worker_set_service_state(srv, &static_service, st) < 0) {
                close(st->root);
                free(st);
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        return PXL_OK;
}

static const struct pxl_service static_service = {
        .name = "static files",
        .start = static_start,
        .stop = static_stop,
};

int pxl_static_install(struct pxl_worker *srv, struct pxl_str *errors)
{
        if (srv->conf->static_root == NULL)
                return PXL_OK;
        if (pxl_worker_add_service(srv, &static_service) < 0 ||
            pxl_worker_serve_http(srv, static_http, NULL) < 0) {
                pxl_str_puts(errors, "out of memory\n");
                return PXL_ENOMEM;
        }
        return PXL_OK;
}
