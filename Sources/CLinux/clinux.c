/* CLinux: the values of the flags clinux.h declares, from glibc's own headers, and the
 * helpers for layouts Swift cannot express. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include "clinux.h"

const int clinux_at_fdcwd = AT_FDCWD;
const int clinux_at_empty_path = AT_EMPTY_PATH;
const int clinux_at_symlink_nofollow = AT_SYMLINK_NOFOLLOW;

#ifdef PIDFD_THREAD
const int clinux_pidfd_thread = PIDFD_THREAD;
#else
const int clinux_pidfd_thread = O_EXCL;     /* as <linux/pidfd.h> defines it */
#endif

int clinux_peer_credentials(int fd, int *pid, unsigned *uid, unsigned *gid) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -errno;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int clinux_epoll_create(void) {
    int fd = epoll_create1(EPOLL_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int clinux_epoll_add_readable(int epfd, int fd, uint64_t data) {
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = data };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int clinux_epoll_ready(int epfd, uint64_t *data, int max) {
    struct epoll_event evs[32];
    if (max > 32) max = 32;
    int n = epoll_wait(epfd, evs, max, 0);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) data[i] = evs[i].data.u64;
    return n;
}

int clinux_queue_signal(int pid, int tid, int sig, unsigned long long value) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = sig;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_ptr = (void *)(uintptr_t)value;
    long r = tid ? syscall(SYS_rt_tgsigqueueinfo, pid, tid, sig, &info) : syscall(SYS_rt_sigqueueinfo, pid, sig, &info);
    return r == 0 ? 0 : -errno;
}
