/*
 * pxl_wsc.c - the outbound WebSocket client (struct pxl_wsc): URL, TCP or
 * TLS connect, the client side of the upgrade, masked frames out, frames
 * in through the pure codec, {type, action} routing of what arrives, the
 * close handshake and reconnecting with capped exponential backoff. The
 * frame, HTTP response and JSON grammars belong to pxl_ws_codec.c,
 * pxl_http.c and pxl_json.c; wrapping TLS round a socket to pxl_tls.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "pxl/pxl.h"
#include "pxl_http.h"
#include "pxl_json.h"
#include "pxl_msg.h"
#include "pxl_str.h"
#include "pxl_text.h"
#include "pxl_time.h"
#include "pxl_tls.h"
#include "pxl_ws_codec.h"
#include "pxl_wsc_int.h"

#define WSC_MAX_HEAD         8192 /* bytes of the 101 response head */
#define WSC_MAX_DEPTH        256  /* JSON nesting we route */
#define WSC_DEF_MAX_MSG      (4u << 20)
#define WSC_DEF_RETRY_MS     1000
#define WSC_DEF_RETRY_MAX_MS 30000
#define WSC_DEF_CONNECT_MS   10000
#define WSC_DEF_CLOSE_MS     5000
#define WSC_KEEP_MSGBUF      (64u << 10) /* reassembly memory kept */
#define WSC_CLIENT_ID_MAX    64

enum wsc_state {
        WSC_IDLE = 0,   /* between a drop and the decision what next */
        WSC_CONNECTING, /* TCP (and TLS) connecting, upgrade sent */
        WSC_OPEN,
        WSC_CLOSING, /* a close frame went out; waiting for the server */
        WSC_WAITING, /* the reconnect timer runs */
        WSC_CLOSED,  /* for good: closed by the app, or out of tries */
};

struct wsc_dyn_route {
        char *type;
        char *action;
        pxl_wsc_msg_fn *fn;
};

/* What a pxl_wsc callback receives: a pxl_msg plus the client's extras. */
struct wsc_msg {
        struct pxl_msg msg;
        struct pxl_json_span request_id;
        bool reply;
};

struct pxl_wsc {
        struct event_base *base;
        struct pxl_wsc_options opts; /* string fields cleared: copies below */
        enum wsc_state state;

        /* where to */
        bool tls;
        char *host;     /* for SNI and certificate checks */
        char *host_hdr; /* Host: value */
        char *path;     /* request target */
        char *token;
        char *origin;
        bool host_is_ip;
        char bind_text[INET6_ADDRSTRLEN + 2]; /* for error texts */
        struct evutil_addrinfo *addrs; /* resolved once, in pxl_wsc_new */
        struct evutil_addrinfo *addr;  /* the one being tried */
        struct sockaddr_storage bind;
        socklen_t bind_len;
        SSL_CTX *ssl_ctx;

        /* the link */
        struct bufferevent *bev;
        bool tcp_up; /* BEV_EVENT_CONNECTED seen for this address */
        bool hangup; /* close once the output is written (our error) */
        char accept[PXL_WS_ACCEPT_LEN + 1];
        struct pxl_ws_parser parser;
        bool in_msg;          /* a fragmented message is being assembled */
        uint8_t msg_opcode;   /* its opcode */
        struct pxl_str msg;   /* its bytes so far */
        struct pxl_str names; /* decoded type and action of a message */
        struct pxl_str out;   /* a message being built by pxl_wsc_send */
        uint64_t rng;         /* xorshift64* state for frame masks */
        int close_code;       /* the server's close code, 0 before one */
        char close_reason[PXL_WS_MAX_CONTROL];
        char client_id[WSC_CLIENT_ID_MAX + 1];

        /* reconnecting */
        struct event *timer;
        unsigned attempt; /* failed tries since the last open */
        bool user_closed; /* pxl_wsc_close was called */

        /* re-entrancy: callbacks may free us */
        unsigned busy;
        bool freeing;

        struct wsc_dyn_route *routes;
        size_t nroutes;

        char err[160];
};

static void wsc_read_cb(struct bufferevent *bev, void *arg);
static void wsc_event_cb(struct bufferevent *bev, short what, void *arg);
static void link_down(struct pxl_wsc *w, int code, const char *reason);

/* ---- pure helpers (pxl_wsc_int.h) ---------------------------------------- */

static bool url_char_ok(char c)
{
        return (unsigned char)c > 0x20 && c != 0x7f;
}

int pxl_wsc_url_parse(const char *url, struct pxl_wsc_url *u, const char **why)
{
        const char *p, *auth_end, *host_end, *after, *q;
        unsigned long port = 0;

        memset(u, 0, sizeof(*u));
        *why = NULL;
        if (url == NULL || *url == '\0') {
                *why = "no URL given";
                return PXL_EINVAL;
        }
        if (strncasecmp(url, "ws://", 5) == 0) {
                p = url + 5;
                u->port = 80;
        } else if (strncasecmp(url, "wss://", 6) == 0) {
                p = url + 6;
                u->tls = true;
                u->port = 443;
        } else {
                *why = "unsupported scheme (use ws:// or wss://)";
                return PXL_EINVAL;
        }
        for (q = url; *q; q++) {
                if (!url_char_ok(*q)) {
                        *why = "the URL contains a space or a control "
                               "character";
                        return PXL_EINVAL;
                }
        }
        auth_end = p + strcspn(p, "/?#");
        if (memchr(p, '@', (size_t)(auth_end - p)) != NULL) {
                *why = "user info in the URL is not supported (use the "
                       "token option)";
                return PXL_EINVAL;
        }
        if (*p == '[') {
                host_end = memchr(p, ']', (size_t)(auth_end - p));
                if (host_end == NULL) {
                        *why = "unterminated [ in the host";
                        return PXL_EINVAL;
                }
                u->host = p + 1;
                u->host_len = (size_t)(host_end - p - 1);
                u->ipv6 = true;
                after = host_end + 1;
        } else {
                host_end = memchr(p, ':', (size_t)(auth_end - p));
                if (host_end == NULL)
                        host_end = auth_end;
                u->host = p;
                u->host_len = (size_t)(host_end - p);
                after = host_end;
        }
        if (u->host_len == 0) {
                *why = "the URL has no host";
                return PXL_EINVAL;
        }
        if (after < auth_end) {
                if (*after != ':' || after + 1 == auth_end ||
                    auth_end - after > 6) {
                        *why = "bad port in the URL";
                        return PXL_EINVAL;
                }
                for (q = after + 1; q < auth_end; q++) {
                        if (!pxl_is_digit(*q)) {
                                *why = "bad port in the URL";
                                return PXL_EINVAL;
                        }
                        port = port * 10 + (unsigned long)(*q - '0');
                }
                if (port < 1 || port > 65535) {
                        *why = "port out of range 1..65535";
                        return PXL_EINVAL;
                }
                u->port = (unsigned)port;
                u->port_given = true;
        }
        if (strchr(auth_end, '#') != NULL) {
                *why = "a WebSocket URL cannot have a #fragment";
                return PXL_EINVAL;
        }
        u->path = auth_end;
        u->path_len = strlen(auth_end);
        return PXL_OK;
}

