/*
 * pxl_notify.c - tells the service manager (systemd's Type=notify) that
 * the server is ready, reloading or stopping: one datagram per state to
 * the unix socket $NOTIFY_SOCKET names. No libsystemd: the protocol is
 * a text in a datagram. When to say what is the server's and cluster's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pxl/pxl.h"
#include "pxl_notify.h"

static bool disabled;

int pxl_notify_address(const char *value, struct sockaddr_un *sa,
                       socklen_t *len)
{
        size_t n = value != NULL ? strlen(value) : 0;

        if (n < 2 || n >= sizeof(sa->sun_path) ||
            (value[0] != '/' && value[0] != '@'))
                return PXL_EINVAL;
        memset(sa, 0, sizeof(*sa));
        sa->sun_family = AF_UNIX;
        memcpy(sa->sun_path, value, n);
        /* An abstract name: a NUL first, and no NUL at the end. */
        if (value[0] == '@')
                sa->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                           (value[0] == '/'));
        return PXL_OK;
}

int pxl_notify_format_reloading(char *buf, size_t cap, uint64_t usec)
{
        return snprintf(buf, cap, "RELOADING=1\nMONOTONIC_USEC=%llu",
                        (unsigned long long)usec);
}

int pxl_notify(const char *state)
{
        const char *value = getenv("NOTIFY_SOCKET");
        struct sockaddr_un sa;
        socklen_t len;
        ssize_t sent;
        int fd;

        if (disabled || value == NULL)
                return PXL_OK;
        if (pxl_notify_address(value, &sa, &len) < 0)
                return PXL_EINVAL;
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return PXL_ERR;
        sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
                      (struct sockaddr *)&sa, len);
        close(fd);
        return sent == (ssize_t)strlen(state) ? PXL_OK : PXL_ERR;
}

int pxl_notify_ready(const char *status)
{
        char buf[512];

        if (status == NULL)
                return pxl_notify("READY=1");
        snprintf(buf, sizeof(buf), "READY=1\nSTATUS=%s", status);
        return pxl_notify(buf);
}

int pxl_notify_reloading(void)
{
        struct timespec ts;
        char buf[64];

        clock_gettime(CLOCK_MONOTONIC, &ts);
        pxl_notify_format_reloading(buf, sizeof(buf),
                                    (uint64_t)ts.tv_sec * 1000000 +
                                            (uint64_t)ts.tv_nsec / 1000);
        return pxl_notify(buf);
}

int pxl_notify_stopping(void)
{
        return pxl_notify("STOPPING=1\nSTATUS=stopping");
}

void pxl_notify_disable(void)
{
        disabled = true;
        unsetenv("NOTIFY_SOCKET");
}
