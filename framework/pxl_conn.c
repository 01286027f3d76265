/*
 * pxl_conn.c - a client connection from accept to close: the HTTP upgrade
 * on a bufferevent, frames in through the pure codec, frames out, and the
 * close handshake. What a message means is the router's business; this
 * file only decides when a message is complete and whether it is allowed.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "pxl/pxl.h"
#include "pxl_conn.h"
#include "pxl_http.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_router.h"
#include "pxl_server.h"
#include "pxl_str.h"
#include "pxl_ws_codec.h"

enum conn_state {
        CONN_HANDSHAKE, /* reading the upgrade request */
        CONN_OPEN,      /* frames flow both ways */
        CONN_CLOSING,   /* we sent a close; waiting for the peer's */
        CONN_FLUSHING,  /* done; writing what is queued, then closing */
};

/* Messages kept in c->msg across reads; a larger buffer is not kept idle. */
#define MSG_KEEP_CAP 0

struct pxl_conn {
        TAILQ_ENTRY(pxl_conn) link;
        struct pxl_server *srv;
        struct bufferevent *bev;
        enum conn_state state;
        bool was_open;       /* reached CONN_OPEN: hooks are owed */
        bool msg_open;       /* a message is being assembled in msg */
        bool msg_binary;
        bool in_callback;    /* inside our read callback: defer the free */
        bool close_pending;  /* free once the callback unwinds */
        uint16_t close_code; /* sent or received; 1006 if none */
        struct pxl_ws_parser parser;
        struct pxl_str msg;
        struct pxl_conn_ref *ref;
        char id[33];
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

const char *pxl_conn_id(const struct pxl_conn *c)
{
        return c->id;
}

bool pxl_conn_is_open(const struct pxl_conn *c)
{
        return c->state == CONN_OPEN;
}

static void make_client_id(char out[33])
{
        static const char hex[] = "0123456789abcdef";
        unsigned char raw[16];

        if (RAND_bytes(raw, sizeof(raw)) != 1) {
                /* The DRBG failing is not something a client can cause. */
                pxl_logs(PXL_LOG_ERR, "RAND_bytes failed; cannot make ids");
                abort();
        }
        for (int i = 0; i < 16; i++) {
                out[2 * i] = hex[raw[i] >> 4];
                out[2 * i + 1] = hex[raw[i] & 15];
        }
        out[32] = '\0';
}

void pxl_conn_accept(struct pxl_server *srv, evutil_socket_t fd,
                     const struct sockaddr *sa, int salen)
{
        struct pxl_conn *c;
        int one = 1;

        (void)sa;
        (void)salen;
        if (srv->stopping) {
                evutil_closesocket(fd);
                return;
        }
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
                evutil_closesocket(fd);
                pxl_logs(PXL_LOG_WARN, "out of memory accepting a client");
                return;
        }
        /* Replies are small and latency matters more than packet count. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (srv->tls != NULL) {
                SSL *ssl = SSL_new(srv->tls);

                /* The bufferevent owns ssl (and fd) once it exists. */
                c->bev = ssl == NULL ? NULL
                                     : bufferevent_openssl_socket_new(
                                               srv->base, fd, ssl,
                                               BUFFEREVENT_SSL_ACCEPTING,
                                               BEV_OPT_CLOSE_ON_FREE);
                if (c->bev == NULL && ssl != NULL)
                        SSL_free(ssl);
                if (c->bev != NULL)
                        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        } else {
                c->bev = bufferevent_socket_new(srv->base, fd,
                                                BEV_OPT_CLOSE_ON_FREE);
        }
        if (c->bev == NULL) {
                evutil_closesocket(fd);
                free(c);
                pxl_logs(PXL_LOG_WARN, "out of memory accepting a client");
                return;
        }
        c->srv = srv;
        c->state = CONN_HANDSHAKE;
        c->close_code = PXL_CLOSE_ABNORMAL;
        make_client_id(c->id);
        pxl_ws_parser_init(&c->parser, srv->conf->limits.max_frame_size,
                           srv->conf->limits.max_message_size, true);
        TAILQ_INSERT_TAIL(&srv->conns, c, link);
        srv->nconns++;
        bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
                          c);
        bufferevent_set_timeouts(c->bev, srv->handshake_tv, NULL);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Free now, or as soon as our own callback returns. */
static void conn_close_soon(struct pxl_conn *c)
{
        if (c->in_callback)
                c->close_pending = true;
        else
                pxl_conn_close(c);
}

/* Stop reading; close once everything queued has been written. */
static void conn_finish(struct pxl_conn *c)
{
        c->state = CONN_FLUSHING;
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
                conn_close_soon(c);
                return;
        }
        /* A peer that stops reading must not keep us waiting forever. */
        bufferevent_set_timeouts(c->bev, NULL, c->srv->close_tv);
}