unsigned pxl_wsc_backoff_ms(unsigned attempt, unsigned base_ms, unsigned cap_ms)
{
        unsigned shift = attempt > 1 ? attempt - 1 : 0;
        uint64_t d;

        if (shift >= 32)
                return cap_ms;
        d = (uint64_t)base_ms << shift;
        return d > cap_ms ? cap_ms : (unsigned)d;
}

/* ---- small things -------------------------------------------------------- */

static void set_error(struct pxl_wsc *w, const char *fmt, ...) PXL_PRINTF(2, 3);

static void set_error(struct pxl_wsc *w, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(w->err, sizeof(w->err), fmt, ap);
        va_end(ap);
}

static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
        PXL_PRINTF(3, 4);

static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
{
        va_list ap;

        if (err == NULL || errlen == 0)
                return;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
}

/* xorshift64*: fast, and good enough to make masks unpredictable to
 * intermediaries (RFC 6455 10.3), which is all masking is for. */
static uint32_t rng_next(struct pxl_wsc *w)
{
        uint64_t x = w->rng;

        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        w->rng = x;
        return (uint32_t)((x * UINT64_C(0x2545F4914F6CDD1D)) >> 32);
}

static void enter(struct pxl_wsc *w)
{
        w->busy++;
}

static void destroy(struct pxl_wsc *w);

static void leave(struct pxl_wsc *w)
{
        if (--w->busy == 0 && w->freeing)
                destroy(w);
}

/* True when the caller must stop touching the link (gone, or freeing). */
static bool gone(const struct pxl_wsc *w)
{
        return w->freeing || w->bev == NULL;
}

static bool has_crlf(const char *s)
{
        return s != NULL && strpbrk(s, "\r\n") != NULL;
}

static char *dup_n(const char *s, size_t n)
{
        char *p = malloc(n + 1);

        if (p != NULL) {
                memcpy(p, s, n);
                p[n] = '\0';
        }
        return p;
}

/* ---- frames out ---------------------------------------------------------- */

/* One masked frame, written straight into the output buffer. */
static int write_frame(struct pxl_wsc *w, uint8_t opcode, const void *buf,
                       size_t len)
{
        struct evbuffer *out = bufferevent_get_output(w->bev);
        struct evbuffer_iovec v;
        uint32_t r = rng_next(w);
        uint8_t mask[4], *p;
        size_t hl;

        if (len > (size_t)EV_SSIZE_MAX - PXL_WS_MAX_HEADER)
                return PXL_EINVAL;
        memcpy(mask, &r, sizeof(mask));
        if (evbuffer_reserve_space(out, (ev_ssize_t)(len + PXL_WS_MAX_HEADER),
                                   &v, 1) < 1)
                return PXL_ENOMEM;
        p = v.iov_base;
        hl = pxl_ws_frame_header(p, opcode, true, len, mask);
        if (len > 0) {
                memcpy(p + hl, buf, len);
                pxl_ws_mask(p + hl, len, mask, 0);
        }
        v.iov_len = hl + len;
        if (evbuffer_commit_space(out, &v, 1) < 0)
                return PXL_ENOMEM;
        return PXL_OK;
}

static int send_close_frame(struct pxl_wsc *w, int code, const char *reason)
{
        uint8_t pl[PXL_WS_MAX_CONTROL];
        size_t n = pxl_ws_close_payload(pl, (uint16_t)code, reason);

        return write_frame(w, PXL_WS_OP_CLOSE, pl, n);
}

/* From now on only the server's answer (or silence) is awaited. */
static void start_closing(struct pxl_wsc *w)
{
        struct timeval tv;

        w->state = WSC_CLOSING;
        tv = pxl_ms_timeval(w->opts.close_timeout_ms);
        bufferevent_set_timeouts(w->bev, &tv, &tv);
}

/* ---- the link ------------------------------------------------------------ */

/* Forget the current connection; safe to call when there is none. */
static void drop_link(struct pxl_wsc *w)
{
        if (w->bev != NULL) {
                bufferevent_free(w->bev);
                w->bev = NULL;
        }
        w->tcp_up = false;
        w->hangup = false;
        w->in_msg = false;
        pxl_str_reset(&w->msg, WSC_KEEP_MSGBUF);
        w->close_code = 0;
        w->close_reason[0] = '\0';
}

static struct bufferevent *new_bev(struct pxl_wsc *w, evutil_socket_t fd)
{
        SSL *ssl;

        if (!w->tls)
                return bufferevent_socket_new(w->base, fd,
                                              BEV_OPT_CLOSE_ON_FREE);
        ssl = SSL_new(w->ssl_ctx);
        if (ssl == NULL)
                return NULL;
        /* SNI for names only; the peer is checked against the name, or
         * against the address for an IP literal. */
        if ((!w->host_is_ip && SSL_set_tlsext_host_name(ssl, w->host) != 1) ||
            (!w->opts.tls_insecure && w->host_is_ip &&
             X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), w->host) !=
                     1) ||
            (!w->opts.tls_insecure && !w->host_is_ip &&
             SSL_set1_host(ssl, w->host) != 1)) {
                SSL_free(ssl);
                return NULL;
        }
        return pxl_tls_bufferevent_new(w->base, fd, ssl,
                                       BUFFEREVENT_SSL_CONNECTING);
}

