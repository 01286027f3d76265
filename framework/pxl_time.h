/*
 * pxl_time.h - milliseconds as the struct timeval libevent's timers take.
 */
#ifndef PXL_TIME_H
#define PXL_TIME_H

#include <stdint.h>
#include <sys/time.h>

static inline struct timeval pxl_ms_timeval(uint64_t ms)
{
        struct timeval tv;

        tv.tv_sec = (time_t)(ms / 1000);
        tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
        return tv;
}

#endif
