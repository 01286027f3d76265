/*
 * pxl_conn.c - a client connection from accept to close: the HTTP upgrade
 * (origin, token) on a bufferevent, frames in through the pure codec,
 * frames out with backpressure, the per-client limits (rate, address),
 * activity and heartbeat, the close handshake and the lingering close.
 * What a message means is the router's business; the client record is
 * pxl_clients.c's.
 */
#include <errno.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "pxl/pxl.h"
#include "pxl_auth.h"
#include "pxl_clients.h"
#include "pxl_conn.h"
#include "pxl_frame.h"
#include "pxl_http.h"
#include "pxl_int.h"
#include "pxl_log.h"
#include "pxl_rooms.h"
#include "pxl_router.h"
#include "pxl_server.h"
#include "pxl_str.h"
#include "pxl_time.h"
#include "pxl_tls.h"
#include "pxl_ws_codec.h"

/*
 * Each state lives on one list of the server (conn_list): the upgrading
 * ones and the closing ones are in deadline order, because every
 * connection of a list got the same timeout when it joined, so one timer
 * for the head of each list serves them all.
 */
enum conn_state {
        CONN_HANDSHAKE, /* reading the upgrade request (srv->handshaking) */
        CONN_OPEN,      /* frames flow both ways (srv->conns) */
        CONN_CLOSING,   /* we sent a close; waiting for the peer's */
        CONN_FLUSHING,  /* done; writing what is queued */
        CONN_LINGERING, /* written, write side shut; discarding input */
        CONN_DEAD,      /* waiting for the reaper to free it (srv->dead) */
};

/* Who began the close handshake; NOBODY: the connection was lost. */
enum closer { CLOSED_BY_NOBODY, CLOSED_BY_SERVER, CLOSED_BY_CLIENT };

/* The reply buffer a plain HTTP answer leaves is kept up to this. */
#define SCRATCH_KEEP_CAP (64 * 1024)

/* Assembled messages are not kept across messages: idle costs nothing. */
#define MSG_KEEP_CAP 0
/*
 * A close, whatever the peer does, takes at most this long from the
 * moment we decide to close: waiting for its close frame, writing what
 * is queued, and lingering.
 */
#define CLOSE_DEADLINE_MS 5000
/*
 * Lingering close (nginx's): input the peer still sends after our last
 * byte is read and thrown away, up to this much, so that the kernel does
 * not answer it with a reset that destroys the replies and the close
 * frame still on their way to the peer.
 */
#define LINGER_MAX_BYTES (1024 * 1024)

/* "[v6 address]:port" and its NUL. */
#define PEER_NAME_MAX (INET6_ADDRSTRLEN + 8)

/* Connections from one address (limits.max_connections_per_ip). */
struct pxl_conn_addr {
        struct pxl_map_node node; /* srv->addrs, keyed by the address bytes */
        unsigned n;
        unsigned char key[16];
};

struct pxl_conn {
        TAILQ_ENTRY(pxl_conn) link; /* srv->conns, then srv->dead */
        SLIST_ENTRY(pxl_conn) dirty_link; /* srv->dirty while output waits */
        struct pxl_worker *srv;
        struct bufferevent *bev;
        struct pxl_client *client; /* from the 101 until the close */
        struct pxl_conn_addr *addr; /* NULL when addresses are not counted */
        enum conn_state state;
        bool corked;         /* plain TCP: we write, not the bufferevent */
        bool dirty;          /* on srv->dirty */
        bool msg_open;       /* a message is being assembled in msg */
        bool msg_binary;
        bool read_paused;    /* output backed up: reading waits for a drain */
        uint8_t closed_by;   /* enum closer: who sent the first close */
        uint16_t close_code; /* sent or received; 1006 if none */
        unsigned rate_strikes; /* messages refused in a row (limits.rate) */
        union {
                int64_t ping_sent_ms; /* OPEN: ping not answered yet, or 0 */
                int64_t deadline_ms;  /* upgrading or closing: the end */
        };
        union {
                int64_t rate_tat_us;  /* OPEN: limits.rate's next slot */
                uint64_t discarded;   /* LINGERING: input thrown away */
        };
        struct pxl_ws_parser parser;
        struct pxl_str msg;
        struct pxl_conn_ref *ref;
        /* The peer, formatted only when a line names it: IPv6 bytes (an
         * IPv4 address mapped), port; all 0 when unknown. */
        uint8_t peer_addr[16];
        uint16_t peer_port;
        /* For the access line: data messages and frame bytes each way
         * (the metrics' counts for this client; messages mod 2^32). */
        uint32_t msgs_in, msgs_out;
        uint64_t bytes_in, bytes_out;
        int64_t opened_ms; /* accepted (the loop's clock) */
};

static void conn_read_cb(struct bufferevent *bev, void *arg);
static void conn_close_soon(struct pxl_conn *c);
static void output_drained(struct pxl_conn *c);
static void conn_write_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);

const char *pxl_conn_id(const struct pxl_conn *c)
{
        return c->client ? c->client->id : NULL;
}

bool pxl_conn_is_open(const struct pxl_conn *c)
{
        return c->state == CONN_OPEN;
}

static struct bufferevent *new_bufferevent(struct pxl_worker *srv,
                                           evutil_socket_t fd)
{
        if (srv->tls == NULL)
                return bufferevent_socket_new(srv->base, fd,
                                              BEV_OPT_CLOSE_ON_FREE);
        return pxl_tls_bufferevent_new(srv->base, fd, SSL_new(srv->tls),
                                       BUFFEREVENT_SSL_ACCEPTING);
}

size_t pxl_conn_size(void)
{
        return sizeof(struct pxl_conn);
}

static struct pxl_conn_list *conn_list(struct pxl_worker *srv,
                                      enum conn_state state)
{
        switch (state) {
        case CONN_HANDSHAKE:
                return &srv->handshaking;
        case CONN_OPEN:
                return &srv->conns;
        case CONN_DEAD:
                return &srv->dead;
        default:
                return &srv->closing;
        }
}