static int queue_upgrade(struct pxl_wsc *w)
{
        struct evbuffer *out = bufferevent_get_output(w->bev);
        unsigned char raw[16];
        char key[25];

        if (RAND_bytes(raw, sizeof(raw)) != 1) {
                set_error(w, "no random bytes for Sec-WebSocket-Key");
                return PXL_ERR;
        }
        EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
        pxl_ws_accept_key(key, 24, w->accept);
        if (evbuffer_add_printf(out,
                                "GET %s HTTP/1.1\r\n"
                                "Host: %s\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Key: %s\r\n"
                                "Sec-WebSocket-Version: 13\r\n",
                                w->path, w->host_hdr, key) < 0 ||
            (w->origin != NULL &&
             evbuffer_add_printf(out, "Origin: %s\r\n", w->origin) < 0) ||
            (w->token != NULL &&
             evbuffer_add_printf(out, "Authorization: Bearer %s\r\n",
                                 w->token) < 0) ||
            evbuffer_add(out, "\r\n", 2) < 0) {
                set_error(w, "out of memory");
                return PXL_ENOMEM;
        }
        return PXL_OK;
}

/*
 * Connect to w->addr. On failure the error is in w->err and nothing is
 * left allocated; the caller decides what the failure means.
 */
static int connect_addr(struct pxl_wsc *w)
{
        const struct evutil_addrinfo *ai = w->addr;
        struct timeval tv;
        evutil_socket_t fd;
        int one = 1;

        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
        if (fd < 0) {
                set_error(w, "socket: %s", strerror(errno));
                return PXL_ERR;
        }
        if (w->bind_len > 0) {
#ifdef IP_BIND_ADDRESS_NO_PORT
                /* Pick the port at connect(): the 4-tuple need be unique,
                 * not the port, so one source address serves many. */
                setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                           sizeof(one));
#endif
                if (w->bind.ss_family != ai->ai_family) {
                        set_error(w, "bind address family differs from "
                                     "the server's");
                        evutil_closesocket(fd);
                        return PXL_EINVAL;
                }
                if (bind(fd, (struct sockaddr *)&w->bind, w->bind_len) < 0) {
                        set_error(w, "bind %s: %s", w->bind_text,
                                  strerror(errno));
                        evutil_closesocket(fd);
                        return PXL_ERR;
                }
        }
        /* Requests are small and latency matters more than packet count. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        w->bev = new_bev(w, fd);
        if (w->bev == NULL) {
                evutil_closesocket(fd);
                set_error(w, "out of memory (or TLS setup failed)");
                return PXL_ENOMEM;
        }
        w->tcp_up = false;
        w->close_code = 0;
        w->close_reason[0] = '\0';
        w->in_msg = false;
        pxl_ws_parser_init(&w->parser, 0, w->opts.max_message_size, false);
        bufferevent_setcb(w->bev, wsc_read_cb, NULL, wsc_event_cb, w);
        tv = pxl_ms_timeval(w->opts.connect_timeout_ms);
        bufferevent_set_timeouts(w->bev, &tv, &tv);
        if (queue_upgrade(w) < 0)
                goto fail;
        if (bufferevent_socket_connect(w->bev, ai->ai_addr,
                                       (int)ai->ai_addrlen) < 0) {
                set_error(w, "connect: %s", strerror(errno));
                goto fail;
        }
        bufferevent_enable(w->bev, EV_READ | EV_WRITE);
        w->state = WSC_CONNECTING;
        w->client_id[0] = '\0'; /* each connection is told a new id */
        return PXL_OK;
fail:
        bufferevent_free(w->bev);
        w->bev = NULL;
        return PXL_ERR;
}

/* Try the addresses from `from` on until one starts connecting. */
static int connect_from(struct pxl_wsc *w, struct evutil_addrinfo *from)
{
        int rc = PXL_ERR;

        for (w->addr = from; w->addr != NULL; w->addr = w->addr->ai_next) {
                w->err[0] = '\0';
                if ((rc = connect_addr(w)) == PXL_OK)
                        return PXL_OK;
        }
        return rc;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
        struct pxl_wsc *w = arg;

        (void)fd;
        (void)what;
        enter(w);
        if (w->state == WSC_WAITING && connect_from(w, w->addrs) < 0)
                link_down(w, PXL_CLOSE_ABNORMAL, w->err);
        leave(w);
}

/* After a drop that the app did not ask for: retry, or give up. */
static void schedule_retry(struct pxl_wsc *w)
{
        struct timeval tv;
        unsigned delay;

        if (w->opts.max_retries == 0) {
                w->state = WSC_CLOSED;
                return;
        }
        if (w->opts.max_retries > 0 &&
            w->attempt >= (unsigned)w->opts.max_retries) {
                w->state = WSC_CLOSED;
                if (w->opts.on_reconnect_failed)
                        w->opts.on_reconnect_failed(w, w->attempt, w->opts.arg);
                return;
        }
        if (w->timer == NULL)
                w->timer = evtimer_new(w->base, timer_cb, w);
        w->attempt++;
        delay = pxl_wsc_backoff_ms(w->attempt, w->opts.retry_delay_ms,
                                   w->opts.retry_max_delay_ms);
        tv = pxl_ms_timeval(delay);
        if (w->timer == NULL || evtimer_add(w->timer, &tv) < 0) {
                set_error(w, "out of memory arming the reconnect timer");
                w->state = WSC_CLOSED;
                if (w->opts.on_reconnect_failed)
                        w->opts.on_reconnect_failed(w, w->attempt, w->opts.arg);
                return;
        }
        w->state = WSC_WAITING;
        if (w->opts.on_reconnecting)
                w->opts.on_reconnecting(w, w->attempt, delay, w->opts.arg);
}

/*
 * The connection (or the attempt) is over. Tell the app, then reconnect
 * unless it closed us. Only called from inside an event callback.
 */
