/*
 * ws_request - a tiny WebSocket client for the tests: connects to
 * ws://HOST:PORT/PATH, sends MESSAGE as one text frame, prints the first
 * text message it gets back (after the server's system/connected
 * greeting) and closes. With -n it closes at once, without waiting for
 * the reply (a client that leaves before it). Needs nothing but libc.
 *
 *   ws_request 127.0.0.1 8080 /ws '{"type":"@APP@","action":"ping"}'
 */
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Every client first learns its id; that frame is not the reply. */
#define GREETING "{\"type\":\"system\",\"action\":\"connected\""

static void die(const char *what) __attribute__((noreturn));

static void die(const char *what)
{
        fprintf(stderr, "ws_request: %s\n", what);
        exit(1);
}

static void send_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

                if (n <= 0)
                        die("send failed");
                p += n;
                len -= (size_t)n;
        }
}

static void recv_all(int fd, void *buf, size_t len)
{
        char *p = buf;

        while (len > 0) {
                ssize_t n = recv(fd, p, len, 0);

                if (n <= 0)
                        die("connection closed or timed out");
                p += n;
                len -= (size_t)n;
        }
}

/* One masked frame, as RFC 6455 requires of clients. */
static void send_frame(int fd, int opcode, const void *data, size_t len)
{
        uint8_t hdr[14], mask[4];
        size_t n = 0, i;
        uint8_t *buf;

        hdr[n++] = (uint8_t)(0x80 | opcode);
        if (len < 126) {
                hdr[n++] = (uint8_t)(0x80 | len);
        } else if (len < 65536) {
                hdr[n++] = 0x80 | 126;
                hdr[n++] = (uint8_t)(len >> 8);
                hdr[n++] = (uint8_t)len;
        } else {
                hdr[n++] = 0x80 | 127;
                for (i = 0; i < 8; i++)
                        hdr[n++] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        }
        for (i = 0; i < 4; i++)
                mask[i] = hdr[n++] = (uint8_t)rand();
        buf = malloc(len + 1);
        if (buf == NULL)
                die("out of memory");
        for (i = 0; i < len; i++)
                buf[i] = ((const uint8_t *)data)[i] ^ mask[i % 4];
        send_all(fd, hdr, n);
        send_all(fd, buf, len);
        free(buf);
}

static int connect_to(const char *host, const char *port)
{
        struct addrinfo hints = {0}, *res, *ai;
        struct timeval tv = {10, 0};
        int fd = -1;

        hints.ai_socktype = SOCK_STREAM;
        if (getaddrinfo(host, port, &hints, &res) != 0)
                die("cannot resolve the host");
        for (ai = res; ai != NULL; ai = ai->ai_next) {
                fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
                if (fd < 0)
                        continue;
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                        break;
                close(fd);
                fd = -1;
        }
        freeaddrinfo(res);
        if (fd < 0)
                die("cannot connect");
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
}

static void handshake(int fd, const char *host, const char *port,
                      const char *path)
{
        char req[1024], head[8192];
        size_t n = 0;

        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 path, host, port);
        send_all(fd, req, strlen(req));
        /* Byte by byte, so nothing after the head is read. */
        while (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4) != 0) {
                if (n == sizeof(head) - 1)
                        die("upgrade response too long");
                recv_all(fd, head + n++, 1);
        }
        head[n] = '\0';
        if (strncmp(head, "HTTP/1.1 101 ", 13) != 0)
                die("the server refused the upgrade");
}

/* The first text message after the greeting (malloc'd, NUL-terminated). */
static char *read_reply(int fd)
{
        uint8_t hdr[2], ext[8];
        uint64_t len;
        char *payload;
        int i;

        for (;;) {
                recv_all(fd, hdr, 2);
                len = hdr[1] & 0x7f;
                if (len >= 126) {
                        int k = len == 126 ? 2 : 8;

                        recv_all(fd, ext, (size_t)k);
                        for (len = 0, i = 0; i < k; i++)
                                len = len << 8 | ext[i];
                }
                if (len > 64 * 1024 * 1024)
                        die("reply too large");
                payload = malloc((size_t)len + 1);
                if (payload == NULL)
                        die("out of memory");
                recv_all(fd, payload, (size_t)len);
                payload[len] = '\0';
                if ((hdr[0] & 0x0f) == 0x1 &&
                    strncmp(payload, GREETING, strlen(GREETING)) != 0)
                        return payload;
                free(payload);
                if ((hdr[0] & 0x0f) == 0x8)
                        die("the server closed the connection");
                /* Pings and other control frames: keep waiting. */
        }
}

int main(int argc, char **argv)
{
        int fd, leave = argc > 1 && strcmp(argv[1], "-n") == 0;

        argv += leave;
        argc -= leave;
        if (argc != 5) {
                fprintf(stderr,
                        "usage: ws_request [-n] HOST PORT PATH MESSAGE\n");
                return 2;
        }
        srand((unsigned)getpid());
        fd = connect_to(argv[1], argv[2]);
        handshake(fd, argv[1], argv[2], argv[3]);
        send_frame(fd, 0x1, argv[4], strlen(argv[4]));
        if (!leave) {
                char *reply = read_reply(fd);

                printf("%s\n", reply);
                free(reply);
        }
        send_frame(fd, 0x8, "\x03\xe8", 2);
        if (leave) {
                /* Read to the end: closing with unread input resets the
                 * connection, and the server could lose the request. */
                char buf[4096];

                while (recv(fd, buf, sizeof(buf), 0) > 0)
                        ;
        }
        close(fd);
        return 0;
}
