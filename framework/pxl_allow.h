/*
 * pxl_allow.h - address allow lists: exact addresses and CIDR prefixes,
 * IPv4 and IPv6, parsed from config text and matched against a peer
 * (pure; no I/O, no globals).
 */
#ifndef PXL_ALLOW_H
#define PXL_ALLOW_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;

/* One entry: 4 or 16 address bytes and a prefix length. */
struct pxl_allow_net {
        unsigned char addr[16];
        unsigned char len;  /* 4 or 16 */
        unsigned char bits; /* prefix, 0..8*len */
};

/*
 * "10.0.0.1", "10.0.0.0/8", "::1", "fd00::/8". Returns 0, or -1 with
 * *why set (a static text) when text is not one of those.
 */
int pxl_allow_parse(const char *text, struct pxl_allow_net *out,
                    const char **why);

/*
 * Whether the peer (AF_INET, or AF_INET6; an IPv4-mapped IPv6 address
 * counts as its IPv4 one) is in one of the n entries. NULL peer or
 * another family: false.
 */
bool pxl_allow_match(const struct pxl_allow_net *nets, size_t n,
                     const struct sockaddr *peer);

#endif