static void link_down(struct pxl_wsc *w, int code, const char *reason)
{
        char text[sizeof(w->err)];

        snprintf(text, sizeof(text), "%s", reason ? reason : "");
        drop_link(w);
        w->state = w->user_closed ? WSC_CLOSED : WSC_IDLE;
        if (w->opts.on_close) {
                w->opts.on_close(w, code, text, w->opts.arg);
                if (w->freeing)
                        return;
        }
        if (w->state != WSC_IDLE)
                return; /* closed (or reconnected) from on_close */
        if (w->user_closed) {
                w->state = WSC_CLOSED;
                return;
        }
        schedule_retry(w);
}

/* ---- frames in ----------------------------------------------------------- */

static pxl_wsc_msg_fn *lookup(const struct pxl_wsc *w, const char *type,
                              const char *action)
{
        const struct pxl_wsc_route *r;
        size_t i;

        for (i = 0; i < w->nroutes; i++) {
                if (strcmp(w->routes[i].type, type) == 0 &&
                    strcmp(w->routes[i].action, action) == 0)
                        return w->routes[i].fn;
        }
        for (r = w->opts.routes; r != NULL && r->type != NULL; r++) {
                if (strcmp(r->type, type) == 0 &&
                    strcmp(r->action, action) == 0)
                        return r->fn;
        }
        return NULL;
}

/* Decode type and action into w->names (reused: no malloc once warm). */
static bool decode_names(struct pxl_wsc *w, const struct pxl_envelope *env,
                         struct pxl_msg *m)
{
        size_t need = env->type.len + env->action.len + 2;
        ssize_t tl, al;

        w->names.len = 0;
        if (pxl_str_reserve(&w->names, need) < 0)
                return false;
        tl = pxl_json_unescape(env->type.p, env->type.len, w->names.p,
                               env->type.len + 1);
        if (tl < 0)
                return false;
        al = pxl_json_unescape(env->action.p, env->action.len,
                               w->names.p + tl + 1, env->action.len + 1);
        if (al < 0)
                return false;
        m->type = w->names.p;
        m->action = w->names.p + tl + 1;
        return true;
}

static void note_client_id(struct pxl_wsc *w, const struct pxl_msg *m)
{
        struct pxl_json_span id;

        if (strcmp(m->type, "system") != 0 ||
            strcmp(m->action, "connected") != 0 || m->data.p == NULL ||
            !pxl_json_find(m->data.p, m->data.len, "clientId", &id) ||
            id.kind != PXL_JSON_STRING || id.len < 2 ||
            id.len - 2 > WSC_CLIENT_ID_MAX ||
            memchr(id.p, '\\', id.len) != NULL)
                return;
        memcpy(w->client_id, id.p + 1, id.len - 2);
        w->client_id[id.len - 2] = '\0';
}

/* Hand one whole message to its route; returns false to stop reading. */
static bool deliver(struct pxl_wsc *w, const uint8_t *buf, size_t len,
                    bool binary)
{
        struct pxl_envelope env;
        struct wsc_msg m;
        pxl_wsc_msg_fn *fn = NULL;

        memset(&m, 0, sizeof(m));
        m.msg.payload = buf;
        m.msg.len = len;
        m.msg.binary = binary;
        m.msg.type = "";
        m.msg.action = "";
        m.msg.max_depth = WSC_MAX_DEPTH;
        if (pxl_json_envelope((const char *)buf, len, WSC_MAX_DEPTH, &env) ==
                    PXL_ENV_OK &&
            decode_names(w, &env, &m.msg)) {
                m.msg.data = env.data;
                m.request_id = env.request_id;
                if (env.data.kind == PXL_JSON_NONE &&
                    env.response.kind != PXL_JSON_NONE) {
                        m.msg.data = env.response;
                        m.reply = true;
                }
                if (w->client_id[0] == '\0')
                        note_client_id(w, &m.msg);
                fn = lookup(w, m.msg.type, m.msg.action);
        }
        if (fn == NULL)
                fn = w->opts.on_message;
        if (fn != NULL)
                fn(w, &m.msg, w->opts.arg);
        json_object_put(m.msg.data_obj);
        return !gone(w);
}

static void wsc_write_cb(struct bufferevent *bev, void *arg)
{
        struct pxl_wsc *w = arg;

        (void)bev;
        enter(w);
        if (w->hangup)
                link_down(w, PXL_CLOSE_ABNORMAL, w->err);
        leave(w);
}

/*
 * A protocol error by the server: send a close frame saying why, stop
 * reading, and hang up once it is written (the write callback fires when
 * the output is empty), or after close_timeout_ms.
 */
static void protocol_error(struct pxl_wsc *w, int code, const char *what)
{
        struct timeval tv;

        set_error(w, "%s", what);
        if (w->state != WSC_OPEN || send_close_frame(w, code, what) < 0) {
                link_down(w, PXL_CLOSE_ABNORMAL, w->err);
                return;
        }
        w->state = WSC_CLOSING;
        w->hangup = true;
        bufferevent_disable(w->bev, EV_READ);
        bufferevent_setcb(w->bev, NULL, wsc_write_cb, wsc_event_cb, w);
        bufferevent_setwatermark(w->bev, EV_WRITE, 0, 0);
        tv = pxl_ms_timeval(w->opts.close_timeout_ms);
        bufferevent_set_timeouts(w->bev, NULL, &tv);
}

static bool on_close_frame(struct pxl_wsc *w, const struct pxl_ws_event *ev)
{
        size_t n = ev->reason_len < sizeof(w->close_reason) - 1
                           ? ev->reason_len
                           : sizeof(w->close_reason) - 1;

        w->close_code = ev->close_code;
        memcpy(w->close_reason, ev->reason, n);
        w->close_reason[n] = '\0';
        if (w->state == WSC_OPEN) {
                /* The server started it: echo its code, then wait for it
                 * to close TCP (RFC 6455 7.1.1: the server closes first). */
                send_close_frame(w, ev->close_code, NULL);
                start_closing(w);
        }
        return true;
}