/* Wake up at `when` (ms) unless the deadline timer rings earlier. */
static void arm_deadline(struct pxl_worker *srv, int64_t when)
{
        int64_t wait = when - pxl_worker_now_ms(srv);
        struct timeval tv;

        if (srv->deadline_at != 0 && srv->deadline_at <= when)
                return;
        if (wait < 0)
                wait = 0;
        tv = pxl_ms_timeval((uint64_t)wait);
        srv->deadline_at = when;
        evtimer_add(srv->deadline_timer, &tv);
}

/*
 * Move c to the list of its new state. Joining the closing list starts
 * the close deadline; moving within it (closing, flushing, lingering)
 * keeps it.
 */
static void set_state(struct pxl_conn *c, enum conn_state state)
{
        struct pxl_worker *srv = c->srv;
        struct pxl_conn_list *from = conn_list(srv, c->state);
        struct pxl_conn_list *to = conn_list(srv, state);

        if (c->state == CONN_HANDSHAKE && state != CONN_HANDSHAKE)
                srv->nhandshaking--;
        c->state = state;
        if (from == to)
                return;
        TAILQ_REMOVE(from, c, link);
        TAILQ_INSERT_TAIL(to, c, link);
        if (to == &srv->closing) {
                c->deadline_ms = pxl_worker_now_ms(srv) + CLOSE_DEADLINE_MS;
                arm_deadline(srv, c->deadline_ms);
        }
}

/* The address a limit counts: IPv4 (mapped ones too) or IPv6 bytes. */
static size_t addr_key(const struct sockaddr *sa, unsigned char key[16])
{
        if (sa->sa_family == AF_INET) {
                memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
                return 4;
        }
        if (sa->sa_family == AF_INET6) {
                const struct in6_addr *a =
                        &((const struct sockaddr_in6 *)sa)->sin6_addr;

                if (IN6_IS_ADDR_V4MAPPED(a)) {
                        memcpy(key, a->s6_addr + 12, 4);
                        return 4;
                }
                memcpy(key, a->s6_addr, 16);
                return 16;
        }
        return 0; /* unix sockets and the like are not counted */
}

static struct pxl_conn_addr *addr_hold(struct pxl_worker *srv,
                                       const struct sockaddr *sa)
{
        unsigned char key[16];
        size_t len = addr_key(sa, key);
        struct pxl_map_node *n;
        struct pxl_conn_addr *a;

        if (len == 0)
                return NULL;
        n = pxl_map_get(&srv->addrs, (const char *)key, len);
        if (n != NULL) {
                a = pxl_container_of(n, struct pxl_conn_addr, node);
                a->n++;
                return a;
        }
        a = calloc(1, sizeof(*a));
        if (a == NULL)
                return NULL; /* not counted: the limit is best effort */
        memcpy(a->key, key, len);
        a->node.key = (const char *)a->key;
        a->node.key_len = len;
        a->n = 1;
        if (pxl_map_put(&srv->addrs, &a->node) < 0) {
                free(a);
                return NULL;
        }
        return a;
}

static void addr_release(struct pxl_worker *srv, struct pxl_conn_addr *a)
{
        if (a == NULL || --a->n > 0)
                return;
        pxl_map_remove(&srv->addrs, &a->node);
        free(a);
}

/* The peer's address and port, kept in c as bytes (no text, no malloc). */
static void keep_peer(struct pxl_conn *c, const struct sockaddr *sa)
{
        if (sa->sa_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

                c->peer_addr[10] = c->peer_addr[11] = 0xff;
                memcpy(c->peer_addr + 12, &in->sin_addr, 4);
                c->peer_port = ntohs(in->sin_port);
        } else if (sa->sa_family == AF_INET6) {
                const struct sockaddr_in6 *in6 =
                        (const struct sockaddr_in6 *)sa;

                memcpy(c->peer_addr, &in6->sin6_addr, 16);
                c->peer_port = ntohs(in6->sin6_port);
        }
}

/*
 * The peer as text: "10.0.0.5", "2001:db8::1", with the port
 * "10.0.0.5:51234", "[2001:db8::1]:51234"; "?" when unknown.
 */
static void peer_name(const struct pxl_conn *c, char *out, size_t cap,
                      bool with_port)
{
        struct in6_addr a;
        char ip[INET6_ADDRSTRLEN];
        bool v4;

        memcpy(&a, c->peer_addr, sizeof(a));
        v4 = IN6_IS_ADDR_V4MAPPED(&a);
        if (c->peer_port == 0 ||
            inet_ntop(v4 ? AF_INET : AF_INET6,
                      v4 ? c->peer_addr + 12 : c->peer_addr, ip,
                      sizeof(ip)) == NULL)
                snprintf(out, cap, "?");
        else if (!with_port)
                snprintf(out, cap, "%s", ip);
        else
                snprintf(out, cap, v4 ? "%s:%u" : "[%s]:%u", ip,
                         (unsigned)c->peer_port);
}

/* At limits.max_handshakes, the oldest upgrading connection makes room. */
static void make_room_for_handshake(struct pxl_worker *srv)
{
        struct pxl_conn *oldest = TAILQ_FIRST(&srv->handshaking);

        if (srv->nhandshaking < srv->conf->limits.max_handshakes ||
            oldest == NULL)
                return;
        srv->metrics.handshakes_dropped++;
        conn_close_soon(oldest);
}

