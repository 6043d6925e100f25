/* process.c - per-process state changes that execve performs, done by hand for
 * the start of a colocated process and for exec in place. */
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include "colo_sys.h"
#include "colo_switch.h"
#include "process.h"

long colo_each_fd(int (*visit)(long fd, long flags, void *ctx), void *ctx)
{
    int dir = (int)sys4(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dir < 0) return dir;
    char buf[2048];
    long n, stop = 0;
    while (!stop && (n = sys3(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n && !stop;) {
            unsigned short reclen = *(unsigned short *)(buf + off + 16);
            const char *name = buf + off + 19;
            off += reclen;
            if (name[0] < '0' || name[0] > '9') continue;
            long fd = 0;
            for (const char *p = name; *p; p++) fd = fd * 10 + (*p - '0');
            if (fd == dir) continue;
            long flags = sys2(SYS_fcntl, fd, F_GETFD);
            if (flags >= 0) stop = visit(fd, flags, ctx);
        }
    }
    sys1(SYS_close, dir);
    return stop ? 0 : n;
}

static int close_if_cloexec(long fd, long flags, void *ctx)
{
    if ((flags & FD_CLOEXEC) && fd != *(long *)ctx) sys1(SYS_close, fd);
    return 0;
}

long colo_close_cloexec_fds(void)
{
    return colo_close_cloexec_fds_except(-1);
}

long colo_close_cloexec_fds_except(int keep)
{
    long k = keep;
    return colo_each_fd(close_if_cloexec, &k);
}

void colo_sigsys_handler(int sig, siginfo_t *info, void *uctx);

long colo_set_start_dispositions(uint64_t ignored, uint64_t defaults)
{
    long r = 0;
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        /* Default already, and to stay so: nothing to do. */
        if (sig != SIGSYS && ((defaults & ~ignored) >> (sig - 1)) & 1) continue;
        struct kernel_sigaction sa;
        colo_memset(&sa, 0, sizeof sa);
        if (sig == SIGSYS) {
            sa.handler = (uint64_t)colo_sigsys_handler;
            /* SA_NODEFER: a guest handler nested in ours may trap; SA_RESTART: the runtime's
             * request to become an address space (space.c) interrupts no call for good. */
            sa.flags = SA_SIGINFO | COLO_SA_RESTORER | SA_NODEFER | SA_RESTART;
            sa.restorer = (uint64_t)colo_sigreturn;
        } else {
            sa.handler = (ignored >> (sig - 1)) & 1 ? (uint64_t)SIG_IGN : (uint64_t)SIG_DFL;
        }
        long e = sys4(SYS_rt_sigaction, sig, &sa, 0, 8);
        if (e < 0 && sig == SIGSYS) r = e;
    }
    return r;
}

void colo_default_dispositions(void)
{
    struct kernel_sigaction dfl;
    colo_memset(&dfl, 0, sizeof dfl);
    for (int sig = 1; sig <= 64; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) sys4(SYS_rt_sigaction, sig, &dfl, 0, 8);
}

void colo_reset_signals_for_exec(struct colo_slot *s)
{
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP || sig == SIGSYS) continue;
        struct kernel_sigaction old;
        if (sys4(SYS_rt_sigaction, sig, 0, &old, 8) < 0) continue;
        if (old.handler == (uint64_t)SIG_DFL || old.handler == (uint64_t)SIG_IGN) continue;
        struct kernel_sigaction dfl;
        colo_memset(&dfl, 0, sizeof dfl);
        sys4(SYS_rt_sigaction, sig, &dfl, 0, 8);
    }
    if (s) {
        colo_memset(&s->guest_sigsys, 0, sizeof s->guest_sigsys);
        s->switcher_signals = 0;
    }
    colo_switch_detach();
}
