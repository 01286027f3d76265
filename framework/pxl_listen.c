/*
 * pxl_listen.c - resolving the configured listen address, once for the
 * worker's listener and the cluster master alike. Socket options,
 * binding and listening stay with pxl_server.c and pxl_cluster.c.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "pxl_listen.h"

struct addrinfo *pxl_listen_resolve(const char *host, unsigned port,
                                    const char *file, struct pxl_str *errors)
{
        struct addrinfo hints = {0}, *ai = NULL;
        char portstr[16], line[512];
        int rc;

        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        snprintf(portstr, sizeof(portstr), "%u", port);
        rc = getaddrinfo(host, portstr, &hints, &ai);
        if (rc != 0) {
                snprintf(line, sizeof(line), "%s: listen.host \"%s\": %s\n",
                         file, host, gai_strerror(rc));
                pxl_str_puts(errors, line);
                return NULL;
        }
        return ai;
}