void pxl_conn_accept(struct pxl_worker *srv, evutil_socket_t fd,
                     const struct sockaddr *sa, int salen)
{
        struct pxl_conn *c;
        int one = 1;

        (void)salen;
        /* Draining, the listener stays open only for plain HTTP (health). */
        if (srv->stopping && srv->nhttp == 0) {
                evutil_closesocket(fd);
                return;
        }
        make_room_for_handshake(srv);
        c = pxl_pool_alloc(&srv->conn_pool);
        if (c == NULL) {
                evutil_closesocket(fd);
                pxl_logs(PXL_LOG_WARN, "out of memory accepting a client");
                return;
        }
        /* Replies are small and latency matters more than packet count. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->bev = new_bufferevent(srv, fd);
        if (c->bev == NULL) {
                evutil_closesocket(fd);
                pxl_pool_free(&srv->conn_pool, c);
                pxl_logs(PXL_LOG_WARN, "out of memory accepting a client");
                return;
        }
        c->srv = srv;
        c->state = CONN_HANDSHAKE;
        c->close_code = PXL_CLOSE_ABNORMAL;
        if (srv->conf->limits.max_connections_per_ip != 0 && sa != NULL)
                c->addr = addr_hold(srv, sa);
        if (sa != NULL)
                keep_peer(c, sa);
        pxl_ws_parser_init(&c->parser, srv->conf->limits.max_frame_size,
                           srv->conf->limits.max_message_size, true);
        /* A deadline from accept: bytes trickling in do not extend it. */
        c->opened_ms = pxl_worker_now_ms(srv);
        c->deadline_ms = c->opened_ms +
                         (int64_t)srv->conf->limits.handshake_timeout * 1000;
        TAILQ_INSERT_TAIL(&srv->handshaking, c, link);
        arm_deadline(srv, c->deadline_ms);
        srv->nhandshaking++;
        srv->nconns++;
        bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb,
                          c);
        /*
         * Plain TCP output is corked: frames queued during a loop
         * iteration go out in one writev from the flusher, and the
         * bufferevent only writes (EV_WRITE) when the socket is full.
         * That saves two epoll_ctl calls per reply. TLS writes through
         * its bufferevent as usual.
         */
        c->corked = srv->tls == NULL;
        bufferevent_enable(c->bev, c->corked ? EV_READ : EV_READ | EV_WRITE);
}

/* Close the connections whose upgrade or close ran out of time. */
void pxl_conn_expire(struct pxl_worker *srv)
{
        int64_t now = pxl_worker_now_ms(srv);
        struct pxl_conn *c;

        srv->deadline_at = 0;
        while ((c = TAILQ_FIRST(&srv->handshaking)) != NULL &&
               c->deadline_ms <= now) {
                srv->metrics.handshake_timeouts++;
                pxl_logs(PXL_LOG_DEBUG, "upgrade not complete within "
                                        "limits.handshake_timeout, closing");
                conn_close_soon(c);
        }
        while ((c = TAILQ_FIRST(&srv->closing)) != NULL &&
               c->deadline_ms <= now) {
                pxl_log_ctx(PXL_LOG_DEBUG, NULL, pxl_conn_id(c),
                            "close not finished within %d ms, dropping",
                            CLOSE_DEADLINE_MS);
                conn_close_soon(c);
        }
        if ((c = TAILQ_FIRST(&srv->handshaking)) != NULL)
                arm_deadline(srv, c->deadline_ms);
        if ((c = TAILQ_FIRST(&srv->closing)) != NULL)
                arm_deadline(srv, c->deadline_ms);
}

/* Output was queued: write it at the end of this loop iteration. */
static void mark_dirty(struct pxl_conn *c)
{
        struct pxl_worker *srv = c->srv;

        if (!c->corked || c->dirty)
                return;
        c->dirty = true;
        if (SLIST_EMPTY(&srv->dirty))
                event_active(srv->flusher, 0, 0);
        SLIST_INSERT_HEAD(&srv->dirty, c, dirty_link);
}

static void unmark_dirty(struct pxl_conn *c)
{
        if (c->dirty) {
                SLIST_REMOVE(&c->srv->dirty, c, pxl_conn, dirty_link);
                c->dirty = false;
        }
}

/*
 * Write each dirty connection's output with one writev. What the kernel
 * does not take waits for EV_WRITE (the bufferevent then writes it and
 * conn_write_cb switches EV_WRITE off again).
 */
void pxl_conn_flush_all(struct pxl_worker *srv)
{
        struct pxl_conn *c;

        while ((c = SLIST_FIRST(&srv->dirty)) != NULL) {
                struct evbuffer *out = bufferevent_get_output(c->bev);

                SLIST_REMOVE_HEAD(&srv->dirty, dirty_link);
                c->dirty = false;
                if (c->state == CONN_DEAD)
                        continue;
                while (evbuffer_get_length(out) > 0) {
                        int n;

                        /*
                         * A socket bufferevent freezes the start of its
                         * output so only it drains it; we are writing on
                         * its behalf while its EV_WRITE is off.
                         */
                        evbuffer_unfreeze(out, 1);
                        n = evbuffer_write(out, bufferevent_getfd(c->bev));
                        evbuffer_freeze(out, 1);

                        if (n > 0)
                                continue;
                        if (n < 0 && errno != EAGAIN && errno != EINTR) {
                                conn_close_soon(c);
                                break;
                        }
                        /* The socket is full: let the bufferevent finish. */
                        bufferevent_enable(c->bev, EV_WRITE);
                        break;
                }
                if (evbuffer_get_length(out) == 0)
                        output_drained(c);
        }
}

/*
 * Free from the event loop, never from inside a send: a broadcast that
 * overflows one client must not free it under the sender's feet.
 */
static void conn_close_soon(struct pxl_conn *c)
{
        if (c->state == CONN_DEAD)
                return;
        set_state(c, CONN_DEAD);
        unmark_dirty(c);
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        event_active(c->srv->reaper, 0, 0);
}

void pxl_conn_reap(struct pxl_worker *srv)
{
        struct pxl_conn *c;

        while ((c = TAILQ_FIRST(&srv->dead)) != NULL)
                pxl_conn_close(c);
}

/*
 * Everything queued has been written: shut our side, and read what the
 * peer still sends (and throw it away) until it closes its side, the
 * close deadline passes, or LINGER_MAX_BYTES came.
 */
static void start_linger(struct pxl_conn *c)
{
        struct evbuffer *in = bufferevent_get_input(c->bev);

        set_state(c, CONN_LINGERING);
        if (shutdown(bufferevent_getfd(c->bev), SHUT_WR) < 0) {
                conn_close_soon(c);
                return;
        }
        c->discarded = evbuffer_get_length(in);
        evbuffer_drain(in, c->discarded);
        c->read_paused = false;
        bufferevent_enable(c->bev, EV_READ);
}

static void resume_reading(struct pxl_conn *c)
{
        c->read_paused = false;
        if (c->state != CONN_OPEN && c->state != CONN_CLOSING)
                return;
        bufferevent_enable(c->bev, EV_READ);
        /* What was read before the pause waits in the input buffer. */
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
                bufferevent_trigger(c->bev, EV_READ,
                                    BEV_TRIG_IGNORE_WATERMARKS |
                                            BEV_TRIG_DEFER_CALLBACKS);
}

