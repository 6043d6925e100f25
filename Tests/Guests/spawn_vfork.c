/* spawn_vfork.c - reference for the start-up benchmark: median start-to-exit
 * of PROGRAM with an explicit vfork()+execve(), stdio on /dev/null. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 2 ? atoi(argv[2]) : 400;
    double *t = malloc(sizeof(double) * n);
    int null = open("/dev/null", O_RDWR);
    char *args[] = { argv[1], NULL };
    extern char **environ;
    for (int i = -n / 10; i < n; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        pid_t p = vfork();
        if (p == 0) {
            dup2(null, 0); dup2(null, 1); dup2(null, 2);
            execve(argv[1], args, environ);
            _exit(127);
        }
        waitpid(p, NULL, 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (i >= 0) t[i] = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    }
    qsort(t, n, sizeof(double), cmp);
    printf("start.vfork_execve_us=%.1f\n", t[n / 2] / 1000);
    return 0;
}
