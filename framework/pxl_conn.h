/*
 * pxl_conn.h - one client connection: its bufferevent, the upgrade, the
 * frame parser and the close handshake. Message semantics belong to the
 * router; the connection only moves bytes and enforces RFC 6455.
 */
#ifndef PXL_CONN_H
#define PXL_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/util.h>

struct pxl_worker;
struct pxl_conn;
struct pxl_conn_ref;
struct pxl_frame;

/* sizeof(struct pxl_conn), for the server's pool. */
size_t pxl_conn_size(void);
/* Take a freshly accepted socket (takes fd). */
void pxl_conn_accept(struct pxl_worker *srv, evutil_socket_t fd,
                     const struct sockaddr *sa, int salen);

/* Borrowed; 32 hex characters, valid while the connection lives. */
const char *pxl_conn_id(const struct pxl_conn *c);
/* True between the 101 and the start of the close handshake. */
bool pxl_conn_is_open(const struct pxl_conn *c);

/*
 * Queue one message made of iov pieces (copied) as a single frame of
 * `opcode`. Returns 0, PXL_ECLOSED when the connection no longer takes
 * messages, PXL_ENOMEM; a client whose queued output passes
 * limits.max_output_bytes is closed with 4009 and PXL_EAGAIN returned.
 */
int pxl_conn_sendv(struct pxl_conn *c, uint8_t opcode, const struct iovec *iov,
                   int iovcnt);
int pxl_conn_send(struct pxl_conn *c, uint8_t opcode, const void *buf,
                  size_t len);

/* Queue a shared frame by reference (same rules as pxl_conn_sendv). */
int pxl_conn_send_frame(struct pxl_conn *c, struct pxl_frame *f);

/* Start the close handshake with code and reason (reason may be NULL). */
int pxl_conn_ws_close(struct pxl_conn *c, uint16_t code, const char *reason);
/* Server shutdown: 1001 for open clients, drop the ones still upgrading. */
void pxl_conn_shutdown_all(struct pxl_worker *srv);
/* Drop the connections still upgrading. */
void pxl_conn_shutdown_all_upgrading(struct pxl_worker *srv);
/* Send the 1001 close to the n oldest open connections; how many. */
unsigned pxl_conn_shutdown_some(struct pxl_worker *srv, unsigned n);
/* Write every corked connection's queued output (end of an iteration). */
void pxl_conn_flush_all(struct pxl_worker *srv);
/* Close those whose upgrade or close deadline passed (its timer's work). */
void pxl_conn_expire(struct pxl_worker *srv);
/* Free the connections that finished (the reaper event's work). */
void pxl_conn_reap(struct pxl_worker *srv);
/* Close clients idle for inactivity.max_idle with 4000. */
void pxl_conn_sweep_idle(struct pxl_worker *srv);
/* Ping every client without a ping unanswered (heartbeat.interval's work). */
void pxl_conn_heartbeat(struct pxl_worker *srv);
/* Close with 4001 those whose ping is heartbeat.timeout old (its timer's). */
void pxl_conn_heartbeat_expire(struct pxl_worker *srv);
/* pxl_conn_close for every connection of srv. */
void pxl_conn_close_all(struct pxl_worker *srv);
/* Free the connection now: the one place a connection ends. */
void pxl_conn_close(struct pxl_conn *c);

/*
 * The open connection c takes over identity id (a resumed session, id
 * not in use): the identity it had ends as if disconnected (disconnect
 * hooks, PXL_CHANGE_GONE, its rooms left), the record is re-keyed to id
 * with no metadata and marked resumed, then PXL_CHANGE_CONNECTED and the
 * connect hooks. PXL_EINVAL when c is not open or id is taken;
 * PXL_ECLOSED when a connect hook closed it.
 */
int pxl_conn_resume_as(struct pxl_conn *c, const char *id);

/* A weak reference, for replies that arrive after the handler returned. */
struct pxl_conn_ref *pxl_conn_ref_get(struct pxl_conn *c);

/* These functions, for the core (struct pxl_worker's io). */
extern const struct pxl_conn_io pxl_conn_io;

#endif