/* The output buffer is empty. */
static void output_drained(struct pxl_conn *c)
{
        if (c->state == CONN_FLUSHING)
                start_linger(c);
        else if (c->read_paused)
                resume_reading(c);
}

/*
 * Backpressure: a client whose output backs up to half of
 * limits.max_output_bytes is not read from until it has taken it, so
 * replies (and pongs) to a client that sends without reading cannot grow
 * without bound; its own requests then wait in TCP, not in our memory.
 */
static bool output_backed_up(struct pxl_conn *c)
{
        size_t queued = evbuffer_get_length(bufferevent_get_output(c->bev));

        if (queued < c->srv->conf->limits.max_output_bytes / 2)
                return false;
        c->read_paused = true;
        bufferevent_disable(c->bev, EV_READ);
        return true;
}

/* Stop reading; linger once everything queued has been written. */
static void conn_finish(struct pxl_conn *c)
{
        if (c->state == CONN_FLUSHING || c->state == CONN_LINGERING ||
            c->state == CONN_DEAD)
                return;
        set_state(c, CONN_FLUSHING);
        bufferevent_disable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
                start_linger(c);
                return;
        }
        mark_dirty(c);
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
        c->srv->metrics.bytes_out += hlen + total;
        c->bytes_out += hlen + total;
        mark_dirty(c);
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
        if (c->closed_by == CLOSED_BY_NOBODY)
                c->closed_by = CLOSED_BY_SERVER;
}

/*
 * Whether c may queue `more` bytes; closes it with 4009 if not. One
 * message bigger than the limit passes when nothing else is queued: the
 * limit is for clients that do not read, not for big replies.
 */
static bool room_for(struct pxl_conn *c, size_t more)
{
        size_t queued = evbuffer_get_length(bufferevent_get_output(c->bev));
        uint64_t limit = c->srv->conf->limits.max_output_bytes;

        if (queued == 0 || queued + more <= limit)
                return true;
        pxl_log_ctx(PXL_LOG_WARN, NULL, pxl_conn_id(c),
                    "client does not read: %zu bytes queued, %zu more would "
                    "pass limits.max_output_bytes (%llu), closing with 4009",
                    queued, more, (unsigned long long)limit);
        c->srv->metrics.err_slow++;
        send_close_frame(c, PXL_CLOSE_TOO_SLOW, "too slow");
        conn_finish(c);
        return false;
}

static void out_of_memory(struct pxl_conn *c, const char *while_doing)
{
        pxl_log_ctx(PXL_LOG_WARN, NULL, pxl_conn_id(c),
                    "out of memory %s, closing", while_doing);
        send_close_frame(c, PXL_CLOSE_INTERNAL, NULL);
        conn_finish(c);
}

int pxl_conn_sendv(struct pxl_conn *c, uint8_t opcode, const struct iovec *iov,
                   int iovcnt)
{
        size_t total = 0;
        int rc;

        if (c->state != CONN_OPEN)
                return PXL_ECLOSED;
        for (int i = 0; i < iovcnt; i++)
                total += iov[i].iov_len;
        if (!room_for(c, total))
                return PXL_EAGAIN;
        rc = queue_frame(c, opcode, iov, iovcnt);
        if (rc < 0)
                out_of_memory(c, "queueing a message");
        else {
                c->srv->metrics.messages_out++;
                c->msgs_out++;
        }
        return rc;
}

int pxl_conn_send(struct pxl_conn *c, uint8_t opcode, const void *buf,
                  size_t len)
{
        struct iovec iov = {(void *)buf, len};

        return pxl_conn_sendv(c, opcode, &iov, 1);
}

int pxl_conn_send_frame(struct pxl_conn *c, struct pxl_frame *f)
{
        if (c->state != CONN_OPEN)
                return PXL_ECLOSED;
        if (!room_for(c, f->len))
                return PXL_EAGAIN;
        if (pxl_frame_add_to(bufferevent_get_output(c->bev), f) < 0) {
                out_of_memory(c, "queueing a shared frame");
                return PXL_ENOMEM;
        }
        mark_dirty(c);
        c->srv->metrics.messages_out++;
        c->srv->metrics.bytes_out += f->len;
        c->msgs_out++;
        c->bytes_out += f->len;
        return PXL_OK;
}

int pxl_conn_ws_close(struct pxl_conn *c, uint16_t code, const char *reason)
{
        if (c->state != CONN_OPEN)
                return PXL_ECLOSED;
        send_close_frame(c, code, reason);
        /* Waits for the peer's close until the close deadline at most. */
        set_state(c, CONN_CLOSING);
        c->msg_open = false;
        pxl_str_reset(&c->msg, MSG_KEEP_CAP);
        return PXL_OK;
}

void pxl_conn_shutdown_all(struct pxl_worker *srv)
{
        pxl_conn_shutdown_all_upgrading(srv);
        pxl_conn_shutdown_some(srv, UINT_MAX);
}

void pxl_conn_shutdown_all_upgrading(struct pxl_worker *srv)
{
        struct pxl_conn *c;

        /*
         * Each leaves the list. With an HTTP hook the requests being read
         * are answered (health: 503 draining, upgrades: 503) or meet
         * their deadline; a probe is not cut off mid-answer.
         */
        while (srv->nhttp == 0 &&
               (c = TAILQ_FIRST(&srv->handshaking)) != NULL)
                conn_close_soon(c);
}

unsigned pxl_conn_shutdown_some(struct pxl_worker *srv, unsigned n)
{
        struct pxl_conn *c;
        unsigned closed = 0;

        /* Oldest first; each leaves srv->conns. */
        while (closed < n && (c = TAILQ_FIRST(&srv->conns)) != NULL) {
                pxl_conn_ws_close(c, PXL_CLOSE_GOING_AWAY,
                                  "server shutting down");
                closed++;
        }
        return closed;
}

