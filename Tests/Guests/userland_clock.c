/* userland_clock.c - a client of clocks(1) through libclocks (LD_PRELOAD):
 * plain clock_gettime calls, printed as key=value lines.  Built as a
 * dynamically linked PIE so that libclocks can interpose. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int main(void)
{
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    printf("realtime=%d %lld\n", r, r == 0 ? (long long)ts.tv_sec : -1LL);
    r = clock_gettime(CLOCK_MONOTONIC, &ts);
    printf("monotonic=%d\n", r);
    errno = 0;
    r = clock_gettime((clockid_t)1000, &ts);
    printf("badclock=%d %s\n", r, r == 0 ? "OK" : strerror(errno));
    return 0;
}
