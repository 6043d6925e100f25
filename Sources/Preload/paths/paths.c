/*
 * libpaths: the client of paths(1) (CheriBSD's lib/libpaths).  paths(1)
 * adds this library to LD_PRELOAD of its command.  Its constructor enters
 * capability mode (a testing feature, as in CheriBSD, not a security one);
 * the path functions below first try the system call, and only when it is
 * refused with ECAPMODE ask paths(1), at capv index 14, for a descriptor of
 * the directory the path lies in, and retry relative to it.
 *
 * glibc calls its own internal entry points for some lookups (fopen(3),
 * for one), which no preloaded library can reach; opendir(3) is replaced
 * here.  Statically linked programs are not interposed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <colo.h>
#include <capv.h>
#include <sys/capsicum.h>
#include "libpaths.h"

static __thread void *target;

__attribute__((constructor))
static void libpaths_init(void)
{
    if (cap_enter() != 0)
        err(1, "cap_enter");
}

static int init_maybe(void)
{
    if (target == NULL)
        target = colo_capv_target(CAPV_PATHS, __func__);
    return (target == NULL ? -1 : 0);
}

/* Ask paths(1) for the directory `*pathp` lies in: a new descriptor in *fdp
 * and the rest of the path in *pathp. */
static int relativise(int *fdp, const char **pathp)
{
    capv_paths_return_t in;
    capv_paths_t out;
    ssize_t received;
    size_t prefix_len;

    if (init_maybe() != 0)
        return (-1);
    memset(&out, 0, sizeof(out));
    out.len = sizeof(out);
    out.op = 42;    /* Unused */
    strncpy(out.path, *pathp, sizeof(out.path) - 1);

    received = cocall(target, &out, out.len, &in, sizeof(in));
    if (received < 0) {
        warn("%s: cocall", __func__);
        errno = EIO;
        return (-1);
    }
    if ((size_t)received != sizeof(in)) {
        warnx("%s: size mismatch: received %zd, expected %zd; returning ENOMSG",
            __func__, received, sizeof(in));
        errno = EIO;
        return (-1);
    }
    /* Have we received a file descriptor capability? */
    if (colo_cap_type_of((uint64_t)in.fdcap) != COLO_CAP_FD) {
        errno = EPERM;
        return (-1);
    }
    if (captofd((void *)in.fdcap, fdp) != 0)
        err(1, "captofd");

    prefix_len = strnlen(in.path, sizeof(in.path));
    if (strncmp(*pathp, in.path, prefix_len) != 0)
        fprintf(stderr, "%s: path mismatch, wanted %s, got %s, len %zd\n", __func__, *pathp, in.path, prefix_len);
    /* Skip the prefix and the "/" after it, unless the prefix is "/" or the
     * path is the prefix itself (then the directory itself: "."). */
    *pathp += prefix_len;
    if (prefix_len > 1 && **pathp != '\0')
        *pathp += 1;
    if (**pathp == '\0')
        *pathp = ".";
    return (0);
}

/* A call taking a directory descriptor and a path. */
static long do_fd_and_path(long op, long fd, const char *path, long a2, long a3, long a4)
{
    long r = syscall(op, fd, path, a2, a3, a4);
    if (r >= 0 || errno != ECAPMODE || path == NULL)
        return (r);
    int dirfd = -1;
    if (relativise(&dirfd, &path) != 0)
        return (-1);
    r = syscall(op, dirfd, path, a2, a3, a4);
    int e = errno;
    if (close(dirfd) != 0)
        warn("close");
    errno = e;
    return (r);
}

/* The shared path functions' back end. */
static long path_call(long op, int fd, const char *path, long a2, long a3, long a4)
{
    return (do_fd_and_path(op, fd, path, a2, a3, a4));
}

#include "../common/path_calls.inc"

int mkdir(const char *path, mode_t mode)
{
    return ((int)do_fd_and_path(SYS_mkdirat, AT_FDCWD, path, mode, 0, 0));
}

/* Extended attributes by path have no *at form to retry with: refused in
 * capability mode, they read as unsupported (ls -l then shows no ACLs). */
#include <sys/xattr.h>

static ssize_t xattr_result(long r)
{
    if (r < 0 && errno == ECAPMODE)
        errno = ENOTSUP;
    return (r);
}

ssize_t getxattr(const char *path, const char *name, void *value, size_t size)
{
    return (xattr_result(syscall(SYS_getxattr, path, name, value, size)));
}

ssize_t lgetxattr(const char *path, const char *name, void *value, size_t size)
{
    return (xattr_result(syscall(SYS_lgetxattr, path, name, value, size)));
}

ssize_t listxattr(const char *path, char *list, size_t size)
{
    return (xattr_result(syscall(SYS_listxattr, path, list, size)));
}

ssize_t llistxattr(const char *path, char *list, size_t size)
{
    return (xattr_result(syscall(SYS_llistxattr, path, list, size)));
}