static int queue_frame(struct pxl_conn *c, uint8_t opcode,
                       const struct iovec *iov, int iovcnt)
{
        struct evbuffer *out = bufferevent_get_output(c->bev);
        uint8_t hdr[PXL_WS_MAX_HEADER];
        size_t total = 0, hlen;

        for (int i = 0; i < iovcnt; i++)
                total += iov[i].iov_len;
        hlen = pxl_ws_frame_header(hdr, opcode, true, total, NULL);
        if (evbuffer_add(out, hdr, hlen) < 0)
                return PXL_ENOMEM;
        for (int i = 0; i < iovcnt; i++)
                if (iov[i].iov_len &&
                    evbuffer_add(out, iov[i].iov_base, iov[i].iov_len) < 0)
                        return PXL_ENOMEM;
        return PXL_OK;
}

static void send_close_frame(struct pxl_conn *c, uint16_t code,
                             const char *reason)
{
        uint8_t payload[PXL_WS_MAX_CONTROL];
        struct iovec iov;

        iov.iov_base = payload;
        iov.iov_len = code == PXL_CLOSE_NO_STATUS
                              ? 0
                              : pxl_ws_close_payload(payload, code, reason);
        queue_frame(c, PXL_WS_OP_CLOSE, &iov, 1);
        c->close_code = code;
}

int pxl_conn_sendv(struct pxl_conn *c, uint8_t opcode, const struct iovec *iov,
                   int iovcnt)
{
        struct evbuffer *out;
        size_t total = 0;
        int rc;

        if (c->state != CONN_OPEN)
                return PXL_ECLOSED;
        out = bufferevent_get_output(c->bev);
        for (int i = 0; i < iovcnt; i++)
                total += iov[i].iov_len;
        if (evbuffer_get_length(out) + total >
            c->srv->conf->limits.max_output_bytes) {
                pxl_log_ctx(PXL_LOG_WARN, NULL, c->id,
                            "client does not read: %zu bytes queued, closing",
                            evbuffer_get_length(out));
                send_close_frame(c, PXL_CLOSE_TOO_SLOW, "too slow");
                conn_finish(c);
                return PXL_EAGAIN;
        }
        rc = queue_frame(c, opcode, iov, iovcnt);
        if (rc < 0) {
                pxl_log_ctx(PXL_LOG_WARN, NULL, c->id,
                            "out of memory queueing a message, closing");
                send_close_frame(c, PXL_CLOSE_INTERNAL, NULL);
                conn_finish(c);
        }
        return rc;
}

int pxl_conn_send(struct pxl_conn *c, uint8_t opcode, const void *buf,
                  size_t len)
{
        struct iovec iov = {(void *)buf, len};

        return pxl_conn_sendv(c, opcode, &iov, 1);
}

int pxl_conn_ws_close(struct pxl_conn *c, uint16_t code, const char *reason)
{
        if (c->state != CONN_OPEN)
                return PXL_ECLOSED;
        send_close_frame(c, code, reason);
        c->state = CONN_CLOSING;
        c->msg_open = false;
        pxl_str_reset(&c->msg, MSG_KEEP_CAP);
        /* Wait for the peer's close, but not forever. */
        bufferevent_set_timeouts(c->bev, c->srv->close_tv, c->srv->close_tv);
        return PXL_OK;
}

void pxl_conn_shutdown(struct pxl_conn *c)
{
        if (c->state == CONN_HANDSHAKE)
                pxl_conn_close(c);
        else if (c->state == CONN_OPEN)
                pxl_conn_ws_close(c, PXL_CLOSE_GOING_AWAY,
                                  "server shutting down");
}

void pxl_conn_shutdown_all(struct pxl_server *srv)
{
        struct pxl_conn *c, *next;

        for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
                next = TAILQ_NEXT(c, link);
                pxl_conn_shutdown(c);
        }
}

void pxl_conn_close_all(struct pxl_server *srv)
{
        struct pxl_conn *c;

        while ((c = TAILQ_FIRST(&srv->conns)) != NULL)
                pxl_conn_close(c);
}

struct pxl_conn_ref *pxl_conn_ref_get(struct pxl_conn *c)
{
        if (c->ref == NULL) {
                c->ref = calloc(1, sizeof(*c->ref));
                if (c->ref == NULL)
                        return NULL;
                c->ref->conn = c;
                c->ref->refs = 1; /* the connection's own */
        }
        c->ref->refs++;
        return c->ref;
}

