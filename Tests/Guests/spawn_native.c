/* spawn_native.c - reference for the start-up benchmark: median start-to-exit
 * of PROGRAM with an explicit vfork()+execve() and with posix_spawn(), stdio
 * on /dev/null, interleaved. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include "bench_timing.h"

extern char **environ;

int main(int argc, char **argv)
{
    int n = argc > 2 ? atoi(argv[2]) : 400;
    double *tv = malloc(sizeof(double) * n), *ts = malloc(sizeof(double) * n);
    int null = open("/dev/null", O_RDWR);
    char *args[] = { argv[1], NULL };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    for (int fd = 0; fd < 3; fd++) posix_spawn_file_actions_adddup2(&fa, null, fd);
    for (int i = -n / 10; i < n; i++) {
        double a = bench_now();
        pid_t p = vfork();
        if (p == 0) {
            dup2(null, 0); dup2(null, 1); dup2(null, 2);
            execve(argv[1], args, environ);
            _exit(127);
        }
        waitpid(p, NULL, 0);
        double b = bench_now();
        posix_spawn(&p, argv[1], &fa, NULL, args, environ);
        waitpid(p, NULL, 0);
        double c = bench_now();
        if (i >= 0) { tv[i] = b - a; ts[i] = c - b; }
    }
    qsort(tv, n, sizeof(double), bench_cmp_double);
    qsort(ts, n, sizeof(double), bench_cmp_double);
    printf("start.vfork_execve_us=%.1f\nstart.posix_spawn_us=%.1f\n", tv[n / 2] / 1000, ts[n / 2] / 1000);
    return 0;
}
