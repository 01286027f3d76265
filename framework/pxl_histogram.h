/*
 * pxl_histogram.h - a latency histogram: samples recorded into fixed
 * log-linear buckets, percentiles read back (pure; no I/O, no allocation).
 * pxl-bench records its round trips and delivery latencies here, in ns.
 */
#ifndef PXL_HISTOGRAM_H
#define PXL_HISTOGRAM_H

#include <stdint.h>

/*
 * Log-linear (HDR-style): values below 128 are exact; above, every power
 * of two is split into 64 linear sub-buckets (a bucket is under 1/64 of
 * its values wide), up to 2^48 (78 hours in ns). Larger values count in
 * the last bucket. 2,752 counters, 22 KB, whatever the sample count.
 */
#define PXL_HISTOGRAM_SUB_BITS 6
#define PXL_HISTOGRAM_SUB      (1u << PXL_HISTOGRAM_SUB_BITS)
#define PXL_HISTOGRAM_OCTAVES  42
#define PXL_HISTOGRAM_BUCKETS                                                  \
        (PXL_HISTOGRAM_SUB + PXL_HISTOGRAM_OCTAVES * PXL_HISTOGRAM_SUB)

/* Embedded; all zeroes (or pxl_histogram_init) is an empty histogram. */
struct pxl_histogram {
        uint64_t n;   /* samples recorded */
        uint64_t max; /* the largest sample, exact */
        uint64_t c[PXL_HISTOGRAM_BUCKETS];
};

void pxl_histogram_init(struct pxl_histogram *h);
void pxl_histogram_add(struct pxl_histogram *h, uint64_t v);
/*
 * The q-quantile (0 <= q <= 1; 0.99 for p99): the middle of the bucket
 * holding the sample of rank q * n rounded up, never more than max; 0 when
 * the histogram is empty.
 */
uint64_t pxl_histogram_quantile(const struct pxl_histogram *h, double q);

/* The bucket v counts in (0 .. PXL_HISTOGRAM_BUCKETS - 1). */
unsigned pxl_histogram_bucket(uint64_t v);
/* The middle of bucket idx: what a quantile falling in it reads as. */
uint64_t pxl_histogram_bucket_value(unsigned idx);

#endif
