/*
 * pxl_queue.h - the queue as the programs see it: the service that runs
 * the plugins' processors in each serving worker, and the jobs table it
 * needs, made once before serving. Plugins use pxl.h's pxl_job_*.
 */
#ifndef PXL_QUEUE_H
#define PXL_QUEUE_H

struct pxl_worker;
struct pxl_str;

/*
 * When a plugin declares processors: check them (a queue name, one
 * processor per queue; problems in errors) and run the queue in srv's
 * workers. 0, PXL_ERR or PXL_ENOMEM.
 */
int pxl_queue_install(struct pxl_worker *srv, struct pxl_str *errors);

/*
 * Make the jobs table (in the app's SQLite database, or queue.path) when
 * the queue was installed. Blocking: once, before serving.
 */
int pxl_queue_prepare(const struct pxl_worker *srv, struct pxl_str *errors);

#endif
