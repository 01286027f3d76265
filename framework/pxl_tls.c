/*
 * pxl_tls.c - wrapping a socket's SSL in a bufferevent, for the server's
 * connections and the outbound client alike. Making SSL contexts, loading
 * certificates and checking the peer are the callers' business.
 */
#include "pxl_tls.h"

struct bufferevent *pxl_tls_bufferevent_new(struct event_base *base,
                                            evutil_socket_t fd, SSL *ssl,
                                            enum bufferevent_ssl_state state)
{
        struct bufferevent *bev;

        if (ssl == NULL)
                return NULL;
        /* The bufferevent owns ssl (and fd) once it exists. */
        bev = bufferevent_openssl_socket_new(base, fd, ssl, state,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev == NULL) {
                SSL_free(ssl);
                return NULL;
        }
        /* Peers that drop TCP without close_notify are common. */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        return bev;
}
