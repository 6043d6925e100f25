/*
 * libbinds: bind(2) and connect(2) through the binds(1) service at capv
 * index 10 (CheriBSD's lib/libbinds).  binds(1) adds this library to
 * LD_PRELOAD of the command it runs; the socket travels to the service as an
 * fd capability (capfromfd(2)) and the service binds or connects it, subject
 * to its port policy.  The wire protocol is CheriBSD's: the request's op is
 * the system call it stands for (SYS_bind, SYS_connect: Linux's numbers
 * here, as CheriBSD's sources compiled on Linux send), the answer's op its
 * negation.  Statically linked programs are not interposed.  Without a
 * capability at index 10 every call warns and fails with ENOLINK.
 */
#define _GNU_SOURCE
#include <err.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <colo.h>
#include <capv.h>
#include "libbinds.h"

static __thread void *target;

/* Ask the service to make system call `op` on socket s with addr. */
static int binds_call(int op, int s, const struct sockaddr *addr, socklen_t addrlen)
{
    capv_binds_t out;
    capv_binds_return_t in;
    void *fdcap;
    ssize_t received;
    int error;

    if (target == NULL && (target = colo_capv_target(CAPV_BINDS, NULL)) == NULL)
        return (-1);
    if (addrlen > sizeof(out.addr)) {
        errno = EINVAL;
        return (-1);
    }

    error = capfromfd(&fdcap, s);
    if (error != 0) {
        warn("capfromfd");
        return (-1);
    }
    memset(&out, 0, sizeof(out));
    out.len = sizeof(out);
    out.op = op;
    out.s = fdcap;
    memcpy(&out.addr, addr, addrlen);
    out.addrlen = addrlen;

    received = cocall(target, &out, out.len, &in, sizeof(in));
    if (received < 0) {
        error = errno;
        warn("cocall");
        errno = error;
        return (-1);
    }
    if ((size_t)received != sizeof(in) || in.len != sizeof(in)) {
        errno = ENOMSG;
        return (-1);
    }
    errno = in.errno_;
    return (in.error);
}

int bind(int s, const struct sockaddr *addr, socklen_t addrlen)
{
    return binds_call(SYS_bind, s, addr, addrlen);
}

int connect(int s, const struct sockaddr *addr, socklen_t addrlen)
{
    return binds_call(SYS_connect, s, addr, addrlen);
}
