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

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

int openat(int fd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return ((int)do_fd_and_path(SYS_openat, fd, path, flags, mode, 0));
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return ((int)do_fd_and_path(SYS_openat, AT_FDCWD, path, flags, mode, 0));
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));
int openat64(int fd, const char *path, int flags, ...) __attribute__((alias("openat")));

int fstatat(int fd, const char *path, struct stat *sb, int flag)
{
    return ((int)do_fd_and_path(SYS_newfstatat, fd, path, (long)sb, flag, 0));
}

int fstatat64(int fd, const char *path, struct stat64 *sb, int flag) __attribute__((alias("fstatat")));

int stat(const char *path, struct stat *sb)
{
    return (fstatat(AT_FDCWD, path, sb, 0));
}

int stat64(const char *path, struct stat64 *sb) __attribute__((alias("stat")));

int lstat(const char *path, struct stat *sb)
{
    return (fstatat(AT_FDCWD, path, sb, AT_SYMLINK_NOFOLLOW));
}

int lstat64(const char *path, struct stat64 *sb) __attribute__((alias("lstat")));

int statx(int fd, const char *path, int flags, unsigned int mask, struct statx *buf)
{
    return ((int)do_fd_and_path(SYS_statx, fd, path, flags, mask, (long)buf));
}

int faccessat(int fd, const char *path, int mode, int flag)
{
    return ((int)do_fd_and_path(SYS_faccessat2, fd, path, mode, flag, 0));
}

int access(const char *path, int mode)
{
    return (faccessat(AT_FDCWD, path, mode, 0));
}

int fchmodat(int fd, const char *path, mode_t mode, int flag)
{
    if (flag == 0)
        return ((int)do_fd_and_path(SYS_fchmodat, fd, path, mode, 0, 0));
    errno = EOPNOTSUPP;     /* as glibc without fchmodat2 */
    return (-1);
}

int fchownat(int fd, const char *path, uid_t owner, gid_t group, int flag)
{
    return ((int)do_fd_and_path(SYS_fchownat, fd, path, owner, group, flag));
}

int utimensat(int fd, const char *path, const struct timespec times[2], int flag)
{
    return ((int)do_fd_and_path(SYS_utimensat, fd, path, (long)times, flag, 0));
}

int mkdir(const char *path, mode_t mode)
{
    return ((int)do_fd_and_path(SYS_mkdirat, AT_FDCWD, path, mode, 0, 0));
}

/* glibc's opendir opens through an internal entry point: open here, then
 * fdopendir(3). */
DIR *opendir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return (NULL);
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return (d);
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
