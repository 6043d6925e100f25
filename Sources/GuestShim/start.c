/* start.c - the first code a colocated process runs: it turns the fresh
 * CLONE_VM child of the runtime into what execve() would have produced, then
 * jumps to the loaded program.  Runs without libc, on the slot's start stack. */
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/errno.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/seccomp.h>
#include "colo_linux_newer.h"
#include <linux/filter.h>
#include <asm/prctl.h>
#include "colo_sys.h"
#include "colo_layout.h"
#include "colo_switch.h"
#include "guest_shim.h"
#include "clone.h"
#include "process.h"
#include "start.h"
#include "trace.h"


enum start_step { STEP_STDIO = 1, STEP_FDS, STEP_CWD, STEP_CREDS,
                  STEP_SIGNALS, STEP_NAME };

static void fail(struct colo_slot *slot, int step, long err)
{
    slot->start_step = step;
    slot->start_error = (int32_t)-err;
    sys1(SYS_exit_group, 127);
}

static void child_main(void *arg)
{
    struct colo_slot *slot = arg;
    long r;

    /* The runtime records the owner too, but only once clone returned to it:
     * the program may install signal handlers before that (see do_sigaction). */
    slot->owner_pid = (int32_t)sys0(SYS_getpid);
    /* Its row of the process table names it before its program runs (the runtime learns the
     * PID only when its agent's answer arrives): `colo ps` and --join find it at once. */
    if (slot->index < COLO_MAX_SLOTS) __atomic_store_n(&colo_proc_entry_at(slot->index)->pid, slot->owner_pid, __ATOMIC_RELEASE);
    /* No parent-death signal (natively there is none): the agent kills every member once
     * the runtime is gone (space_end.c).  A starter gone already: end here. */
    if (sys0(SYS_getppid) != slot->start_parent) sys1(SYS_exit_group, 127);

    for (int i = 0; i < 3; i++) {
        if (slot->stdio[i] < 0) continue;
        if ((r = sys3(SYS_dup3, slot->stdio[i], i, 0)) < 0 && slot->stdio[i] != i) fail(slot, STEP_STDIO, r);
    }
    /* The starter's close-on-exec descriptors (the standard ones just set up are the member's). */
    for (uint32_t i = 0; i < slot->start_nclose && i < COLO_START_CLOSE_MAX; i++) {
        int32_t fd = slot->start_close[i];
        if (fd >= 0 && !(fd <= 2 && slot->stdio[fd] >= 0)) sys1(SYS_close, fd);
    }
    if (slot->cwd[0] && (r = sys1(SYS_chdir, slot->cwd)) < 0) fail(slot, STEP_CWD, r);
    if (slot->set_creds) {
        if ((r = sys2(SYS_setgroups, 0, 0)) < 0) fail(slot, STEP_CREDS, r);
        if ((r = sys3(SYS_setresgid, slot->gid, slot->gid, slot->gid)) < 0) fail(slot, STEP_CREDS, r);
        if ((r = sys3(SYS_setresuid, slot->uid, slot->uid, slot->uid)) < 0) fail(slot, STEP_CREDS, r);
    }

    /* The agent that started it has every disposition default (colo_default_dispositions)
     * but SIGCHLD, which a fork child's agent ignores. */
    uint64_t defaults = ~(1ULL << (SIGCHLD - 1));
    if ((r = colo_set_start_dispositions(slot->ignored_signals, defaults)) < 0) fail(slot, STEP_SIGNALS, r);
    uint64_t mask = slot->signal_mask & ~(1ULL << (SIGSYS - 1));
    if ((r = sys4(SYS_rt_sigprocmask, SIG_SETMASK, &mask, 0, 8)) < 0) fail(slot, STEP_SIGNALS, r);

    if ((r = sys5(SYS_prctl, PR_SET_NAME, slot->comm, 0, 0, 0)) < 0) fail(slot, STEP_NAME, r);
    sys2(SYS_arch_prctl, ARCH_SET_FS, 0);
    sys2(SYS_arch_prctl, ARCH_SET_GS, 0);
    colo_trace_enable_here();
    colo_jump(slot->entry, slot->initial_sp);
}

static int spawn(struct colo_slot *slot, unsigned long flags)
{
    void *stack = (char *)slot + COLO_START_STACK_TOP;
    slot->start_error = 0;
    slot->start_step = 0;
    slot->start_parent = (int32_t)(flags & CLONE_PARENT ? sys0(SYS_getppid) : sys0(SYS_getpid));
    return (int)colo_clone_start(flags, stack, 0, child_main, slot);
}

int colo_spawn(struct colo_slot *slot) { return spawn(slot, CLONE_VM | SIGCHLD); }

long colo_clone_on_start_stack(struct colo_slot *slot, void (*fn)(void *), int32_t pid, int32_t *pidfd)
{
    /* clone3's child pops fn and arg from the top of its stack (colo_clone3_start); the
     * start-up stack lies above the header's runtime part. */
    uint64_t top = (uint64_t)slot + COLO_START_STACK_TOP - 16;
    ((uint64_t *)top)[0] = (uint64_t)fn;
    ((uint64_t *)top)[1] = (uint64_t)slot;
    int64_t tid = pid;
    struct clone_args ca;
    colo_memset(&ca, 0, sizeof ca);
    ca.flags = CLONE_VM | CLONE_PIDFD;
    ca.pidfd = (uint64_t)pidfd;
    ca.exit_signal = SIGCHLD;
    ca.stack = (uint64_t)slot + COLO_SLOT_HEADER_RUNTIME_PART;
    ca.stack_size = top - ca.stack;
    if (pid > 0) {
        ca.set_tid = (uint64_t)&tid;
        ca.set_tid_size = 1;
    }
    return colo_clone3_start(&ca, sizeof ca);
}

int colo_spawn_with_pidfd(struct colo_slot *slot, int32_t *pidfd)
{
    slot->start_error = 0;
    slot->start_step = 0;
    slot->start_parent = (int32_t)sys0(SYS_getpid);
    return (int)colo_clone_on_start_stack(slot, child_main, 0, pidfd);
}

/* The agent's members are the runtime's children, as if the runtime had cloned them. */
int colo_spawn_as_sibling(struct colo_slot *slot) { return spawn(slot, CLONE_VM | CLONE_PARENT); }

int colo_install_filter(const struct colo_sock_filter *prog, uint32_t len)
{
    struct sock_fprog fp = { .len = (unsigned short)len, .filter = (struct sock_filter *)prog };
    long r = sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fp);
    if (r == -EACCES /* no CAP_SYS_ADMIN */) {
        sys5(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        r = sys3(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fp);
    }
    /* A colocation call is synchronous: its caller sleeps until the runtime answers, and the
     * runtime sleeps until a call comes.  With synchronous wake-ups the kernel runs the woken
     * side on the waker's CPU instead of waking another vCPU (17-45 us here); older kernels
     * refuse the ioctl (EINVAL) and wake as before. */
    if (r >= 0) sys3(SYS_ioctl, r, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    return (int)r;
}

void colo_capture_initial_signals(uint64_t *ignored, uint64_t *blocked)
{
    uint64_t ign = 0;
    for (int sig = 1; sig <= 64; sig++) {
        struct kernel_sigaction sa;
        if (sys4(SYS_rt_sigaction, sig, 0, &sa, 8) == 0 && sa.handler == (uint64_t)SIG_IGN)
            ign |= 1ULL << (sig - 1);
    }
    uint64_t mask = 0;
    sys4(SYS_rt_sigprocmask, SIG_BLOCK, 0, &mask, 8);
    *ignored = ign;
    *blocked = mask;
}
