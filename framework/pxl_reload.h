/*
 * pxl_reload.h - SIGHUP: the app file read again, and what can change
 * while serving applied in this process.
 */
#ifndef PXL_RELOAD_H
#define PXL_RELOAD_H

#include <stdbool.h>

#include "pxl_worker.h"

/*
 * Read srv's app file again, with the command line's overrides, and
 * apply what can change while serving: logging, limits, auth keys,
 * rooms, presence, inactivity, heartbeat, metrics, origins and the
 * plugins' settings (then their reload hooks, in a serving worker). A
 * file with any problem changes nothing: each problem is logged, and
 * PXL_ERR returned. Keys that differ but need a restart keep their
 * running values and, with report_restart, are logged as such (a
 * cluster's master reports them once for its workers).
 */
int pxl_reload(struct pxl_worker *srv, bool report_restart);

#endif
