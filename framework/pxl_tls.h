/*
 * pxl_tls.h - TLS on a bufferevent: the step the server's connections
 * (pxl_conn.c) and the outbound client (pxl_wsc.c) share once each has
 * made and configured its SSL. Support level: libevent and OpenSSL only.
 * Contexts, certificates and peer checks stay with the callers.
 */
#ifndef PXL_TLS_H
#define PXL_TLS_H

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/ssl.h>

/*
 * A bufferevent speaking TLS through ssl on fd, created with
 * BEV_OPT_CLOSE_ON_FREE, accepting or connecting as `state` says, and
 * tolerating a peer that drops TCP without close_notify (common, and
 * harmless: WebSocket has its own close handshake). Takes ssl: the
 * bufferevent owns it, and it is freed here when the bufferevent cannot
 * be made (ssl NULL, from a failed SSL_new, just returns NULL). Returns
 * NULL on failure; fd is the caller's then.
 */
struct bufferevent *pxl_tls_bufferevent_new(struct event_base *base,
                                            evutil_socket_t fd, SSL *ssl,
                                            enum bufferevent_ssl_state state);

#endif
