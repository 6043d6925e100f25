/*
 * libcs: the client of cs(1) (CheriBSD's lib/libcs), the "Capsicum service"
 * that performs system calls for a process in capability mode.  cs(1) adds
 * this library to LD_PRELOAD of its command; its constructor enters
 * capability mode (a testing feature, as in CheriBSD, not a security one)
 * and the functions below send their system call to cs(1) at capv index 12:
 * pointers as they are (the address space is shared), descriptors as
 * capfromfd(2) capabilities (AT_FDCWD as the integer), and a descriptor
 * opened by cs(1) comes back as a capability for captofd(2).
 *
 * Opcodes are Linux system-call numbers.  glibc's internal entry points
 * (fopen(3), for one) are not reached; statically linked programs are not
 * interposed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <colo.h>
#include <capv.h>
#include <sys/capsicum.h>
#include "libcs.h"

static __thread void *target;

__attribute__((constructor))
static void libcs_init(void)
{
    if (cap_enter() != 0)
        err(1, "cap_enter");
}

static int init_maybe(void)
{
    if (target == NULL)
        target = colo_capv_target(CAPV_SYSCALL, __func__);
    return (target == NULL ? -1 : 0);
}

/* A descriptor argument: AT_FDCWD as it is, others as fd capabilities. */
static int fdarg(int fd, uintcap_t *argp)
{
    void *cap;
    if (fd == AT_FDCWD) {
        *argp = (uintcap_t)(intptr_t)AT_FDCWD;
        return (0);
    }
    if (capfromfd(&cap, fd) != 0)
        return (-1);
    *argp = (uintcap_t)cap;
    return (0);
}

/* Send system call `op` to cs(1); a returned descriptor capability is
 * installed here (openat). */
static long cs(int op, uintcap_t a0, uintcap_t a1, uintcap_t a2, uintcap_t a3, uintcap_t a4)
{
    capv_syscall_t out;
    capv_syscall_return_t in;
    ssize_t received;

    if (init_maybe() != 0)
        return (-1);
    memset(&out, 0, sizeof(out));
    out.len = sizeof(out);
    out.op = op;
    out.arg[0] = a0; out.arg[1] = a1; out.arg[2] = a2; out.arg[3] = a3; out.arg[4] = a4;
    received = cocall(target, &out, out.len, &in, sizeof(in));
    if (received < 0) {
        int e = errno;
        warn("%s: cocall", __func__);
        errno = e;
        return (-1);
    }
    if ((size_t)received != in.len || in.len != sizeof(in)) {
        warnx("%s: size mismatch: received %zd, in.len %zd, expected %zd; returning ENOMSG",
            __func__, received, in.len, sizeof(in));
        errno = ENOMSG;
        return (-1);
    }
    if (in.error >= 0 && colo_cap_type_of((uint64_t)in.fdcap) == COLO_CAP_FD) {
        int fd;
        if (captofd((void *)in.fdcap, &fd) != 0)
            return (-1);
        return (fd);
    }
    if (in.error < 0)
        errno = in.errno_;
    return (in.error);
}

static long cs_fd(int op, int fd, uintcap_t a1, uintcap_t a2, uintcap_t a3, uintcap_t a4)
{
    uintcap_t a0;
    if (fdarg(fd, &a0) != 0)
        return (-1);
    return (cs(op, a0, a1, a2, a3, a4));
}

/* The shared path functions' back end. */
static long path_call(long op, int fd, const char *path, long a2, long a3, long a4)
{
    return (cs_fd((int)op, fd, (uintcap_t)path, (uintcap_t)a2, (uintcap_t)a3, (uintcap_t)a4));
}

#include "../common/path_calls.inc"

int chmod(const char *path, mode_t mode)
{
    return (fchmodat(AT_FDCWD, path, mode, 0));
}

int mkdir(const char *path, mode_t mode)
{
    return ((int)cs(SYS_mkdir, (uintcap_t)path, mode, 0, 0, 0));
}

int rmdir(const char *path)
{
    return ((int)cs(SYS_rmdir, (uintcap_t)path, 0, 0, 0, 0));
}

int unlinkat(int fd, const char *path, int flag)
{
    return ((int)cs_fd(SYS_unlinkat, fd, (uintcap_t)path, (uintcap_t)flag, 0, 0));
}

int unlink(const char *path)
{
    return (unlinkat(AT_FDCWD, path, 0));
}

int fchdir(int fd)
{
    return ((int)cs_fd(SYS_fchdir, fd, 0, 0, 0, 0));
}

char *getcwd(char *buf, size_t size)
{
    if (buf == NULL) {
        errno = EINVAL;     /* no allocating form here */
        return (NULL);
    }
    return (cs(SYS_getcwd, (uintcap_t)buf, size, 0, 0, 0) < 0 ? NULL : buf);
}

int bind(int s, const struct sockaddr *addr, socklen_t addrlen)
{
    return ((int)cs_fd(SYS_bind, s, (uintcap_t)addr, addrlen, 0, 0));
}

int connect(int s, const struct sockaddr *addr, socklen_t addrlen)
{
    return ((int)cs_fd(SYS_connect, s, (uintcap_t)addr, addrlen, 0, 0));
}
