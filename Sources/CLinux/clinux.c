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
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include "clinux.h"

const int clinux_at_fdcwd = AT_FDCWD;
const int clinux_at_empty_path = AT_EMPTY_PATH;
const int clinux_o_path = O_PATH;
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

long clinux_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    union { char buf[CMSG_SPACE(sizeof(int) * 8)]; struct cmsghdr align; } ctl;
    if (nfds < 0 || nfds > 8) return -EINVAL;
    struct iovec iov = { (void *)buf, len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
    memset(&ctl, 0, sizeof ctl);
    if (nfds > 0) {
        m.msg_control = ctl.buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    do n = sendmsg(sock, &m, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

long clinux_receive_fds(int sock, void *buf, size_t len, int flags, int *fds, int max, int *nfds) {
    union { char buf[CMSG_SPACE(sizeof(int) * 8)]; struct cmsghdr align; } ctl;
    struct iovec iov = { buf, len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf };
    *nfds = 0;
    ssize_t n;
    do n = recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (*nfds < max) fds[(*nfds)++] = fd; else close(fd);
        }
    }
    return n;
}

long clinux_receive_fd(int sock, void *buf, size_t len, int *fd) {
    int n = 0;
    *fd = -1;
    return clinux_receive_fds(sock, buf, len, 0, fd, 1, &n);
}

int clinux_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

int clinux_punch_hole(int fd, long long offset, long long length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) < 0 ? -errno : 0;
}

void clinux_rseq_area(uint64_t *address, uint32_t *length, uint32_t *signature) {
    *address = __rseq_size ? (uint64_t)((char *)__builtin_thread_pointer() + __rseq_offset) : 0;
    *length = __rseq_size < 32 ? 32 : __rseq_size;
    *signature = RSEQ_SIG;
}