void pxl_conn_close_all(struct pxl_worker *srv)
{
        struct pxl_conn *c;

        pxl_conn_reap(srv);
        while ((c = TAILQ_FIRST(&srv->handshaking)) != NULL ||
               (c = TAILQ_FIRST(&srv->conns)) != NULL ||
               (c = TAILQ_FIRST(&srv->closing)) != NULL)
                pxl_conn_close(c);
}

const struct pxl_conn_io pxl_conn_io = {
        .id = pxl_conn_id,
        .is_open = pxl_conn_is_open,
        .send = pxl_conn_send,
        .send_frame = pxl_conn_send_frame,
        .close = pxl_conn_ws_close,
        .ref = pxl_conn_ref_get,
};

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


static void run_disconnect_hooks(struct pxl_conn *c)
{
        struct pxl_worker *srv = c->srv;

        for (size_t i = 0; i < srv->plugins.n; i++) {
                struct pxl_plugin_slot *p = &srv->plugins.v[i];
                struct pxl_ctx ctx;

                if (p->desc->on_disconnect == NULL)
                        continue;
                /* The hook sees the client and its rooms, not the socket. */
                pxl_ctx_init(&ctx, srv, p, NULL);
                ctx.client_id = c->client->id;
                p->desc->on_disconnect(&ctx, c->close_code);
                pxl_ctx_fini(&ctx);
        }
}

/*
 * How a client went: at debug, who closed; at info (log.access), the
 * access line with what it sent and received.
 */
static void log_disconnect(struct pxl_conn *c)
{
        static const char *const by[] = {
                [CLOSED_BY_NOBODY] = "connection lost, no close handshake",
                [CLOSED_BY_SERVER] = "closed by the server",
                [CLOSED_BY_CLIENT] = "closed by the client",
        };
        struct pxl_worker *srv = c->srv;
        char peer[PEER_NAME_MAX];

        if (pxl_log_enabled(PXL_LOG_DEBUG)) {
                peer_name(c, peer, sizeof(peer), false);
                pxl_log_ctx(PXL_LOG_DEBUG, NULL, c->client->id,
                            "disconnected from %s: %u, %s", peer, c->close_code,
                            by[c->closed_by]);
        }
        if (srv->conf->log_access && pxl_log_enabled(PXL_LOG_INFO)) {
                const struct pxl_log_text t[] = {{"peer", peer}}; /* below */
                const struct pxl_log_field f[] = {
                        {"duration_ms", false,
                         pxl_worker_now_ms(srv) - c->opened_ms, 0},
                        {"msgs_in", false, c->msgs_in, 0},
                        {"msgs_out", false, c->msgs_out, 0},
                        {"bytes_in", false, (long long)c->bytes_in, 0},
                        {"bytes_out", false, (long long)c->bytes_out, 0},
                        {"code", false, c->close_code, 0},
                };

                peer_name(c, peer, sizeof(peer), true);
                pxl_log_record(PXL_LOG_INFO, c->client->id, "access", t, 1, f,
                               sizeof(f) / sizeof(*f));
        }
}

void pxl_conn_close(struct pxl_conn *c)
{
        struct pxl_worker *srv = c->srv;
        bool was_open = c->client != NULL;

        TAILQ_REMOVE(conn_list(srv, c->state), c, link);
        if (c->state == CONN_HANDSHAKE)
                srv->nhandshaking--;
        /*
         * Closed directly (shutdown) it may still be open: the disconnect
         * hooks below must find it unable to send, its bufferevent gone.
         */
        c->state = CONN_DEAD;
        unmark_dirty(c); /* closed directly (shutdown), not via the reaper */
        addr_release(srv, c->addr);
        if (was_open)
                log_disconnect(c);
        bufferevent_free(c->bev);
        if (c->ref != NULL) {
                c->ref->conn = NULL;
                pxl_conn_ref_put(c->ref);
        }
        pxl_str_fini(&c->msg);
        if (was_open) {
                srv->metrics.disconnects++;
                run_disconnect_hooks(c);
                pxl_worker_announce(srv, &(struct pxl_change){
                                                 .kind = PXL_CHANGE_GONE,
                                                 .client = c->client,
                                                 .user_id = c->client->user_id,
                                                 .close_code = c->close_code});
                c->client->conn = NULL;
                pxl_client_remove(srv, c->client);
        }
        pxl_pool_free(&srv->conn_pool, c);
        pxl_server_conn_gone(srv, was_open);
}

/* log.level = debug: the client's id and address. */
static void log_connect(struct pxl_conn *c)
{
        char peer[PEER_NAME_MAX];

        if (!pxl_log_enabled(PXL_LOG_DEBUG))
                return;
        peer_name(c, peer, sizeof(peer), false);
        pxl_log_ctx(PXL_LOG_DEBUG, NULL, c->client->id, "connected from %s",
                    peer);
}

static void refuse(struct pxl_conn *c, int status, const char *body)
{
        char buf[512], peer[PEER_NAME_MAX];
        size_t n = pxl_http_format_error(buf, sizeof(buf), status, body);

        if (n >= sizeof(buf))
                n = sizeof(buf) - 1;
        evbuffer_add(bufferevent_get_output(c->bev), buf, n);
        if (status == 401)
                c->srv->metrics.auth_failures++;
        else
                c->srv->metrics.refused_upgrades++;
        peer_name(c, peer, sizeof(peer), false);
        pxl_log_ctx(PXL_LOG_INFO, NULL, NULL, "refused upgrade from %s: %d %s",
                    peer, status, body ? body : pxl_http_reason(status));
        conn_finish(c);
}