void pxl_conn_ref_put(struct pxl_conn_ref *ref)
{
        if (ref != NULL && --ref->refs == 0)
                free(ref);
}

void pxl_conn_close(struct pxl_conn *c)
{
        struct pxl_server *srv = c->srv;
        bool was_open = c->was_open;

        TAILQ_REMOVE(&srv->conns, c, link);
        bufferevent_free(c->bev);
        if (c->ref != NULL) {
                c->ref->conn = NULL;
                pxl_conn_ref_put(c->ref);
        }
        pxl_str_fini(&c->msg);
        if (was_open) {
                for (size_t i = 0; i < srv->plugins.n; i++) {
                        struct pxl_plugin_slot *p = &srv->plugins.v[i];
                        struct pxl_ctx ctx;

                        if (p->desc->on_disconnect == NULL)
                                continue;
                        /* The hook sees the id, but the socket is gone. */
                        pxl_ctx_init(&ctx, srv, p, NULL);
                        ctx.client_id = c->id;
                        p->desc->on_disconnect(&ctx, c->close_code);
                        pxl_ctx_fini(&ctx);
                }
        }
        free(c);
        pxl_server_conn_gone(srv, was_open);
}

static void refuse(struct pxl_conn *c, int status, const char *body)
{
        char buf[512];
        size_t n = pxl_http_format_error(buf, sizeof(buf), status, body);

        if (n >= sizeof(buf))
                n = sizeof(buf) - 1;
        evbuffer_add(bufferevent_get_output(c->bev), buf, n);
        pxl_log_ctx(PXL_LOG_DEBUG, NULL, NULL, "refused upgrade: %d %s",
                    status, body ? body : pxl_http_reason(status));
        conn_finish(c);
}

static void run_connect_hooks(struct pxl_conn *c)
{
        struct pxl_server *srv = c->srv;

        for (size_t i = 0; i < srv->plugins.n && c->state == CONN_OPEN; i++) {
                struct pxl_plugin_slot *p = &srv->plugins.v[i];
                struct pxl_ctx ctx;

                if (p->desc->on_connect == NULL)
                        continue;
                pxl_ctx_init(&ctx, srv, p, c);
                p->desc->on_connect(&ctx);
                pxl_ctx_fini(&ctx);
        }
}

/* (pxl) The first frame tells the client its id. */
static void send_connected(struct pxl_conn *c)
{
        char buf[128];
        int n = snprintf(buf, sizeof(buf),
                         "{\"type\":\"system\",\"action\":\"connected\","
                         "\"data\":{\"clientId\":\"%s\"}}",
                         c->id);

        pxl_conn_send(c, PXL_WS_OP_TEXT, buf, (size_t)n);
}

/* Returns true when the connection is now open and frames may follow. */
static bool handle_upgrade(struct pxl_conn *c)
{
        struct pxl_server *srv = c->srv;
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t have = evbuffer_get_length(in);
        size_t max = srv->conf->limits.max_header_size;
        size_t look = have < max + 1 ? have : max + 1;
        struct pxl_http_request req;
        char accept[PXL_WS_ACCEPT_LEN + 1], resp[256];
        const char *p;
        ssize_t head;
        int status;

        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
        head = pxl_http_parse_request(p, look, max, &req);
        if (head == PXL_HTTP_NEED_MORE)
                return false;
        if (head < 0) {
                refuse(c, 400,
                       head == PXL_HTTP_TOO_LARGE ? "Request header too large"
                                                  : "Malformed HTTP request");
                return false;
        }
        status = pxl_http_check_upgrade(&req, srv->conf->path);
        if (status != 0) {
                refuse(c, status,
                       status == 404   ? "Not Found"
                       : status == 426 ? "Unsupported WebSocket version"
                                       : "Bad WebSocket upgrade request");
                return false;
        }
        if (srv->nopen >= srv->conf->limits.max_connections || srv->stopping) {
                refuse(c, 503, "Too many connections");
                return false;
        }
        pxl_ws_accept_key(req.ws_key.p, req.ws_key.len, accept);
        size_t n = pxl_http_format_101(resp, sizeof(resp), accept);
        evbuffer_add(bufferevent_get_output(c->bev), resp, n);
        evbuffer_drain(in, (size_t)head);
        c->state = CONN_OPEN;
        c->was_open = true;
        c->close_code = PXL_CLOSE_ABNORMAL;
        srv->nopen++;
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        send_connected(c);
        run_connect_hooks(c);
        return c->state == CONN_OPEN;
}

static const char *close_reason(uint16_t code)
{
        switch (code) {
        case PXL_CLOSE_PROTOCOL:
                return "protocol error";
        case PXL_CLOSE_BAD_DATA:
                return "invalid UTF-8";
        case PXL_CLOSE_TOO_BIG:
                return "message too big";
        default:
                return NULL;
        }
}

