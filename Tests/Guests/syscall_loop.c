/* syscall_loop.c - benchmark guest: median ns of one getppid() over `reps`
 * repetitions of `n` calls.  Prints "getppid_ns=X". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "bench_timing.h"

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int reps = argc > 2 ? atoi(argv[2]) : 11;
    double *r = malloc(sizeof(double) * reps);
    for (long i = 0; i < n / 10; i++) syscall(SYS_getppid);      /* warm-up */
    for (int k = 0; k < reps; k++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
        clock_gettime(CLOCK_MONOTONIC, &b);
        r[k] = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
    }
    qsort(r, reps, sizeof(double), bench_cmp_double);
    printf("getppid_ns=%.1f\n", r[reps / 2]);
    return 0;
}
