/*
 * libclocks: clock_gettime(2) through the clocks(1) service at capv index 8
 * (CheriBSD's lib/libclocks).  clocks(1) adds this library to LD_PRELOAD of
 * the command it runs, so every dynamically linked program started under it
 * asks the service for the time; statically linked programs are not
 * interposed.  Without a capability at index 8 every call warns and fails
 * with ENOLINK.
 */
#define _GNU_SOURCE
#include <err.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <colo.h>
#include <capv.h>
#include "libclocks.h"

static __thread void *target;

int clock_gettime(clockid_t clock_id, struct timespec *tp)
{
    capv_t out;
    capv_clocks_t in;
    ssize_t received;
    int error;

    if (target == NULL && (target = colo_capv_target(CAPV_CLOCKS, NULL)) == NULL)
        return (-1);

    memset(&out, 0, sizeof(out));
    out.len = sizeof(out);
    out.op = clock_id + CAPV_CLOCKS;   /* I'm sorry, but CLOCK_REALTIME == 0 */
    received = cocall(target, &out, out.len, &in, sizeof(in));
    if (received < 0) {
        error = errno;
        warn("cocall");
        errno = error;
        return (-1);
    }
    if ((size_t)received != in.len || in.len != sizeof(in)) {
        warnx("size mismatch: received %zd, in.len %zd, expected %zd; returning ENOMSG",
            received, in.len, sizeof(in));
        errno = ENOMSG;
        return (-1);
    }
    if (in.error != 0)
        errno = in.errno_;
    else
        *tp = in.ts;
    return (in.error);
}