static void deliver(struct pxl_conn *c, const struct pxl_ws_event *ev)
{
        if (!c->msg_open && ev->fin) {
                /* The common case: a whole message in one read, no copy. */
                pxl_router_dispatch(c->srv, c, ev->opcode == PXL_WS_OP_BINARY,
                                    ev->data, ev->len);
                return;
        }
        if (!c->msg_open) {
                c->msg_open = true;
                c->msg_binary = ev->opcode == PXL_WS_OP_BINARY;
        }
        if (pxl_str_append(&c->msg, ev->data, ev->len) < 0) {
                pxl_log_ctx(PXL_LOG_WARN, NULL, c->id,
                            "out of memory assembling a message");
                send_close_frame(c, PXL_CLOSE_INTERNAL, NULL);
                conn_finish(c);
                return;
        }
        if (ev->fin) {
                c->msg_open = false;
                pxl_router_dispatch(c->srv, c, c->msg_binary,
                                    (const uint8_t *)c->msg.p, c->msg.len);
                pxl_str_reset(&c->msg, MSG_KEEP_CAP);
        }
}

/* One parser event; returns false when reading must stop. */
static bool handle_event(struct pxl_conn *c, const struct pxl_ws_event *ev)
{
        struct iovec iov;

        switch (ev->type) {
        case PXL_WS_EV_NEED_MORE:
                return false;
        case PXL_WS_EV_DATA:
                if (c->state == CONN_OPEN)
                        deliver(c, ev);
                break;
        case PXL_WS_EV_PING:
                if (c->state == CONN_OPEN) {
                        iov.iov_base = ev->data;
                        iov.iov_len = ev->len;
                        queue_frame(c, PXL_WS_OP_PONG, &iov, 1);
                }
                break;
        case PXL_WS_EV_PONG:
                break;
        case PXL_WS_EV_CLOSE:
                if (c->state == CONN_OPEN)
                        send_close_frame(c, ev->close_code, NULL);
                c->close_code = ev->close_code;
                conn_finish(c);
                return false;
        case PXL_WS_EV_ERROR:
                pxl_log_ctx(PXL_LOG_DEBUG, NULL, c->id,
                            "closing with %u: %s", ev->close_code,
                            close_reason(ev->close_code));
                if (c->state == CONN_OPEN)
                        send_close_frame(c, ev->close_code,
                                         close_reason(ev->close_code));
                conn_finish(c);
                return false;
        }
        return c->state == CONN_OPEN || c->state == CONN_CLOSING;
}

static void read_frames(struct pxl_conn *c)
{
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t len, pos = 0;
        uint8_t *buf;

        len = evbuffer_get_length(in);
        if (len == 0)
                return;
        /*
         * One contiguous view of everything that arrived; consumed bytes
         * are drained below, so a large message never accumulates here.
         */
        buf = evbuffer_pullup(in, -1);
        while (pos < len) {
                struct pxl_ws_event ev;
                size_t n = pxl_ws_parse(&c->parser, buf + pos, len - pos, &ev);

                pos += n;
                if (!handle_event(c, &ev))
                        break;
        }
        if (c->state == CONN_FLUSHING)
                evbuffer_drain(in, len);
        else
                evbuffer_drain(in, pos);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
        struct pxl_conn *c = arg;

        (void)bev;
        c->in_callback = true;
        if (c->state == CONN_HANDSHAKE && handle_upgrade(c))
                read_frames(c);
        else if (c->state == CONN_OPEN || c->state == CONN_CLOSING)
                read_frames(c);
        else if (c->state == CONN_FLUSHING)
                evbuffer_drain(bufferevent_get_input(c->bev),
                               evbuffer_get_length(bufferevent_get_input(c->bev)));
        c->in_callback = false;
        if (c->close_pending)
                pxl_conn_close(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
        struct pxl_conn *c = arg;

        (void)bev;
        if (c->state == CONN_FLUSHING)
                pxl_conn_close(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
        struct pxl_conn *c = arg;

        (void)bev;
        if (what == BEV_EVENT_CONNECTED)
                return; /* the TLS handshake finished; nothing to do */
        if (what & BEV_EVENT_TIMEOUT)
                pxl_log_ctx(PXL_LOG_DEBUG, NULL, c->state == CONN_HANDSHAKE ? NULL : c->id,
                            "timeout while %s",
                            c->state == CONN_HANDSHAKE ? "upgrading" : "closing");
        /* EOF, error or timeout: nothing more can be exchanged. */
        pxl_conn_close(c);
}
