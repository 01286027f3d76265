/*
 * pxl_cluster.h - `workers = N`: a master process that reserves the port,
 * forks N workers (each a pxl_server), restarts the ones that die and
 * passes stop signals on. A single process only takes an identity here.
 */
#ifndef PXL_CLUSTER_H
#define PXL_CLUSTER_H

#include "pxl_server.h"
#include "pxl_str.h"

/* A node id: 8 random lowercase hex characters and a NUL. */
int pxl_cluster_node_id(char out[17]);

/*
 * Tell srv which worker it is: slot index, earlier starts of the slot,
 * the node id (copied) and the ready pipe (taken; -1 without a master).
 */
void pxl_cluster_worker_init(struct pxl_worker *srv, const char *node_id,
                             unsigned index, unsigned gen, int ready_fd);

/*
 * Run srv (after pxl_server_init) as a cluster of conf->workers
 * processes. Returns in the master once every worker has stopped: 0
 * after a clean stop, PXL_ERR after a failure (logged, or appended to
 * errors before anything started). Returns in each worker too, with what
 * pxl_server_run returned there; the caller then finishes the process
 * as after pxl_server_run (pxl_server_fini, exit).
 */
int pxl_cluster_run(struct pxl_worker *srv, struct pxl_str *errors);

#endif
