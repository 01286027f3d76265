/*
 * pxl_mirror.h - the rest of the cluster as this worker sees it, kept in
 * step through Redis: remote workers (peers), a record of every client
 * connected to them (in the same registry and rooms as local clients, with
 * no connection), and delivery to clients that are elsewhere.
 *
 * The core never names it: installed, it watches the worker's changes,
 * serves as the worker's pxl_remote and runs as one of its services.
 * Without a redis section it is not installed: one worker is the app.
 */
#ifndef PXL_MIRROR_H
#define PXL_MIRROR_H

struct pxl_worker;

/* Join the cluster when srv's app has a redis section (before run). */
int pxl_mirror_install(struct pxl_worker *srv);

#endif
