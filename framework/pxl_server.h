/*
 * pxl_server.h - one worker's life as a server: configure (plugins,
 * routes), the event loop, the listener, signals and the shutdown
 * sequence. The worker's state is struct pxl_worker (pxl_worker.h).
 */
#ifndef PXL_SERVER_H
#define PXL_SERVER_H

#include <stdbool.h>

#include "pxl_str.h"
#include "pxl_worker.h"

/* Load plugins and register routes; takes conf. */
int pxl_server_init(struct pxl_worker *srv, struct pxl_config *conf,
                    struct pxl_str *errors);
/*
 * The event loop and the worker's own events (flusher, reaper, deadlines,
 * periodic sweeps): no signals, Redis or listener. pxl_server_run starts
 * with it; the connection fuzzer uses it alone.
 */
int pxl_server_loop_init(struct pxl_worker *srv, struct pxl_str *errors);
/* Bind, run plugin inits, serve until a signal; 0 on a clean stop. */
int pxl_server_run(struct pxl_worker *srv, struct pxl_str *errors);
void pxl_server_fini(struct pxl_worker *srv);
/* Re-arm the idle and heartbeat sweeps at the config's intervals. */
int pxl_server_retime(struct pxl_worker *srv);

/* Called by pxl_conn_close once a connection has been taken apart. */
void pxl_server_conn_gone(struct pxl_worker *srv, bool was_open);

#endif
