/* bench_timing.h - what the benchmark guests share: a monotonic clock in nanoseconds and the
 * comparison qsort needs for their medians. */
#ifndef BENCH_TIMING_H
#define BENCH_TIMING_H
#include <time.h>

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}
#endif
