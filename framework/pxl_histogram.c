/*
 * pxl_histogram.c - the latency histogram: bucket arithmetic, recording,
 * quantiles. What is measured, and how it is printed, is the caller's
 * business (pxl-bench).
 */
#include <string.h>

#include "pxl_histogram.h"

#define SUB_BITS PXL_HISTOGRAM_SUB_BITS
#define SUB      PXL_HISTOGRAM_SUB
#define BUCKETS  PXL_HISTOGRAM_BUCKETS

void pxl_histogram_init(struct pxl_histogram *h)
{
        memset(h, 0, sizeof(*h));
}

unsigned pxl_histogram_bucket(uint64_t v)
{
        unsigned k, idx;

        if (v < 2 * SUB)
                return (unsigned)v;
        k = 63u - (unsigned)__builtin_clzll(v);
        idx = SUB + (k - SUB_BITS) * SUB +
              (unsigned)((v >> (k - SUB_BITS)) & (SUB - 1));
        return idx < BUCKETS ? idx : BUCKETS - 1;
}

uint64_t pxl_histogram_bucket_value(unsigned idx)
{
        unsigned k, sub;

        if (idx < 2 * SUB)
                return idx;
        k = (idx - SUB) / SUB + SUB_BITS;
        sub = (idx - SUB) % SUB;
        return ((uint64_t)(SUB + sub) << (k - SUB_BITS)) +
               ((uint64_t)1 << (k - SUB_BITS)) / 2;
}

void pxl_histogram_add(struct pxl_histogram *h, uint64_t v)
{
        h->c[pxl_histogram_bucket(v)]++;
        h->n++;
        if (v > h->max)
                h->max = v;
}

uint64_t pxl_histogram_quantile(const struct pxl_histogram *h, double q)
{
        uint64_t rank, seen = 0, v;
        unsigned i;

        if (h->n == 0)
                return 0;
        rank = (uint64_t)(q * (double)h->n + 0.999999);
        if (rank < 1)
                rank = 1;
        for (i = 0; i < BUCKETS; i++) {
                seen += h->c[i];
                if (seen >= rank) {
                        v = pxl_histogram_bucket_value(i);
                        return v > h->max ? h->max : v;
                }
        }
        return h->max;
}
