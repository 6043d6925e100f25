/* CLinux: Linux's interface as its C headers define it (numbers, flags, layouts), for Swift. */
#ifndef CLINUX_H
#define CLINUX_H
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>    /* SYS_* */
#include <sys/ioctl.h>      /* _IOW/_IOWR, which the SECCOMP_IOCTL_NOTIF_* macros use */
#include <sys/ptrace.h>     /* PTRACE_*, PTRACE_O_*, PTRACE_EVENT_* (glibc's; not <linux/ptrace.h>, which conflicts with it) */
#include <linux/seccomp.h>  /* struct seccomp_notif, seccomp_notif_resp, seccomp_notif_addfd */
#include <linux/prctl.h>
#include <linux/kcmp.h>     /* KCMP_VM */
#include <linux/audit.h>    /* AUDIT_ARCH_X86_64 */

/* Flags whose glibc definitions need _GNU_SOURCE, which the Swift Glibc module is not built
 * with (a header defining it here would give this module struct layouts that differ from
 * Glibc's): clinux.c takes their values from <fcntl.h>. */
extern const int clinux_at_fdcwd;
extern const int clinux_at_empty_path;
/* open(2)'s O_PATH (a GNU extension the Glibc module leaves out). */
extern const int clinux_o_path;
extern const int clinux_at_symlink_nofollow;

/* ioctl request numbers: <linux/seccomp.h> builds them with _IOWR/_IOW over the structs'
 * sizes, function-like macros that Swift does not import. */
static const unsigned long clinux_seccomp_ioctl_notif_recv = SECCOMP_IOCTL_NOTIF_RECV;
static const unsigned long clinux_seccomp_ioctl_notif_send = SECCOMP_IOCTL_NOTIF_SEND;
static const unsigned long clinux_seccomp_ioctl_notif_id_valid = SECCOMP_IOCTL_NOTIF_ID_VALID;
static const unsigned long clinux_seccomp_ioctl_notif_addfd = SECCOMP_IOCTL_NOTIF_ADDFD;
static const unsigned int clinux_seccomp_addfd_flag_setfd = SECCOMP_ADDFD_FLAG_SETFD;

/* The x86-64 architecture's audit number (libseccomp's SCMP_ARCH_X86_64), which Swift does not
 * import (a macro over other macros). */
static const uint32_t clinux_audit_arch_x86_64 = AUDIT_ARCH_X86_64;

/* ptrace requests newer than this glibc's <sys/ptrace.h> (and, for some, than these kernel
 * headers): the values of Linux's include/uapi/linux/ptrace.h. */
#ifdef PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG
static const int clinux_ptrace_set_sud_config = PTRACE_SET_SYSCALL_USER_DISPATCH_CONFIG;
static const int clinux_ptrace_get_sud_config = PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG;
#else
static const int clinux_ptrace_set_sud_config = 0x4210;   /* Linux 6.11 */
static const int clinux_ptrace_get_sud_config = 0x4211;
#endif

/* SIGSYS's si_code for Syscall User Dispatch (Linux 5.11, <asm-generic/siginfo.h>, which
 * conflicts with glibc's <signal.h>; glibc does not define it). */
#ifdef SYS_USER_DISPATCH
static const int clinux_sys_user_dispatch = SYS_USER_DISPATCH;
#else
static const int clinux_sys_user_dispatch = 2;
#endif

/* struct ptrace_sud_config, PTRACE_SET/GET_SYSCALL_USER_DISPATCH_CONFIG's argument (Linux 6.11,
 * <linux/ptrace.h>, which conflicts with <sys/ptrace.h>). */
struct clinux_ptrace_sud_config {
    __u64 mode;         /* PR_SYS_DISPATCH_OFF or _ON */
    __u64 selector;
    __u64 offset;
    __u64 len;
};

/* SO_PEERCRED's struct ucred (glibc declares it only with _GNU_SOURCE): its pid, uid and gid
 * into *pid, *uid, *gid; 0, or -errno. */
int clinux_peer_credentials(int fd, int *pid, unsigned *uid, unsigned *gid);

/* Queue signal `sig` to process `pid` (to its thread `tid` if not 0) with si_code SI_QUEUE
 * and `value` as its sival_ptr, from the caller (rt_sigqueueinfo, rt_tgsigqueueinfo).
 * 0 or -errno. */
int clinux_queue_signal(int pid, int tid, int sig, unsigned long long value);

/* pidfd_open(2)'s PIDFD_THREAD (Linux 6.9, <linux/pidfd.h>): O_EXCL. */
extern const int clinux_pidfd_thread;

/* pidfd's PIDFD_GET_INFO ioctl and struct pidfd_info, as far as its first version goes
 * (Linux 6.13, <linux/pidfd.h>; newer than these kernel headers). */
#ifdef PIDFD_GET_INFO
#include <linux/pidfd.h>
typedef struct pidfd_info clinux_pidfd_info;
#else
typedef struct clinux_pidfd_info {
    __u64 mask, cgroupid;
    __u32 pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    __s32 exit_code;
} clinux_pidfd_info;
#define PIDFS_IOCTL_MAGIC 0xFF
#define PIDFD_GET_INFO _IOWR(PIDFS_IOCTL_MAGIC, 11, clinux_pidfd_info)
#define PIDFD_INFO_EXIT (1UL << 3)
#endif
static const unsigned long clinux_pidfd_get_info = PIDFD_GET_INFO;
static const __u64 clinux_pidfd_info_exit = PIDFD_INFO_EXIT;

/* epoll (<sys/epoll.h>, which Swift's Glibc module does not include; struct epoll_event
 * is packed on x86-64, so C fills and reads it). */
/* epoll_create1(EPOLL_CLOEXEC): a descriptor, or -errno. */
int clinux_epoll_create(void);
/* Watch `fd` for readability (EPOLLIN), reporting `data`: 0, or -errno. */
int clinux_epoll_add_readable(int epfd, int fd, uint64_t data);
/* The data of up to `max` (at most 32) ready descriptors, without waiting: their count, or -errno. */
int clinux_epoll_ready(int epfd, uint64_t *data, int max);
/* sendmsg(2) of `len` bytes with `nfds` (at most 8) descriptors attached as SCM_RIGHTS: the bytes
 * sent, or -errno. */
long clinux_send_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);

/* recvmsg(2) of at most `len` bytes (`flags`: MSG_WAITALL ...) and the descriptors that came with
 * them as SCM_RIGHTS (close-on-exec): the first `max` (at most 8) in fds[0 ..< *nfds], any more
 * closed.  The bytes received, or -errno. */
long clinux_receive_fds(int sock, void *buf, size_t len, int flags, int *fds, int max, int *nfds);

/* recvmsg(2) of at most `len` bytes and at most one descriptor (close-on-exec; *fd -1 if none
 * came): the bytes received, or -errno. */
long clinux_receive_fd(int sock, void *buf, size_t len, int *fd);

/* memfd_create(2) with MFD_CLOEXEC (a _GNU_SOURCE declaration): the descriptor or -1. */
int clinux_memfd(const char *name);

/* fallocate(2) FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: 0 or -errno. */
int clinux_punch_hole(int fd, long long offset, long long length);

/* The calling thread's rseq registration as glibc made it (address 0: none): what
 * rseq(RSEQ_FLAG_UNREGISTER) needs. */
void clinux_rseq_area(uint64_t *address, uint32_t *length, uint32_t *signature);

#endif
