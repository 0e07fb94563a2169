/* stats.h - samples (one time per operation) and their statistics: median, p99, min, max, mean. */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct samples {
    uint64_t *v;
    size_t n, cap;
} samples;

typedef struct stats {
    uint64_t median, p99, min, max;
    double mean;
} stats;

void add_sample(samples *s, uint64_t x);
/* Nearest-rank percentiles; sorts s in place. All zero for no samples. */
stats compute_stats(samples *s);
void samples_free(samples *s);

#endif