static void run_connect_hooks(struct pxl_conn *c)
{
        struct pxl_worker *srv = c->srv;

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

int pxl_conn_resume_as(struct pxl_conn *c, const char *id)
{
        struct pxl_worker *srv = c->srv;
        struct pxl_client *cl = c->client;

        if (cl == NULL || c->state != CONN_OPEN || strlen(id) != 32 ||
            pxl_clients_get(srv, id) != NULL)
                return PXL_EINVAL;
        /*
         * The identity it had ends as if its connection had: the hooks
         * cannot send to it (as in pxl_conn_close, where it is dead).
         */
        cl->conn = NULL;
        run_disconnect_hooks(c);
        cl->conn = c;
        pxl_worker_announce(srv, &(struct pxl_change){
                                         .kind = PXL_CHANGE_GONE,
                                         .client = cl,
                                         .user_id = cl->user_id,
                                         .close_code = PXL_CLOSE_NORMAL});
        pxl_rooms_leave_all(srv, cl);
        pxl_client_rekey(srv, cl, id);
        pxl_worker_announce(srv, &(struct pxl_change){
                                         .kind = PXL_CHANGE_CONNECTED,
                                         .client = cl,
                                         .user_id = cl->user_id});
        run_connect_hooks(c);
        return c->state == CONN_OPEN ? PXL_OK : PXL_ECLOSED;
}

/* (pxl) connected, then auth/authenticated for a token's user. */
static void send_greeting(struct pxl_conn *c)
{
        struct pxl_client *cl = c->client;
        struct pxl_str *s = &c->srv->scratch;

        s->len = 0;
        pxl_str_puts(s, "{\"type\":\"system\",\"action\":\"connected\","
                        "\"data\":{\"clientId\":\"");
        pxl_str_puts(s, cl->id);
        pxl_str_puts(s, "\"");
        if (c->srv->greet != NULL)
                c->srv->greet(c->srv, cl, s, c->srv->greet_arg);
        if (pxl_str_puts(s, "}}") == 0)
                pxl_conn_send(c, PXL_WS_OP_TEXT, s->p, s->len);
        if (cl->user_id == NULL)
                return;
        s->len = 0;
        pxl_str_puts(s, "{\"type\":\"auth\",\"action\":\"authenticated\","
                        "\"data\":{\"userId\":");
        pxl_str_puts(s, json_object_to_json_string_ext(cl->user_id,
                                                       JSON_C_TO_STRING_PLAIN));
        if (pxl_str_puts(s, ",\"message\":\"Authentication successful\"}}") == 0)
                pxl_conn_send(c, PXL_WS_OP_TEXT, s->p, s->len);
}

static bool origin_allowed(const struct pxl_config *conf,
                           const struct pxl_http_request *req)
{
        if (conf->origins == NULL)
                return true;
        if (req->origin.p == NULL)
                return false;
        for (size_t i = 0; conf->origins[i] != NULL; i++)
                if (strlen(conf->origins[i]) == req->origin.len &&
                    memcmp(conf->origins[i], req->origin.p, req->origin.len) == 0)
                        return true;
        return false;
}

/*
 * The token check (401) happens before the 101. Returns false after
 * refusing; on success *user_id and *token are the user (or NULL).
 */
static bool authenticate(struct pxl_conn *c, const struct pxl_http_request *req,
                         struct json_object **user_id,
                         struct json_object **payload)
{
        struct pxl_worker *srv = c->srv;
        const char *why = NULL, *reason = NULL;
        char *token = NULL;
        int rc;

        *user_id = *payload = NULL;
        if (srv->auth == NULL)
                return true;
        rc = pxl_auth_token(req, &token);
        if (rc < 0)
                why = "bad token parameter";
        else if (rc == 0 && pxl_auth_required(srv->auth))
                why = "token required";
        else if (rc == 1 &&
                 pxl_auth_verify(srv->auth, token,
                                 (time_t)(pxl_worker_now_ms(srv) / 1000),
                                 user_id, payload, &reason) < 0)
                why = reason;
        free(token);
        if (why == NULL)
                return true;
        refuse(c, 401, why);
        return false;
}

/*
 * A plain request (no Upgrade header) for another path than listen.path:
 * the HTTP hook's answer, then close. False when the hook passes.
 */
static bool answer_http(struct pxl_conn *c, const struct pxl_http_request *req)
{
        struct pxl_worker *srv = c->srv;
        struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
        const struct sockaddr *peer = NULL;

        /* The address kept at accept (an IPv4 one mapped, which the allow
         * lists read as IPv4): no getpeername per request. */
        if (c->peer_port != 0) {
                memcpy(&sa.sin6_addr, c->peer_addr, sizeof(sa.sin6_addr));
                sa.sin6_port = htons(c->peer_port);
                peer = (const struct sockaddr *)&sa;
        }
        srv->scratch.len = 0;
        if (pxl_worker_answer_http(srv, req, peer, &srv->scratch) <= 0)
                return false;
        evbuffer_add(bufferevent_get_output(c->bev), srv->scratch.p,
                     srv->scratch.len);
        /* A static file may have grown it to megabytes: not kept. */
        pxl_str_reset(&srv->scratch, SCRATCH_KEEP_CAP);
        conn_finish(c);
        return true;
}

/* Returns true when the connection is now open and frames may follow. */
static bool handle_upgrade(struct pxl_conn *c)
{
        struct pxl_worker *srv = c->srv;
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t have = evbuffer_get_length(in);
        size_t max = srv->conf->limits.max_header_size;
        size_t look = have < max + 1 ? have : max + 1;
        struct json_object *user_id, *payload;
        struct pxl_http_request req;
        char accept[PXL_WS_ACCEPT_LEN + 1], resp[256], id[33];
        const char *p;
        ssize_t head;
        int status;

        p = (const char *)evbuffer_pullup(in, (ev_ssize_t)look);
        head = pxl_http_parse_request(p, look, max, &req);
        if (head == PXL_HTTP_NEED_MORE)
                return false;
        /* PROTOCOL.md's order: 404, 400, 426, 403, 401, 503. */
        if (head < 0) {
                refuse(c, 400,
                       head == PXL_HTTP_TOO_LARGE ? "Request header too large"
                                                  : "Malformed HTTP request");
                return false;
        }
        status = pxl_http_check_upgrade(&req, srv->conf->path);
        /* Only a request that missed the path costs the hook a look. */
        if (status == 404 && req.upgrade.p == NULL && srv->nhttp > 0 &&
            answer_http(c, &req))
                return false;
        if (status != 0) {
                refuse(c, status,
                       status == 404   ? "Not Found"
                       : status == 426 ? "Unsupported WebSocket version"
                                       : "Bad WebSocket upgrade request");
                return false;
        }
        if (!origin_allowed(srv->conf, &req)) {
                refuse(c, 403, "Origin not allowed");
                return false;
        }
        if (!authenticate(c, &req, &user_id, &payload))
                return false;
        if (srv->nopen >= srv->conf->limits.max_connections || srv->stopping) {
                json_object_put(user_id);
                json_object_put(payload);
                refuse(c, 503, "Too many connections");
                return false;
        }
        /* Counts this one too, and the ones still upgrading. */
        if (c->addr != NULL &&
            c->addr->n > srv->conf->limits.max_connections_per_ip) {
                json_object_put(user_id);
                json_object_put(payload);
                srv->metrics.refused_per_ip++;
                refuse(c, 503, "Too many connections from this address");
                return false;
        }
        pxl_client_make_id(id);
        c->client = pxl_client_add(srv, c, id, user_id, payload);
        if (c->client == NULL) {
                refuse(c, 500, "Out of memory");
                return false;
        }
        pxl_ws_accept_key(req.ws_key.p, req.ws_key.len, accept);
        size_t n = pxl_http_format_101(resp, sizeof(resp), accept);
        evbuffer_add(bufferevent_get_output(c->bev), resp, n);
        mark_dirty(c);
        evbuffer_drain(in, (size_t)head);
        set_state(c, CONN_OPEN);
        c->ping_sent_ms = 0; /* was the upgrade deadline */
        c->close_code = PXL_CLOSE_ABNORMAL;
        srv->nopen++;
        srv->metrics.connects++;
        if (srv->conf->connected_frame)
                send_greeting(c);
        /* Before the hooks: the presence list comes right after the 101. */
        pxl_worker_announce(srv, &(struct pxl_change){
                                         .kind = PXL_CHANGE_CONNECTED,
                                         .client = c->client,
                                         .user_id = c->client->user_id});
        log_connect(c);
        run_connect_hooks(c);
        return c->state == CONN_OPEN;
}

static void count_close(struct pxl_worker *srv, uint16_t code)
{
        if (code == PXL_CLOSE_PROTOCOL)
                srv->metrics.err_protocol++;
        else if (code == PXL_CLOSE_BAD_DATA)
                srv->metrics.err_utf8++;
        else if (code == PXL_CLOSE_TOO_BIG)
                srv->metrics.err_too_big++;
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

/*
 * limits.rate as a generic cell rate algorithm: rate_tat_us is when the
 * client's next message is due at the allowed rate; it may run ahead of
 * now by `burst` messages. One timestamp per client, no timer.
 */
static bool within_rate(struct pxl_conn *c)
{
        const struct pxl_limits *l = &c->srv->conf->limits;
        int64_t now, interval, tolerance;

        if (l->rate == 0)
                return true;
        now = pxl_worker_now_us(c->srv);
        interval = 1000000 / (int64_t)l->rate;
        tolerance = interval * (int64_t)l->burst;
        if (c->rate_tat_us < now)
                c->rate_tat_us = now;
        if (c->rate_tat_us + interval - now > tolerance) {
                /*
                 * Refused messages count against the rate too, so a client
                 * that keeps sending faster than it stays refused (and is
                 * closed after `burst` in a row) instead of getting every
                 * few through; the debt is bounded by the close.
                 */
                if (c->rate_tat_us - now < 2 * tolerance)
                        c->rate_tat_us += interval;
                return false;
        }
        c->rate_tat_us += interval;
        c->rate_strikes = 0;
        return true;
}

static const char rate_error[] =
        "{\"type\":\"error\",\"action\":\"message\","
        "\"data\":{\"error\":\"Rate limit exceeded\"}}";

/* Over limits.rate: dropped unparsed; `burst` of them in a row: 4008. */
static void refuse_message(struct pxl_conn *c)
{
        struct pxl_worker *srv = c->srv;

        srv->metrics.rate_limited++;
        if (++c->rate_strikes < srv->conf->limits.burst) {
                pxl_conn_send(c, PXL_WS_OP_TEXT, rate_error,
                              sizeof(rate_error) - 1);
                return;
        }
        srv->metrics.closed_rate_limited++;
        pxl_log_ctx(PXL_LOG_INFO, NULL, pxl_conn_id(c),
                    "%u messages in a row over limits.rate, closing",
                    c->rate_strikes);
        pxl_conn_ws_close(c, PXL_CLOSE_RATE_LIMITED, "rate limited");
}

static void dispatch(struct pxl_conn *c, bool binary, const uint8_t *p,
                     size_t len)
{
        c->srv->metrics.messages_in++;
        c->msgs_in++;
        if (!within_rate(c)) {
                refuse_message(c);
                return;
        }
        c->client->last_activity_ms = pxl_worker_now_ms(c->srv);
        pxl_router_dispatch(c->srv, c, binary, p, len);
}

static void deliver(struct pxl_conn *c, const struct pxl_ws_event *ev)
{
        if (!c->msg_open && ev->fin) {
                /* The common case: a whole message in one read, no copy. */
                dispatch(c, ev->opcode == PXL_WS_OP_BINARY, ev->data, ev->len);
                return;
        }
        if (!c->msg_open) {
                c->msg_open = true;
                c->msg_binary = ev->opcode == PXL_WS_OP_BINARY;
        }
        if (pxl_str_append(&c->msg, ev->data, ev->len) < 0) {
                out_of_memory(c, "assembling a message");
                return;
        }
        if (ev->fin) {
                c->msg_open = false;
                dispatch(c, c->msg_binary, (const uint8_t *)c->msg.p,
                         c->msg.len);
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
                        c->client->last_activity_ms = pxl_worker_now_ms(c->srv);
                        iov.iov_base = ev->data;
                        iov.iov_len = ev->len;
                        queue_frame(c, PXL_WS_OP_PONG, &iov, 1);
                }
                break;
        case PXL_WS_EV_PONG:
                if (c->state == CONN_OPEN) /* else it is deadline_ms */
                        c->ping_sent_ms = 0; /* alive, but not "active" */
                break;
        case PXL_WS_EV_CLOSE:
                if (c->closed_by == CLOSED_BY_NOBODY)
                        c->closed_by = CLOSED_BY_CLIENT;
                if (c->state == CONN_OPEN)
                        send_close_frame(c, ev->close_code, NULL);
                c->close_code = ev->close_code;
                conn_finish(c);
                return false;
        case PXL_WS_EV_ERROR:
                pxl_log_ctx(PXL_LOG_DEBUG, NULL, pxl_conn_id(c),
                            "closing with %u: %s", ev->close_code,
                            close_reason(ev->close_code));
                count_close(c->srv, ev->close_code);
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
         * The parser keeps no input: an incomplete frame header or control
         * frame is left in `in` and parsed again with the next bytes.
         */
        buf = evbuffer_pullup(in, -1);
        while (pos < len) {
                struct pxl_ws_event ev;
                size_t n = pxl_ws_parse(&c->parser, buf + pos, len - pos, &ev);

                pos += n;
                if (!handle_event(c, &ev) || output_backed_up(c))
                        break;
        }
        if (c->state == CONN_FLUSHING || c->state == CONN_DEAD)
                pos = len;
        /* Counted as drained, so kept bytes are not counted twice. */
        c->srv->metrics.bytes_in += pos;
        c->bytes_in += pos;
        evbuffer_drain(in, pos);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
        struct pxl_conn *c = arg;
        struct evbuffer *in = bufferevent_get_input(bev);

        if (c->state == CONN_HANDSHAKE) {
                if (handle_upgrade(c) && !output_backed_up(c))
                        read_frames(c);
        } else if (c->state == CONN_OPEN || c->state == CONN_CLOSING) {
                read_frames(c);
        } else {
                size_t n = evbuffer_get_length(in);

                evbuffer_drain(in, n);
                if (c->state == CONN_LINGERING &&
                    (c->discarded += n) > LINGER_MAX_BYTES)
                        conn_close_soon(c);
        }
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
        struct pxl_conn *c = arg;

        if (c->corked && c->state != CONN_DEAD)
                bufferevent_disable(bev, EV_WRITE); /* drained: corked again */
        output_drained(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
        struct pxl_conn *c = arg;

        (void)bev;
        if (what == BEV_EVENT_CONNECTED)
                return; /* the TLS handshake finished; nothing to do */
        /* EOF or error: nothing more can be exchanged. */
        conn_close_soon(c);
}

/*
 * ---- activity and heartbeat (sweeps and worker-wide timers, none per client)
 * srv->conns holds the open connections only; a close moves one off it.
 */

void pxl_conn_sweep_idle(struct pxl_worker *srv)
{
        int64_t now = pxl_worker_now_ms(srv);
        int64_t max_idle = (int64_t)srv->conf->max_idle * 1000;
        struct pxl_conn *c, *next;

        for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
                next = TAILQ_NEXT(c, link);
                if (now - c->client->last_activity_ms < max_idle)
                        continue;
                srv->metrics.closed_inactive++;
                pxl_log_ctx(PXL_LOG_INFO, NULL, c->client->id,
                            "inactive for %lld ms, closing",
                            (long long)(now - c->client->last_activity_ms));
                pxl_conn_ws_close(c, PXL_CLOSE_INACTIVE, "inactive");
        }
}

/*
 * Heartbeat: every connection pinged at one tick shares that tick's
 * deadline (ping + heartbeat.timeout), so one worker-wide timer
 * (srv->heartbeat_check), armed for the oldest unanswered ping, closes
 * them all when it rings. Both walk srv->conns once; a pong only clears
 * ping_sent_ms, so messages cost nothing more.
 */

/* Close c for not answering the ping it got at c->ping_sent_ms. */
static void heartbeat_close(struct pxl_conn *c, int64_t now)
{
        c->srv->metrics.closed_heartbeat++;
        pxl_log_ctx(PXL_LOG_INFO, NULL, c->client->id,
                    "no pong %lld ms after the ping, closing",
                    (long long)(now - c->ping_sent_ms));
        pxl_conn_ws_close(c, PXL_CLOSE_HEARTBEAT, "heartbeat timeout");
}

/* Ring at ping + timeout for the oldest unanswered ping (0: none). */
static void arm_heartbeat_check(struct pxl_worker *srv, int64_t oldest)
{
        int64_t when, wait;
        struct timeval tv;

        if (oldest == 0 || srv->heartbeat_due != 0)
                return; /* nothing to wait for, or an earlier ping's check */
        when = oldest + (int64_t)srv->conf->heartbeat_timeout * 1000;
        wait = when - pxl_worker_now_ms(srv);
        tv = pxl_ms_timeval((uint64_t)(wait < 0 ? 0 : wait));
        srv->heartbeat_due = oldest;
        evtimer_add(srv->heartbeat_check, &tv);
}

void pxl_conn_heartbeat(struct pxl_worker *srv)
{
        int64_t now = pxl_worker_now_ms(srv);
        int64_t timeout = (int64_t)srv->conf->heartbeat_timeout * 1000;
        int64_t oldest = 0;
        struct pxl_conn *c, *next;

        for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
                next = TAILQ_NEXT(c, link);
                if (c->ping_sent_ms == 0) {
                        queue_frame(c, PXL_WS_OP_PING, NULL, 0);
                        c->ping_sent_ms = now;
                } else if (now - c->ping_sent_ms >= timeout) {
                        /* The check's work; only if it has not rung yet. */
                        heartbeat_close(c, now);
                        continue;
                }
                if (oldest == 0 || c->ping_sent_ms < oldest)
                        oldest = c->ping_sent_ms;
        }
        arm_heartbeat_check(srv, oldest);
}

void pxl_conn_heartbeat_expire(struct pxl_worker *srv)
{
        int64_t now = pxl_worker_now_ms(srv);
        int64_t due = srv->heartbeat_due;
        int64_t oldest = 0;
        struct pxl_conn *c, *next;

        /*
         * The timer rang timeout after the pings sent at `due`: those and
         * any older ones are late, whatever the rounding of `now` says.
         */
        srv->heartbeat_due = 0;
        for (c = TAILQ_FIRST(&srv->conns); c != NULL; c = next) {
                next = TAILQ_NEXT(c, link);
                if (c->ping_sent_ms == 0)
                        continue;
                if (c->ping_sent_ms <= due)
                        heartbeat_close(c, now);
                else if (oldest == 0 || c->ping_sent_ms < oldest)
                        oldest = c->ping_sent_ms;
        }
        arm_heartbeat_check(srv, oldest);
}
