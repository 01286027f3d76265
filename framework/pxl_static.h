/*
 * pxl_static.h - static files (static.root) over plain HTTP on the
 * WebSocket listener. Installed by pxl-serve like the other subsystems.
 */
#ifndef PXL_STATIC_H
#define PXL_STATIC_H

#include "pxl_str.h"
#include "pxl_worker.h"

/*
 * With a static group: open the folder and answer GET and HEAD of its
 * files (PXL_ERR with the reason in errors when the folder cannot be
 * opened), else nothing.
 */
int pxl_static_install(struct pxl_worker *srv, struct pxl_str *errors);

#endif
