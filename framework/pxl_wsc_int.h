/*
 * pxl_wsc_int.h - the pure parts of the outbound WebSocket client
 * (pxl_wsc.c): URL parsing, the reconnect schedule and a top-level key
 * lookup in validated JSON. No I/O, no globals; unit tests and pxl-bench
 * call them directly. Not installed. The response head is pxl_http.c's
 * (pxl_http_parse_response).
 */
#ifndef PXL_WSC_INT_H
#define PXL_WSC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "pxl_json.h"

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

/*
 * Find top-level key `key` (compared with the raw bytes of the key token,
 * so keys written with escapes do not match) in the JSON object text
 * buf[0..len), which should be valid JSON; reads nothing outside buf even
 * when it is not. The last occurrence wins. Returns true and fills *out
 * (strings keep their quotes) when found.
 */
bool pxl_wsc_json_find(const char *buf, size_t len, const char *key,
                       struct pxl_json_span *out);

/*
 * Parse a JSON integer token (optional '-', digits) at the start of a
 * span into *v. Returns false for anything else or on overflow.
 */
bool pxl_wsc_json_int(const struct pxl_json_span *s, long long *v);

#endif
