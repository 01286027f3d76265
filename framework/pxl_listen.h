/*
 * pxl_listen.h - the listen address: listen.host and listen.port
 * resolved for a passive TCP socket. Shared by the worker's listener
 * (pxl_server.c) and the cluster master's reserved port (pxl_cluster.c).
 */
#ifndef PXL_LISTEN_H
#define PXL_LISTEN_H

#include <netdb.h>

#include "pxl_str.h"

/*
 * Resolve host (a name or a numeric address) and port for bind(): AF_UNSPEC,
 * SOCK_STREAM, AI_PASSIVE, numeric port. Returns the addresses (the caller
 * frees them with freeaddrinfo and binds the first), or NULL after appending
 * one line naming the config file, listen.host and the resolver's reason to
 * errors.
 */
struct addrinfo *pxl_listen_resolve(const char *host, unsigned port,
                                    const char *file, struct pxl_str *errors);

#endif
