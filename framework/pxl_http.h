/*
 * pxl_http.h - the HTTP/1.1 upgrade, both sides (pure; no I/O, no
 * globals). Server side: parses a request head, checks it is a WebSocket
 * upgrade (RFC 6455 4.2.1), computes Sec-WebSocket-Accept and formats the
 * responses. Client side: parses the response head and checks a 101
 * (RFC 6455 4.1). The connection code and the outbound client decide
 * when to call it and where the bytes go.
 */
#ifndef PXL_HTTP_H
#define PXL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct pxl_http_span {
        const char *p; /* into the caller's buffer; NULL when absent */
        size_t len;
};

struct pxl_http_request {
        struct pxl_http_span method;
        struct pxl_http_span target; /* as sent */
        struct pxl_http_span path;   /* target without query (and without
                                        scheme://authority in absolute form;
                                        a static "/" if that leaves none) */
        struct pxl_http_span query;  /* after '?', without it; NULL if none */
        int version_major, version_minor;
        /* Header values, leading/trailing whitespace trimmed. */
        struct pxl_http_span host;
        struct pxl_http_span upgrade;
        struct pxl_http_span connection;
        struct pxl_http_span ws_key;
        struct pxl_http_span ws_version;
        struct pxl_http_span origin;
        struct pxl_http_span authorization;
        struct pxl_http_span if_none_match;     /* static files' 304 */
        struct pxl_http_span if_modified_since;
        /* Set when one of the single-valued headers above came twice
           (Origin counts as single-valued; Connection may repeat). */
        bool duplicate_header;
        /* Some Connection header carried the "upgrade" token; connection
           holds the last Connection header only. */
        bool connection_upgrade;
        size_t head_len; /* bytes up to and including the blank line */
};

#define PXL_HTTP_NEED_MORE 0
#define PXL_HTTP_BAD       (-1) /* malformed: answer 400 */
#define PXL_HTTP_TOO_LARGE (-2) /* head longer than max_head: answer 400 */

/*
 * Parse one request head from buf. Returns head_len (> 0) when the head is
 * complete and well-formed, PXL_HTTP_NEED_MORE when the blank line has not
 * arrived yet (and len <= max_head), PXL_HTTP_BAD or PXL_HTTP_TOO_LARGE.
 * Bytes after the head (pipelined frames) are not looked at. req is
 * cleared on entry and meaningful only when the return is > 0. Call again
 * with the whole buffer when more bytes arrive (no state is kept).
 */
ssize_t pxl_http_parse_request(const char *buf, size_t len, size_t max_head,
                               struct pxl_http_request *req);

/* What the outbound client reads in the server's answer to its upgrade. */
struct pxl_http_response {
        int status;                      /* three digits, 000..999 */
        struct pxl_http_span reason;     /* trimmed; empty when none */
        struct pxl_http_span upgrade;    /* last Upgrade header */
        struct pxl_http_span accept;     /* Sec-WebSocket-Accept */
        struct pxl_http_span extensions; /* Sec-WebSocket-Extensions */
        struct pxl_http_span protocol;   /* Sec-WebSocket-Protocol */
        bool connection_upgrade; /* some Connection header has "upgrade" */
        bool has_content_length;
        size_t content_length; /* the last Content-Length, 1..12 digits */
        size_t head_len;       /* bytes up to and including the blank line */
};

/*
 * Parse one response head ("HTTP/1.d SP 3DIGIT [SP reason]", then header
 * lines) from buf, with the request parser's line rules (CRLF only, no
 * obs-fold, no control characters; garbage is refused before the blank
 * line arrives). Returns head_len (> 0) when complete, PXL_HTTP_NEED_MORE,
 * PXL_HTTP_BAD or PXL_HTTP_TOO_LARGE: unlike a request, as soon as
 * max_head bytes have come without a whole head. The body is not looked
 * at. r is cleared on entry and meaningful only when the return is > 0.
 * No state is kept: call again with the whole buffer.
 */
ssize_t pxl_http_parse_response(const char *buf, size_t len, size_t max_head,
                                struct pxl_http_response *r);

/* What pxl_http_check_101 finds, in the order it checks. */
enum pxl_http_101 {
        PXL_HTTP_101_OK = 0,
        PXL_HTTP_101_REFUSED,    /* the status is not 101 */
        PXL_HTTP_101_NO_UPGRADE, /* Upgrade is not "websocket", or no
                                    Connection header has "upgrade" */
        PXL_HTTP_101_BAD_ACCEPT, /* Sec-WebSocket-Accept is not `accept` */
        PXL_HTTP_101_EXTENSION,  /* an extension or subprotocol was chosen
                                    (the client offers none) */
};

/*
 * Judge a parsed response to an upgrade whose key gave `accept`
 * (pxl_ws_accept_key: PXL_WS_ACCEPT_LEN characters) by RFC 6455 4.1.
 */
enum pxl_http_101 pxl_http_check_101(const struct pxl_http_response *r,
                                     const char *accept);

/*
 * Check a parsed request against RFC 6455 4.2.1 for the endpoint `path`.
 * Returns 0 when it is a valid upgrade, else the status to answer, in
 * this order of checks: 404 (path differs), 400 (not GET, HTTP < 1.1,
 * missing or wrong Upgrade/Connection/Host, bad or duplicated
 * Sec-WebSocket-Key), 426 (Sec-WebSocket-Version not 13).
 */
int pxl_http_check_upgrade(const struct pxl_http_request *req,
                           const char *path);

/* True when a comma-separated header value contains token (case-insensitive).
 */
bool pxl_http_has_token(struct pxl_http_span value, const char *token);

#define PXL_WS_ACCEPT_LEN 28
/* base64(SHA-1(key + RFC 6455 GUID)) into out, NUL-terminated (29 bytes). */
void pxl_ws_accept_key(const char *key, size_t key_len,
                       char out[PXL_WS_ACCEPT_LEN + 1]);

/*
 * Format "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection and
 * Sec-WebSocket-Accept. Returns the length written (snprintf rules).
 */
size_t pxl_http_format_101(char *out, size_t cap, const char *accept);

/*
 * Format a response head: status line, Content-Type, Content-Length
 * (body_len), Connection (keep-alive or close), extra (NULL, or whole
 * header lines each ending in CRLF) and the blank line. Returns the
 * length written (snprintf rules).
 */
size_t pxl_http_format_head(char *out, size_t cap, int status,
                            const char *content_type, size_t body_len,
                            bool keep_alive, const char *extra);

/*
 * Format a refusal: status line, Content-Type: text/plain; charset=utf-8,
 * Content-Length, Connection: close (426 adds Sec-WebSocket-Version: 13)
 * and a short body naming the reason (body NULL = the reason phrase).
 * Returns the length written (snprintf rules).
 */
size_t pxl_http_format_error(char *out, size_t cap, int status,
                             const char *body);
/* "Not Found" for 404, etc. */
const char *pxl_http_reason(int status);

/*
 * Find query parameter `name` in a raw query string and percent-decode
 * its value ('+' is a space) into out, NUL-terminated. Returns the decoded
 * length, -1 when absent, -2 when it does not fit or is badly encoded.
 */
ssize_t pxl_http_query_param(struct pxl_http_span query, const char *name,
                             char *out, size_t cap);

#endif
