/* fork_loop.c - benchmark guest: fork a child that exits at once and wait for it, N times
 * (default 2000); prints the mean time of one fork+exit+wait as fork_us=... */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) _exit(0);
        int st;
        waitpid(p, &st, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("fork_us=%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1000);
    return 0;
}
