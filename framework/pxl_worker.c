/*
 * pxl_worker.c - the worker's clock: the loop's cached time, so that
 * every check in one iteration sees the same now.
 */
#include <sys/time.h>

#include <event2/event.h>

#include "pxl_worker.h"

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
