/* libclocks: clock_gettime(2) served by clocks(1) (see clocks.c). */
#ifndef LIBCLOCKS_H
#define LIBCLOCKS_H
#include <time.h>
int clock_gettime(clockid_t clock_id, struct timespec *tp);
#endif
