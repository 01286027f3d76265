/*
 * pxl_http.c - the WebSocket opening handshake: parse a request head,
 * judge it against RFC 6455 4.2.1, compute the accept key, format replies;
 * for the outbound client, parse the response head (same line rules, one
 * loop) and judge a 101. Pure: no sockets, no buffers of its own, no
 * globals. Reading the bytes, timeouts, Origin policy, tokens and capacity
 * belong to pxl_conn.c and pxl_wsc.c.
 */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "pxl_http.h"
#include "pxl_text.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Real keys are 24 bytes; the cap only bounds the stack buffer. */
#define WS_KEY_MAX 128

/* RFC 9110 tchar: what a method or a header name may be made of. */
static bool is_tchar(unsigned char c)
{
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9'))
                return true;
        return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field values allow HT, SP, VCHAR and obs-text; never CR, LF or NUL. */
static bool is_value_char(unsigned char c)
{
        return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static unsigned char lower(unsigned char c)
{
        return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool span_ieq(struct pxl_http_span sp, const char *s)
{
        size_t n = strlen(s);

        if (sp.p == NULL || sp.len != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (lower((unsigned char)sp.p[i]) != lower((unsigned char)s[i]))
                        return false;
        return true;
}

/* [p, e) without leading and trailing blanks (SP, HT). */
static struct pxl_http_span trim(const char *p, const char *e)
{
        struct pxl_http_span sp;

        while (p < e && (*p == ' ' || *p == '\t'))
                p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
        sp.p = p;
        sp.len = (size_t)(e - p);
        return sp;
}

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Split the target into path and query. Absolute-form is accepted because
 * RFC 9112 3.2.2 says a server must, even though clients send it only to
 * proxies; its authority is ignored (Host is what gets checked).
 */
static int parse_target(struct pxl_http_request *req)
{
        const char *p = req->target.p;
        const char *end = p + req->target.len;
        const char *q;

        if (*p != '/') {
                const char *s = p;

                /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
                if (!is_alpha(*s))
                        return -1;
                while (s < end && (is_alpha(*s) || pxl_is_digit(*s) ||
                                   *s == '+' || *s == '-' || *s == '.'))
                        s++;
                if (end - s < 3 || memcmp(s, "://", 3) != 0)
                        return -1;
                s += 3;
                while (s < end && *s != '/' && *s != '?')
                        s++;
                p = s;
        }
        q = memchr(p, '?', (size_t)(end - p));
        if (q != NULL) {
                req->query.p = q + 1;
                req->query.len = (size_t)(end - q - 1);
        } else {
                q = end;
        }
        if (q == p) {
                /*
                 * "http://host" or "http://host?x": the path is "/" (RFC
                 * 9112 3.3); a literal keeps the span readable although
                 * it is not inside the caller's buffer.
                 */
                req->path.p = "/";
                req->path.len = 1;
        } else {
                req->path.p = p;
                req->path.len = (size_t)(q - p);
        }
        return 0;
}

/* "METHOD SP target SP HTTP/d.d", nothing more, nothing less. */
static int parse_request_line(const char *p, size_t len, void *out)
{
        struct pxl_http_request *req = out;
        size_t i = 0, start;

        while (i < len && is_tchar((unsigned char)p[i]))
                i++;
        if (i == 0 || i == len || p[i] != ' ')
                return -1;
        req->method.p = p;
        req->method.len = i;
        start = ++i;
        /* Only visible ASCII: clients percent-encode everything else. */
        while (i < len && (unsigned char)p[i] > 0x20 &&
               (unsigned char)p[i] < 0x7f)
                i++;
        if (i == start || i == len || p[i] != ' ')
                return -1;
        req->target.p = p + start;
        req->target.len = i - start;
        i++;
        if (len - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 ||
            !pxl_is_digit(p[i + 5]) || p[i + 6] != '.' ||
            !pxl_is_digit(p[i + 7]))
                return -1;
        req->version_major = p[i + 5] - '0';
        req->version_minor = p[i + 7] - '0';
        return parse_target(req);
}

static void set_once(struct pxl_http_span *sp, struct pxl_http_span v,
                     bool *dup)
{
        if (sp->p != NULL)
                *dup = true;
        else
                *sp = v;
}

/*
 * "name: value" (the line has no CRLF; obs-fold was refused already):
 * the name and the value without the blanks around it.
 */
static int split_field(const char *p, size_t len, struct pxl_http_span *name,
                       struct pxl_http_span *value)
{
        size_t i = 0;

        while (i < len && is_tchar((unsigned char)p[i]))
                i++;
        /* Also refuses "Name :" (RFC 9112 5.1: whitespace before ':'). */
        if (i == 0 || i == len || p[i] != ':')
                return -1;
        for (size_t k = i + 1; k < len; k++)
                if (!is_value_char((unsigned char)p[k]))
                        return -1;
        name->p = p;
        name->len = i;
        *value = trim(p + i + 1, p + len);
        return 0;
}

/*
 * What a kind of head does with its start line (without the CRLF) and
 * with each header field. Each returns -1 when that makes the head
 * malformed.
 */
typedef int start_line_fn(const char *p, size_t len, void *out);
typedef int field_fn(struct pxl_http_span name, struct pxl_http_span value,
                     void *out);

/*
 * The line rules of both heads: CRLF only, the first line is the start
 * line, no leading blank line, no obs-fold, a blank line ends the head.
 * Returns the head's length (also in *head_len), PXL_HTTP_NEED_MORE,
 * _BAD or _TOO_LARGE.
 */
static ssize_t parse_head(const char *buf, size_t len, size_t max_head,
                          start_line_fn *start, field_fn *field, void *out,
                          size_t *head_len)
{
        size_t lim = len < max_head ? len : max_head;
        size_t pos = 0;
        bool first = true;

        while (pos < lim) {
                const char *nl = memchr(buf + pos, '\n', lim - pos);
                size_t eol, i;

                if (nl == NULL) {
                        /*
                         * Judge the partial line now where the verdict
                         * cannot change, so garbage is refused early.
                         */
                        for (i = pos; i < lim; i++) {
                                unsigned char c = (unsigned char)buf[i];

                                if (c == '\r' && i + 1 < lim)
                                        return PXL_HTTP_BAD;
                                if (c != '\r' && !is_value_char(c))
                                        return PXL_HTTP_BAD;
                        }
                        break;
                }
                eol = (size_t)(nl - buf);
                /* CRLF only: a bare LF is a smuggling vector. */
                if (eol == pos || buf[eol - 1] != '\r')
                        return PXL_HTTP_BAD;
                if (eol - 1 == pos) {
                        /* Leading blank lines (RFC 9112 2.2) are refused. */
                        if (first)
                                return PXL_HTTP_BAD;
                        *head_len = eol + 1;
                        return (ssize_t)*head_len;
                }
                if (first) {
                        if (start(buf + pos, eol - 1 - pos, out) < 0)
                                return PXL_HTTP_BAD;
                        first = false;
                } else {
                        struct pxl_http_span name, v;

                        if (buf[pos] == ' ' || buf[pos] == '\t')
                                return PXL_HTTP_BAD; /* obs-fold */
                        if (split_field(buf + pos, eol - 1 - pos, &name, &v) <
                                    0 ||
                            field(name, v, out) < 0)
                                return PXL_HTTP_BAD;
                }
                pos = eol + 1;
        }
        return len > max_head ? PXL_HTTP_TOO_LARGE : PXL_HTTP_NEED_MORE;
}

/* A header whose value a parser keeps, and where in its struct. */
struct field {
        const char *name; /* lower case */
        size_t off;       /* of its struct pxl_http_span */
};

/* The span that keeps header `name` inside head, or NULL: not kept. */
static struct pxl_http_span *field_slot(const struct field *t,
                                        struct pxl_http_span name, void *head)
{
        for (; t->name != NULL; t++)
                if (span_ieq(name, t->name))
                        return (struct pxl_http_span *)(void *)((char *)head +
                                                                t->off);
        return NULL;
}

#define REQ(f) offsetof(struct pxl_http_request, f)

/* Each may come once (two Origins would let a check pass on the wrong
 * one); Connection, a list, is handled apart. */
static const struct field request_fields[] = {
        {"host", REQ(host)},
        {"upgrade", REQ(upgrade)},
        {"sec-websocket-key", REQ(ws_key)},
        {"sec-websocket-version", REQ(ws_version)},
        {"origin", REQ(origin)},
        {"authorization", REQ(authorization)},
        {"if-none-match", REQ(if_none_match)},
        {"if-modified-since", REQ(if_modified_since)},
        {NULL, 0},
};

static int request_field(struct pxl_http_span name, struct pxl_http_span v,
                         void *out)
{
        struct pxl_http_request *req = out;
        struct pxl_http_span *sp;

        if (span_ieq(name, "connection")) {
                /* A list header: repeats are one comma-joined list. */
                req->connection = v;
                if (pxl_http_has_token(v, "upgrade"))
                        req->connection_upgrade = true;
        } else if ((sp = field_slot(request_fields, name, req)) != NULL) {
                set_once(sp, v, &req->duplicate_header);
        }
        return 0;
}

ssize_t pxl_http_parse_request(const char *buf, size_t len, size_t max_head,
                               struct pxl_http_request *req)
{
        memset(req, 0, sizeof(*req));
        return parse_head(buf, len, max_head, parse_request_line, request_field,
                          req, &req->head_len);
}

/* "HTTP/1.d SP 3DIGIT [SP reason-phrase]" (RFC 9112 4). */
static int parse_status_line(const char *p, size_t len, void *out)
{
        struct pxl_http_response *r = out;

        if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || !pxl_is_digit(p[7]) ||
            p[8] != ' ' || !pxl_is_digit(p[9]) || !pxl_is_digit(p[10]) ||
            !pxl_is_digit(p[11]) || (len > 12 && p[12] != ' '))
                return -1;
        for (size_t i = 12; i < len; i++)
                if (!is_value_char((unsigned char)p[i]))
                        return -1;
        r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        r->reason = trim(p + 12, p + len);
        return 0;
}

#define RESP(f) offsetof(struct pxl_http_response, f)

/* The last of each counts. */
static const struct field response_fields[] = {
        {"upgrade", RESP(upgrade)},
        {"sec-websocket-accept", RESP(accept)},
        {"sec-websocket-extensions", RESP(extensions)},
        {"sec-websocket-protocol", RESP(protocol)},
        {NULL, 0},
};

/* 1 to 12 digits: a body the client may quote from, never a huge one. */
static int content_length(struct pxl_http_span v, struct pxl_http_response *r)
{
        size_t n = 0;

        if (v.len == 0 || v.len > 12)
                return -1;
        for (size_t i = 0; i < v.len; i++) {
                if (!pxl_is_digit(v.p[i]))
                        return -1;
                n = n * 10 + (size_t)(v.p[i] - '0');
        }
        r->has_content_length = true;
        r->content_length = n;
        return 0;
}

static int response_field(struct pxl_http_span name, struct pxl_http_span v,
                          void *out)
{
        struct pxl_http_response *r = out;
        struct pxl_http_span *sp;

        if (span_ieq(name, "connection")) {
                if (pxl_http_has_token(v, "upgrade"))
                        r->connection_upgrade = true;
        } else if (span_ieq(name, "content-length")) {
                return content_length(v, r);
        } else if ((sp = field_slot(response_fields, name, r)) != NULL) {
                *sp = v;
        }
        return 0;
}

ssize_t pxl_http_parse_response(const char *buf, size_t len, size_t max_head,
                                struct pxl_http_response *r)
{
        ssize_t n;

        memset(r, 0, sizeof(*r));
        n = parse_head(buf, len, max_head, parse_status_line, response_field, r,
                       &r->head_len);
        /* All max_head bytes are here without a whole head: too large. */
        if (n == PXL_HTTP_NEED_MORE && len >= max_head)
                n = PXL_HTTP_TOO_LARGE;
        return n;
}

enum pxl_http_101 pxl_http_check_101(const struct pxl_http_response *r,
                                     const char *accept)
{
        if (r->status != 101)
                return PXL_HTTP_101_REFUSED;
        if (!span_ieq(r->upgrade, "websocket") || !r->connection_upgrade)
                return PXL_HTTP_101_NO_UPGRADE;
        if (r->accept.len != PXL_WS_ACCEPT_LEN ||
            memcmp(r->accept.p, accept, PXL_WS_ACCEPT_LEN) != 0)
                return PXL_HTTP_101_BAD_ACCEPT;
        if (r->extensions.p != NULL || r->protocol.p != NULL)
                return PXL_HTTP_101_EXTENSION;
        return PXL_HTTP_101_OK;
}

bool pxl_http_has_token(struct pxl_http_span value, const char *token)
{
        const char *p = value.p, *end;

        if (p == NULL)
                return false;
        end = p + value.len;
        while (p < end) {
                const char *comma = memchr(p, ',', (size_t)(end - p));

                if (span_ieq(trim(p, comma != NULL ? comma : end), token))
                        return true;
                if (comma == NULL)
                        break;
                p = comma + 1;
        }
        return false;
}

static bool is_b64(char c)
{
        return is_alpha(c) || pxl_is_digit(c) || c == '+' || c == '/';
}

/*
 * 16 random bytes in base64: 22 characters and "==". The unused low bits
 * of the last character are not required to be zero (Node's ws and
 * python-websockets do not require it either).
 */
static bool ws_key_ok(struct pxl_http_span key)
{
        if (key.p == NULL || key.len != 24)
                return false;
        for (size_t i = 0; i < 22; i++)
                if (!is_b64(key.p[i]))
                        return false;
        return key.p[22] == '=' && key.p[23] == '=';
}

int pxl_http_check_upgrade(const struct pxl_http_request *req, const char *path)
{
        size_t plen = strlen(path);

        if (req->path.p == NULL || req->path.len != plen ||
            memcmp(req->path.p, path, plen) != 0)
                return 404;
        if (req->method.len != 3 || memcmp(req->method.p, "GET", 3) != 0)
                return 400;
        if (req->version_major < 1 ||
            (req->version_major == 1 && req->version_minor < 1))
                return 400;
        /* An empty Host names no server: as good as none. */
        if (req->host.p == NULL || req->host.len == 0)
                return 400;
        if (!pxl_http_has_token(req->upgrade, "websocket"))
                return 400;
        if (!req->connection_upgrade &&
            !pxl_http_has_token(req->connection, "upgrade"))
                return 400;
        /* A missing version is a missing upgrade header (PROTOCOL.md). */
        if (!ws_key_ok(req->ws_key) || req->duplicate_header ||
            req->ws_version.p == NULL)
                return 400;
        if (req->ws_version.len != 2 || memcmp(req->ws_version.p, "13", 2) != 0)
                return 426;
        return 0;
}

void pxl_ws_accept_key(const char *key, size_t key_len,
                       char out[PXL_WS_ACCEPT_LEN + 1])
{
        unsigned char buf[WS_KEY_MAX + sizeof(WS_GUID) - 1];
        unsigned char md[SHA_DIGEST_LENGTH];

        /*
         * Callers pass a key that pxl_http_check_upgrade accepted (24
         * bytes). Should one not, the clamp keeps the stack safe even
         * with NDEBUG; the answer is then wrong, as the key was.
         */
        assert(key_len <= WS_KEY_MAX);
        if (key_len > WS_KEY_MAX)
                key_len = WS_KEY_MAX;
        memcpy(buf, key, key_len);
        memcpy(buf + key_len, WS_GUID, sizeof(WS_GUID) - 1);
        SHA1(buf, key_len + sizeof(WS_GUID) - 1, md);
        EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
        out[PXL_WS_ACCEPT_LEN] = '\0';
}

static size_t clamp_snprintf(int n)
{
        /* Our formats cannot fail; treat a failure as "nothing written". */
        return n < 0 ? 0 : (size_t)n;
}

size_t pxl_http_format_101(char *out, size_t cap, const char *accept)
{
        return clamp_snprintf(snprintf(out, cap,
                                       "HTTP/1.1 101 Switching Protocols\r\n"
                                       "Upgrade: websocket\r\n"
                                       "Connection: Upgrade\r\n"
                                       "Sec-WebSocket-Accept: %s\r\n"
                                       "\r\n",
                                       accept));
}

const char *pxl_http_reason(int status)
{
        switch (status) {
        case 101:
                return "Switching Protocols";
        case 200:
                return "OK";
        case 400:
                return "Bad Request";
        case 401:
                return "Unauthorized";
        case 403:
                return "Forbidden";
        case 404:
                return "Not Found";
        case 405:
                return "Method Not Allowed";
        case 426:
                return "Upgrade Required";
        case 500:
                return "Internal Server Error";
        case 503:
                return "Service Unavailable";
        default:
                return "Error";
        }
}

size_t pxl_http_format_head(char *out, size_t cap, int status,
                            const char *content_type, size_t body_len,
                            bool keep_alive, const char *extra)
{
        return clamp_snprintf(snprintf(out, cap,
                                       "HTTP/1.1 %d %s\r\n"
                                       "Content-Type: %s\r\n"
                                       "Content-Length: %zu\r\n"
                                       "Connection: %s\r\n"
                                       "%s"
                                       "\r\n",
                                       status, pxl_http_reason(status),
                                       content_type, body_len,
                                       keep_alive ? "keep-alive" : "close",
                                       extra != NULL ? extra : ""));
}

size_t pxl_http_format_error(char *out, size_t cap, int status,
                             const char *body)
{
        size_t n;

        if (body == NULL)
                body = pxl_http_reason(status);
        /* The body ends in "\n" so curl and nc output ends cleanly. */
        n = pxl_http_format_head(
                out, cap, status, "text/plain; charset=utf-8", strlen(body) + 1,
                false, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL);
        return n +
               clamp_snprintf(snprintf(n < cap ? out + n : NULL,
                                       n < cap ? cap - n : 0, "%s\n", body));
}

/*
 * The first pair whose raw name matches wins. A decoded NUL is refused as
 * bad encoding: the value is used as a C string, and a token cut short at
 * the NUL must not be mistaken for the whole one.
 */
ssize_t pxl_http_query_param(struct pxl_http_span query, const char *name,
                             char *out, size_t cap)
{
        const char *p = query.p, *end;
        size_t nlen = strlen(name);

        if (p == NULL)
                return -1;
        end = p + query.len;
        while (p <= end) {
                const char *amp = memchr(p, '&', (size_t)(end - p));
                const char *e = amp != NULL ? amp : end;
                const char *eq = memchr(p, '=', (size_t)(e - p));
                const char *ne = eq != NULL ? eq : e;

                if ((size_t)(ne - p) == nlen && memcmp(p, name, nlen) == 0) {
                        const char *v = eq != NULL ? eq + 1 : e;
                        size_t n = 0;

                        for (; v < e; v++) {
                                int c = (unsigned char)*v;

                                if (c == '%') {
                                        int hi, lo;

                                        if (e - v < 3)
                                                return -2;
                                        hi = pxl_hexval(v[1]);
                                        lo = pxl_hexval(v[2]);
                                        if (hi < 0 || lo < 0 ||
                                            (hi == 0 && lo == 0))
                                                return -2;
                                        c = hi << 4 | lo;
                                        v += 2;
                                } else if (c == '+') {
                                        c = ' ';
                                }
                                if (n + 1 >= cap)
                                        return -2;
                                out[n++] = (char)c;
                        }
                        if (n >= cap)
                                return -2;
                        out[n] = '\0';
                        return (ssize_t)n;
                }
                if (amp == NULL)
                        break;
                p = amp + 1;
        }
        return -1;
}
