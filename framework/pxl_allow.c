/*
 * pxl_allow.c - address allow lists (the endpoints' allow keys): parse
 * "ADDR" or "ADDR/BITS" for IPv4 and IPv6, and match a peer's address
 * against a list. Pure: what to do with a refused peer is the caller's.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pxl_allow.h"

int pxl_allow_parse(const char *text, struct pxl_allow_net *out,
                    const char **why)
{
        char buf[INET6_ADDRSTRLEN + 8];
        const char *slash = strchr(text, '/');
        size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
        long bits;

        memset(out, 0, sizeof(*out));
        if (alen == 0 || alen >= INET6_ADDRSTRLEN) {
                *why = "not an IPv4 or IPv6 address";
                return -1;
        }
        memcpy(buf, text, alen);
        buf[alen] = '\0';
        if (inet_pton(AF_INET, buf, out->addr) == 1) {
                out->len = 4;
        } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
                out->len = 16;
        } else {
                *why = "not an IPv4 or IPv6 address";
                return -1;
        }
        out->bits = (unsigned char)(out->len * 8);
        if (slash == NULL)
                return 0;
        bits = 0;
        for (const char *p = slash + 1; *p != '\0'; p++) {
                if (*p < '0' || *p > '9' || p - slash > 3) {
                        *why = "the prefix length is not a number";
                        return -1;
                }
                bits = bits * 10 + (*p - '0');
        }
        if (slash[1] == '\0' || bits > out->len * 8) {
                *why = out->len == 4 ? "the prefix length is not 0 to 32"
                                     : "the prefix length is not 0 to 128";
                return -1;
        }
        out->bits = (unsigned char)bits;
        return 0;
}

/* The first `bits` bits of a and b are the same. */
static bool prefix_eq(const unsigned char *a, const unsigned char *b,
                      unsigned bits)
{
        unsigned whole = bits / 8, rest = bits % 8;

        if (memcmp(a, b, whole) != 0)
                return false;
        if (rest == 0)
                return true;
        return ((a[whole] ^ b[whole]) & (0xff00 >> rest)) == 0;
}

bool pxl_allow_match(const struct pxl_allow_net *nets, size_t n,
                     const struct sockaddr *peer)
{
        const unsigned char *a;
        unsigned char len;

        if (peer == NULL)
                return false;
        if (peer->sa_family == AF_INET) {
                a = (const unsigned char *)&(
                            (const struct sockaddr_in *)(const void *)peer)
                            ->sin_addr;
                len = 4;
        } else if (peer->sa_family == AF_INET6) {
                const struct in6_addr *a6 =
                        &((const struct sockaddr_in6 *)(const void *)peer)
                                 ->sin6_addr;

                a = a6->s6_addr;
                len = 16;
                if (IN6_IS_ADDR_V4MAPPED(a6)) {
                        a += 12;
                        len = 4;
                }
        } else {
                return false;
        }
        for (size_t i = 0; i < n; i++)
                if (nets[i].len == len &&
                    prefix_eq(a, nets[i].addr, nets[i].bits))
                        return true;
        return false;
}