static bool on_data(struct pxl_wsc *w, const struct pxl_ws_event *ev)
{
        bool binary;

        if (!w->in_msg && ev->fin) /* the usual case: no copy */
                return deliver(w, ev->data, ev->len,
                               ev->opcode == PXL_WS_OP_BINARY);
        if (!w->in_msg) {
                w->in_msg = true;
                w->msg_opcode = ev->opcode;
                w->msg.len = 0;
        }
        if (pxl_str_append(&w->msg, ev->data, ev->len) < 0) {
                protocol_error(w, PXL_CLOSE_TOO_BIG,
                               "out of memory for a message");
                return false;
        }
        if (!ev->fin)
                return true;
        w->in_msg = false;
        binary = w->msg_opcode == PXL_WS_OP_BINARY;
        if (!deliver(w, (const uint8_t *)w->msg.p, w->msg.len, binary))
                return false;
        pxl_str_reset(&w->msg, WSC_KEEP_MSGBUF);
        return true;
}

/*
 * Parse one contiguous chunk; *used = the bytes consumed (fewer than len
 * when it ends in an incomplete header or control frame). False once the
 * link is gone.
 */
static bool parse_chunk(struct pxl_wsc *w, uint8_t *buf, size_t len,
                        size_t *used)
{
        size_t pos = 0;

        *used = 0;
        while (pos < len) {
                struct pxl_ws_event ev;
                size_t n = pxl_ws_parse(&w->parser, buf + pos, len - pos, &ev);

                pos += n;
                *used = pos;
                switch (ev.type) {
                case PXL_WS_EV_NEED_MORE:
                        return true;
                case PXL_WS_EV_DATA:
                        if (w->state != WSC_OPEN)
                                break; /* after our close: dropped */
                        if (!on_data(w, &ev))
                                return false;
                        break;
                case PXL_WS_EV_PING:
                        if (w->state == WSC_OPEN &&
                            write_frame(w, PXL_WS_OP_PONG, ev.data, ev.len) <
                                    0) {
                                protocol_error(w, PXL_CLOSE_INTERNAL,
                                               "out of memory");
                                return false;
                        }
                        break;
                case PXL_WS_EV_PONG:
                        break;
                case PXL_WS_EV_CLOSE:
                        on_close_frame(w, &ev);
                        break;
                case PXL_WS_EV_ERROR:
                        protocol_error(w, ev.close_code,
                                       ev.close_code == PXL_CLOSE_TOO_BIG
                                               ? "message from the server "
                                                 "is too big"
                                       : ev.close_code == PXL_CLOSE_BAD_DATA
                                               ? "invalid UTF-8 from the "
                                                 "server"
                                               : "protocol error by the "
                                                 "server");
                        return false;
                }
        }
        return true;
}

/*
 * The parser keeps no input: parse all that arrived as one block and
 * drain only what it consumed. An incomplete frame header or control
 * frame stays in `in` and is parsed again, with what follows, next time.
 */
static void read_frames(struct pxl_wsc *w, struct evbuffer *in)
{
        size_t len = evbuffer_get_length(in), used;
        uint8_t *buf;

        if (len == 0)
                return;
        buf = evbuffer_pullup(in, -1);
        if (buf == NULL) {
                protocol_error(w, PXL_CLOSE_INTERNAL, "out of memory");
                return;
        }
        if (parse_chunk(w, buf, len, &used))
                evbuffer_drain(in, used);
}

static void refused(struct pxl_wsc *w, const struct pxl_http_response *r,
                    const char *head, size_t have)
{
        const char *body = head + r->head_len;
        size_t blen = 0, i;
        char clean[101];

        if (r->has_content_length && have - r->head_len >= r->content_length)
                blen = r->content_length;
        if (blen > sizeof(clean) - 1)
                blen = sizeof(clean) - 1;
        for (i = 0; i < blen; i++)
                clean[i] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : ' ';
        while (i > 0 && clean[i - 1] == ' ')
                i--;
        clean[i] = '\0';
        set_error(w, "the server refused the upgrade: HTTP %d %.*s%s%s",
                  r->status, (int)(r->reason.len > 40 ? 40 : r->reason.len),
                  r->reason.p, clean[0] ? ": " : "", clean);
}

/* The 101 (or not). Returns true when open and frames may follow. */
static bool read_upgrade(struct pxl_wsc *w, struct evbuffer *in)
{
        size_t have = evbuffer_get_length(in);
        size_t look = have < WSC_MAX_HEAD + 512 ? have : WSC_MAX_HEAD + 512;
        struct pxl_http_response r;
        const char *p;
        ssize_t rc;

        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
        rc = pxl_http_parse_response(p, look, WSC_MAX_HEAD, &r);
        if (rc == PXL_HTTP_NEED_MORE)
                return false;
        if (rc < 0) {
                set_error(w,
                          "the server's answer to the upgrade is not "
                          "HTTP (or its head is over %d bytes)",
                          WSC_MAX_HEAD);
                goto fail;
        }
        switch (pxl_http_check_101(&r, w->accept)) {
        case PXL_HTTP_101_OK:
                break;
        case PXL_HTTP_101_REFUSED:
                refused(w, &r, p, look);
                goto fail;
        case PXL_HTTP_101_NO_UPGRADE:
                set_error(w, "the server's 101 lacks Upgrade: websocket "
                             "or Connection: upgrade");
                goto fail;
        case PXL_HTTP_101_BAD_ACCEPT:
                set_error(w, "the server's Sec-WebSocket-Accept is wrong");
                goto fail;
        case PXL_HTTP_101_EXTENSION:
                set_error(w, "the server chose an extension or subprotocol "
                             "that was not offered");
                goto fail;
        }
        evbuffer_drain(in, r.head_len);
        w->state = WSC_OPEN;
        w->attempt = 0;
        w->err[0] = '\0';
        bufferevent_set_timeouts(w->bev, NULL, NULL);
        if (w->opts.on_open)
                w->opts.on_open(w, w->opts.arg);
        return !gone(w) && w->state != WSC_CONNECTING;
fail:
        link_down(w, PXL_CLOSE_ABNORMAL, w->err);
        return false;
}

static void wsc_read_cb(struct bufferevent *bev, void *arg)
{
        struct pxl_wsc *w = arg;
        struct evbuffer *in = bufferevent_get_input(bev);

        enter(w);
        if (w->state == WSC_CONNECTING && !read_upgrade(w, in))
                goto out;
        if (w->state == WSC_OPEN || w->state == WSC_CLOSING)
                read_frames(w, in);
out:
        leave(w);
}

