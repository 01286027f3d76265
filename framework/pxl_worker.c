/*
 * pxl_worker.c - what the worker's layers share: the loop's cached time
 * (every check in one iteration sees the same now) and weak references
 * to connections.
 */
#include <stdlib.h>
#include <sys/time.h>

#include <event2/event.h>

#include "pxl_worker.h"

void pxl_conn_ref_put(struct pxl_conn_ref *ref)
{
        if (ref != NULL && --ref->refs == 0)
                free(ref);
}

int64_t pxl_worker_now_us(const struct pxl_worker *srv)
{
        struct timeval tv;

        if (srv->base == NULL || event_base_gettimeofday_cached(srv->base, &tv) < 0)
                gettimeofday(&tv, NULL);
        return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

int64_t pxl_worker_now_ms(const struct pxl_worker *srv)
{
        return pxl_worker_now_us(srv) / 1000;
}
