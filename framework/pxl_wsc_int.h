/*
 * pxl_wsc_int.h - the pure parts of the outbound WebSocket client
 * (pxl_wsc.c): URL parsing and the reconnect schedule. No I/O, no
 * globals; unit tests call them directly. Not installed. The response
 * head is pxl_http.c's (pxl_http_parse_response), reading replies
 * pxl_json.c's (pxl_json_envelope, pxl_json_find).
 */
#ifndef PXL_WSC_INT_H
#define PXL_WSC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* A parsed ws:// or wss:// URL; spans point into the string parsed. */
struct pxl_wsc_url {
        bool tls;
        const char *host; /* without the brackets of an IPv6 literal */
        size_t host_len;
        bool ipv6;     /* the host was written in [ ] */
        unsigned port; /* the default (80, 443) when none was given */
        bool port_given;
        const char *path; /* path and query as sent; "" means "/" */
        size_t path_len;
};

/*
 * Parse url. Returns PXL_OK, or PXL_EINVAL with *why set to a static
 * text ("unsupported scheme ...", "missing host", ...).
 */
int pxl_wsc_url_parse(const char *url, struct pxl_wsc_url *u, const char **why);

/*
 * The delay before reconnect attempt `attempt` (1-based):
 * min(base_ms * 2^(attempt-1), cap_ms), without overflow.
 */
unsigned pxl_wsc_backoff_ms(unsigned attempt, unsigned base_ms,
                            unsigned cap_ms);

#endif