static void socket_error_text(struct pxl_wsc *w, const char *what)
{
        unsigned long e = w->tls ? bufferevent_get_openssl_error(w->bev) : 0;
        int err = EVUTIL_SOCKET_ERROR();
        char buf[120];

        if (e != 0) {
                SSL *ssl = bufferevent_openssl_get_ssl(w->bev);
                long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

                ERR_error_string_n(e, buf, sizeof(buf));
                if (vr != X509_V_OK)
                        set_error(w, "tls: %s (%s)", buf,
                                  X509_verify_cert_error_string(vr));
                else
                        set_error(w, "tls: %s", buf);
                return;
        }
        set_error(w, "%s: %s", what,
                  err ? evutil_socket_error_to_string(err)
                      : "connection failed");
}

/*
 * A connect that failed under TLS can surface as EOF; the socket still
 * knows why. True (with w->err set) when it had an error to tell.
 */
static bool pending_socket_error(struct pxl_wsc *w, int saved)
{
        evutil_socket_t fd = bufferevent_getfd(w->bev);
        socklen_t len = sizeof(int);
        int e = 0;

        w->err[0] = '\0';
        if (w->tcp_up || fd < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
                return false;
        /* Consumed already: the errno of the failed handshake I/O. */
        if (e == 0 && w->tls && saved != 0 && saved != EAGAIN &&
            saved != EINPROGRESS)
                e = saved;
        if (e == 0)
                return false;
        set_error(w, "connect: %s", strerror(e));
        return true;
}

static void wsc_event_cb(struct bufferevent *bev, short what, void *arg)
{
        struct pxl_wsc *w = arg;
        int code = PXL_CLOSE_ABNORMAL;
        int saved = EVUTIL_SOCKET_ERROR();

        (void)bev;
        enter(w);
        if (what & BEV_EVENT_CONNECTED) {
                w->tcp_up = true;
                goto out;
        }
        if (w->state == WSC_CONNECTING) {
                if (what & BEV_EVENT_TIMEOUT)
                        set_error(w, "timed out %s",
                                  w->tcp_up ? "waiting for the 101"
                                            : "connecting");
                else if (!pending_socket_error(w, saved) &&
                         (what & BEV_EVENT_EOF))
                        set_error(w,
                                  "the server closed the connection "
                                  "before %s",
                                  w->tcp_up || !w->tls
                                          ? "the 101"
                                          : "the TLS handshake ended");
                else if (w->err[0] == '\0' || !(what & BEV_EVENT_EOF))
                        socket_error_text(w, "connect");
                /* Refused before TCP was up: the next address, if any. */
                if (!w->tcp_up && !(what & BEV_EVENT_TIMEOUT) &&
                    w->addr != NULL && w->addr->ai_next != NULL) {
                        char keep[sizeof(w->err)];

                        memcpy(keep, w->err, sizeof(keep));
                        bufferevent_free(w->bev);
                        w->bev = NULL;
                        if (connect_from(w, w->addr->ai_next) == 0)
                                goto out;
                        memcpy(w->err, keep, sizeof(keep));
                }
                link_down(w, code, w->err);
                goto out;
        }
        /* Open or closing: the connection ended. */
        if (w->hangup) {
                link_down(w, code, w->err);
                goto out;
        }
        if (w->close_code != 0) {
                code = w->close_code;
                link_down(w, code, w->close_reason);
                goto out;
        }
        if (what & BEV_EVENT_TIMEOUT)
                set_error(w, "timed out waiting for the server to close");
        else if (what & BEV_EVENT_EOF)
                set_error(w, "the server closed the connection without a "
                             "close frame");
        else
                socket_error_text(w, "connection lost");
        link_down(w, code, w->err);
out:
        leave(w);
}

/* ---- public -------------------------------------------------------------- */

static int copy_url(struct pxl_wsc *w, const struct pxl_wsc_url *u)
{
        struct in6_addr a6;
        char port[8];
        size_t hl;

        w->tls = u->tls;
        w->host = dup_n(u->host, u->host_len);
        if (u->path_len == 0)
                w->path = dup_n("/", 1);
        else if (u->path[0] == '?') {
                w->path = malloc(u->path_len + 2);
                if (w->path != NULL) {
                        w->path[0] = '/';
                        memcpy(w->path + 1, u->path, u->path_len + 1);
                }
        } else
                w->path = dup_n(u->path, u->path_len);
        if (w->host != NULL)
                w->host_is_ip = evutil_inet_pton(AF_INET, w->host, &a6) == 1 ||
                                evutil_inet_pton(AF_INET6, w->host, &a6) == 1;
        snprintf(port, sizeof(port), ":%u", u->port);
        hl = u->host_len + 2 + (u->port_given ? strlen(port) : 0);
        w->host_hdr = malloc(hl + 1);
        if (w->host == NULL || w->path == NULL || w->host_hdr == NULL)
                return PXL_ENOMEM;
        snprintf(w->host_hdr, hl + 1, "%s%s%s%s", u->ipv6 ? "[" : "", w->host,
                 u->ipv6 ? "]" : "", u->port_given ? port : "");
        return PXL_OK;
}

static int resolve(struct pxl_wsc *w, unsigned port, char *err, size_t errlen)
{
        struct evutil_addrinfo hints;
        char portstr[8];
        int rc;

        memset(&hints, 0, sizeof(hints));
        hints.ai_family = w->bind_len ? w->bind.ss_family : AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        snprintf(portstr, sizeof(portstr), "%u", port);
        /* Numeric hosts cost nothing; names use the system resolver, once,
         * here (reconnects reuse the addresses). */
        rc = evutil_getaddrinfo(w->host, portstr, &hints, &w->addrs);
        if (rc != 0) {
                fmt_err(err, errlen, "cannot resolve \"%s\": %s", w->host,
                        evutil_gai_strerror(rc));
                return PXL_EINVAL;
        }
        return PXL_OK;
}

static int parse_bind(struct pxl_wsc *w, const char *addr, char *err,
                      size_t errlen)
{
        int len = (int)sizeof(w->bind);
        char tmp[INET6_ADDRSTRLEN + 8];

        /* evutil_parse_sockaddr_port wants [v6] for IPv6 literals. */
        if (strchr(addr, ':') != NULL && addr[0] != '[')
                snprintf(tmp, sizeof(tmp), "[%s]", addr);
        else
                snprintf(tmp, sizeof(tmp), "%s", addr);
        if (evutil_parse_sockaddr_port(tmp, (struct sockaddr *)&w->bind, &len) <
            0) {
                fmt_err(err, errlen,
                        "bind_address \"%s\" is not a numeric address", addr);
                return PXL_EINVAL;
        }
        w->bind_len = (socklen_t)len;
        snprintf(w->bind_text, sizeof(w->bind_text), "%s", addr);
        return PXL_OK;
}

static int setup_tls(struct pxl_wsc *w, const char *ca_file, char *err,
                     size_t errlen)
{
        w->ssl_ctx = SSL_CTX_new(TLS_client_method());
        if (w->ssl_ctx == NULL) {
                fmt_err(err, errlen, "cannot create a TLS context");
                return PXL_ERR;
        }
        SSL_CTX_set_min_proto_version(w->ssl_ctx, TLS1_2_VERSION);
        if (w->opts.tls_insecure) {
                SSL_CTX_set_verify(w->ssl_ctx, SSL_VERIFY_NONE, NULL);
                return PXL_OK;
        }
        SSL_CTX_set_verify(w->ssl_ctx, SSL_VERIFY_PEER, NULL);
        if (ca_file != NULL
                    ? SSL_CTX_load_verify_locations(w->ssl_ctx, ca_file,
                                                    NULL) != 1
                    : SSL_CTX_set_default_verify_paths(w->ssl_ctx) != 1) {
                fmt_err(err, errlen, "cannot load CA certificates%s%s",
                        ca_file ? " from " : "", ca_file ? ca_file : "");
                return PXL_ERR;
        }
        return PXL_OK;
}

struct pxl_wsc *pxl_wsc_new(struct event_base *base,
                            const struct pxl_wsc_options *opts, char *err,
                            size_t errlen)
{
        struct pxl_wsc_url u;
        struct pxl_wsc *w;
        const char *why;

        fmt_err(err, errlen, "%s", "");
        if (base == NULL || opts == NULL) {
                fmt_err(err, errlen, "no event base or no options");
                return NULL;
        }
        if (pxl_wsc_url_parse(opts->url, &u, &why) < 0) {
                fmt_err(err, errlen, "url \"%s\": %s",
                        opts->url ? opts->url : "", why);
                return NULL;
        }
        if (has_crlf(opts->token) || has_crlf(opts->origin)) {
                fmt_err(err, errlen,
                        "token and origin cannot contain line "
                        "breaks");
                return NULL;
        }
        w = calloc(1, sizeof(*w));
        if (w == NULL) {
                fmt_err(err, errlen, "out of memory");
                return NULL;
        }
        w->base = base;
        w->opts = *opts;
        w->opts.url = NULL;
        w->opts.token = NULL;
        w->opts.origin = NULL;
        w->opts.tls_ca_file = NULL;
        if (w->opts.max_message_size == 0)
                w->opts.max_message_size = WSC_DEF_MAX_MSG;
        if (w->opts.retry_delay_ms == 0)
                w->opts.retry_delay_ms = WSC_DEF_RETRY_MS;
        if (w->opts.retry_max_delay_ms == 0)
                w->opts.retry_max_delay_ms = WSC_DEF_RETRY_MAX_MS;
        if (w->opts.connect_timeout_ms == 0)
                w->opts.connect_timeout_ms = WSC_DEF_CONNECT_MS;
        if (w->opts.close_timeout_ms == 0)
                w->opts.close_timeout_ms = WSC_DEF_CLOSE_MS;
        if (copy_url(w, &u) < 0 ||
            (opts->token && (w->token = strdup(opts->token)) == NULL) ||
            (opts->origin && (w->origin = strdup(opts->origin)) == NULL)) {
                fmt_err(err, errlen, "out of memory");
                goto fail;
        }
        if (opts->bind_address != NULL &&
            parse_bind(w, opts->bind_address, err, errlen) < 0)
                goto fail;
        /* Kept only for error texts; the caller's string is borrowed. */
        w->opts.bind_address = NULL;
        if (w->tls && setup_tls(w, opts->tls_ca_file, err, errlen) < 0)
                goto fail;
        if (RAND_bytes((unsigned char *)&w->rng, sizeof(w->rng)) != 1) {
                fmt_err(err, errlen, "no random bytes for the mask seed");
                goto fail;
        }
        w->rng |= 1; /* xorshift must not start at 0 */
        if (resolve(w, u.port, err, errlen) < 0)
                goto fail;
        if (connect_from(w, w->addrs) < 0) {
                fmt_err(err, errlen, "%s", w->err);
                goto fail;
        }
        return w;
fail:
        destroy(w);
        return NULL;
}

int pxl_wsc_route(struct pxl_wsc *w, const char *type, const char *action,
                  pxl_wsc_msg_fn *fn)
{
        struct wsc_dyn_route *r;
        size_t i;

        if (type == NULL || action == NULL)
                return PXL_EINVAL;
        for (i = 0; i < w->nroutes; i++) {
                if (strcmp(w->routes[i].type, type) != 0 ||
                    strcmp(w->routes[i].action, action) != 0)
                        continue;
                if (fn != NULL) {
                        w->routes[i].fn = fn;
                        return PXL_OK;
                }
                free(w->routes[i].type);
                free(w->routes[i].action);
                w->routes[i] = w->routes[--w->nroutes];
                return PXL_OK;
        }
        if (fn == NULL)
                return PXL_OK;
        r = realloc(w->routes, (w->nroutes + 1) * sizeof(*r));
        if (r == NULL)
                return PXL_ENOMEM;
        w->routes = r;
        r += w->nroutes;
        r->type = strdup(type);
        r->action = strdup(action);
        r->fn = fn;
        if (r->type == NULL || r->action == NULL) {
                free(r->type);
                free(r->action);
                return PXL_ENOMEM;
        }
        w->nroutes++;
        return PXL_OK;
}

static int send_frame(struct pxl_wsc *w, uint8_t op, const void *buf,
                      size_t len)
{
        if (w->state != WSC_OPEN || w->freeing)
                return PXL_ECLOSED;
        return write_frame(w, op, buf, len);
}

int pxl_wsc_send_text(struct pxl_wsc *w, const void *buf, size_t len)
{
        return send_frame(w, PXL_WS_OP_TEXT, buf, len);
}

int pxl_wsc_send_binary(struct pxl_wsc *w, const void *buf, size_t len)
{
        return send_frame(w, PXL_WS_OP_BINARY, buf, len);
}

/* json-c serialises into a buffer cached in the object: const in spirit. */
static const char *json_text(const struct json_object *o, size_t *len)
{
        return json_object_to_json_string_length(
                (struct json_object *)o,
                JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, len);
}

int pxl_wsc_send(struct pxl_wsc *w, const char *type, const char *action,
                 const struct json_object *data,
                 const struct json_object *request_id)
{
        struct pxl_str *s = &w->out;
        const char *t;
        size_t n;
        int rc = PXL_OK;

        if (type == NULL || action == NULL)
                return PXL_EINVAL;
        if (w->state != WSC_OPEN || w->freeing)
                return PXL_ECLOSED;
        s->len = 0;
        if (pxl_str_puts(s, "{\"type\":") < 0 ||
            pxl_str_json_string(s, type, strlen(type)) < 0 ||
            pxl_str_puts(s, ",\"action\":") < 0 ||
            pxl_str_json_string(s, action, strlen(action)) < 0)
                rc = PXL_ENOMEM;
        if (rc == 0 && data != NULL) {
                t = json_text(data, &n);
                if (t == NULL || pxl_str_puts(s, ",\"data\":") < 0 ||
                    pxl_str_append(s, t, n) < 0)
                        rc = PXL_ENOMEM;
        }
        if (rc == 0 && request_id != NULL) {
                t = json_text(request_id, &n);
                if (t == NULL || pxl_str_puts(s, ",\"requestId\":") < 0 ||
                    pxl_str_append(s, t, n) < 0)
                        rc = PXL_ENOMEM;
        }
        if (rc == 0 && pxl_str_append(s, "}", 1) < 0)
                rc = PXL_ENOMEM;
        if (rc == 0)
                rc = write_frame(w, PXL_WS_OP_TEXT, s->p, s->len);
        pxl_str_reset(s, WSC_KEEP_MSGBUF);
        return rc;
}

int pxl_wsc_close(struct pxl_wsc *w, int code, const char *reason)
{
        if (code != 0 && !pxl_ws_close_code_valid((unsigned)code))
                return PXL_EINVAL;
        w->user_closed = true;
        if (w->timer != NULL)
                evtimer_del(w->timer);
        switch (w->state) {
        case WSC_OPEN:
                if (send_close_frame(w, code, reason) < 0) {
                        drop_link(w);
                        w->state = WSC_CLOSED;
                        return PXL_ENOMEM;
                }
                start_closing(w);
                return PXL_OK;
        case WSC_CLOSING:
                return PXL_OK; /* the handshake is under way */
        default:
                drop_link(w);
                w->state = WSC_CLOSED;
                return PXL_OK;
        }
}

static void destroy(struct pxl_wsc *w)
{
        size_t i;

        drop_link(w);
        if (w->timer != NULL)
                event_free(w->timer);
        if (w->addrs != NULL)
                evutil_freeaddrinfo(w->addrs);
        SSL_CTX_free(w->ssl_ctx);
        for (i = 0; i < w->nroutes; i++) {
                free(w->routes[i].type);
                free(w->routes[i].action);
        }
        free(w->routes);
        free(w->host);
        free(w->host_hdr);
        free(w->path);
        free(w->token);
        free(w->origin);
        pxl_str_fini(&w->msg);
        pxl_str_fini(&w->names);
        pxl_str_fini(&w->out);
        free(w);
}

void pxl_wsc_free(struct pxl_wsc *w)
{
        if (w == NULL || w->freeing)
                return;
        if (w->busy > 0) {
                /* Inside one of our callbacks: stop everything now, free
                 * when the callback unwinds (leave()). */
                w->freeing = true;
                w->user_closed = true;
                drop_link(w);
                if (w->timer != NULL)
                        evtimer_del(w->timer);
                w->state = WSC_CLOSED;
                return;
        }
        destroy(w);
}

bool pxl_wsc_is_open(const struct pxl_wsc *w)
{
        return w->state == WSC_OPEN && !w->freeing;
}

size_t pxl_wsc_pending(const struct pxl_wsc *w)
{
        return w->bev ? evbuffer_get_length(bufferevent_get_output(w->bev)) : 0;
}

const char *pxl_wsc_client_id(const struct pxl_wsc *w)
{
        return w->client_id;
}

const char *pxl_wsc_error(const struct pxl_wsc *w)
{
        return w->err;
}

void *pxl_wsc_arg(const struct pxl_wsc *w)
{
        return w->opts.arg;
}

static const struct wsc_msg *wsc_msg_of(const struct pxl_msg *msg)
{
        return (const struct wsc_msg *)(const void *)((const char *)msg -
                                                      offsetof(struct wsc_msg,
                                                               msg));
}

const char *pxl_wsc_msg_data_json(const struct pxl_msg *msg, size_t *len)
{
        *len = msg->data.kind == PXL_JSON_NONE ? 0 : msg->data.len;
        return msg->data.kind == PXL_JSON_NONE ? NULL : msg->data.p;
}

const char *pxl_wsc_msg_request_id(const struct pxl_msg *msg, size_t *len)
{
        const struct wsc_msg *m = wsc_msg_of(msg);

        *len = m->request_id.kind == PXL_JSON_NONE ? 0 : m->request_id.len;
        return m->request_id.kind == PXL_JSON_NONE ? NULL : m->request_id.p;
}

bool pxl_wsc_msg_is_reply(const struct pxl_msg *msg)
{
        return wsc_msg_of(msg)->reply;
}
