/*
 * pxl_redis_api.h - the plugins' Redis functions (declared in pxl.h) and
 * the state they keep in the worker: their channel subscriptions.
 */
#ifndef PXL_REDIS_API_H
#define PXL_REDIS_API_H

struct pxl_worker;

/* Free every plugin subscription (the worker is stopping). */
void pxl_redis_api_fini(struct pxl_worker *srv);

#endif
