/*
 * pxl_notify.h - the service manager's readiness protocol (sd_notify):
 * datagrams to $NOTIFY_SOCKET, written here without libsystemd.
 */
#ifndef PXL_NOTIFY_H
#define PXL_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/*
 * Send one state text ("READY=1\nSTATUS=...") to $NOTIFY_SOCKET: 0 when
 * sent or when the variable is unset (not run by systemd), PXL_ERR when
 * it could not be sent. Safe from any thread; never blocks long (the
 * socket is non-blocking).
 */
int pxl_notify(const char *state);
/* READY=1 and STATUS=status (NULL: none). After a reload, too. */
int pxl_notify_ready(const char *status);
/* RELOADING=1 and MONOTONIC_USEC=now: a SIGHUP reload begins. */
int pxl_notify_reloading(void);
/* STOPPING=1: SIGTERM/SIGINT; systemd waits for the exit. */
int pxl_notify_stopping(void);
/*
 * From now on this process sends nothing (a cluster's worker: the master
 * speaks for the service). Unsets NOTIFY_SOCKET for what it would exec.
 */
void pxl_notify_disable(void);

/*
 * Pure helpers (the unit tests' way in). The address of a NOTIFY_SOCKET
 * value: a path, or an abstract name when it starts with '@'; its length
 * in *len; PXL_EINVAL for an empty or too long value or another form.
 */
int pxl_notify_address(const char *value, struct sockaddr_un *sa,
                       socklen_t *len);
/* "RELOADING=1\nMONOTONIC_USEC=N" into buf; its length (snprintf's). */
int pxl_notify_format_reloading(char *buf, size_t cap, uint64_t usec);

#endif
