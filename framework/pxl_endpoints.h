/*
 * pxl_endpoints.h - GET /health and GET /metrics for operators, on the
 * WebSocket listener or on an admin listener of their own (the admin
 * group). Installed by pxl-serve beside the cluster view and the
 * database; the core only offers the hooks it uses.
 */
#ifndef PXL_ENDPOINTS_H
#define PXL_ENDPOINTS_H

#include "pxl_str.h"
#include "pxl_worker.h"

/*
 * Before the workers are forked: make the node's shared figures (one
 * slot per worker) and add the service that answers in each worker.
 * PXL_ENOMEM or PXL_ERR with the reason in errors.
 */
int pxl_endpoints_install(struct pxl_worker *srv, struct pxl_str *errors);
/* Unmap the shared figures (every process, at its end). */
void pxl_endpoints_fini(void);

#endif
