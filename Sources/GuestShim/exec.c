/* exec.c - exec in place and vfork, in the SIGSYS handler.
 *
 * execve/execveat by a colocated process: the runtime loads the new program
 * into the process's own slot (or, for a vfork child still sharing its
 * parent's slot, into a fresh one) and the handler jumps to it, keeping PID,
 * descriptors (minus close-on-exec), cwd, credentials and signal mask, as
 * execve does.  Programs the runtime cannot colocate get a real execve.
 *
 * vfork and clone(CLONE_VFORK): the kernel would keep the parent blocked until
 * the child really execs or exits, so the flag is stripped and the parent
 * waits here instead, on a stack of its own (a vfork child borrows the
 * parent's stack), until the child has exec'd in place, exec'd for real or
 * exited; it then resumes from a saved context. */
#define _GNU_SOURCE
#include <stddef.h>
#include <fcntl.h>
#include <unistd.h>
#include <linux/errno.h>
#include <signal.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <linux/sched.h>
#include <linux/futex.h>
#include <sys/prctl.h>
#include <asm/prctl.h>
#include "colo_recolo.h"
#include "colo_sys.h"
#include "colo_layout.h"
#include "colo_switch.h"
#include "clone.h"
#include "process.h"
#include "trace.h"
#include "exec.h"
#include "procself.h"
#include "fork.h"
#include "space.h"


#define SIGBIT(s) (1ULL << ((s) - 1))

static struct colo_vfork_area *vfork_area(struct colo_slot *s, long tid)
{
    return (struct colo_vfork_area *)((char *)s + COLO_VFORK_AREAS +
                                      (uint64_t)(tid % COLO_VFORK_AREA_COUNT) * COLO_VFORK_AREA_SIZE);
}

/* On the vfork area's own stack: create the child, then wait for it to exec
 * or exit and resume the parent.  The parent must be off the guest stack
 * before the child exists: a vfork child runs on that very stack. */
static void vfork_from_area(void *arg)
{
    struct colo_vfork_area *a = arg;
    /* CHILD_SETTID puts the child's tid in `done`, CHILD_CLEARTID clears it
     * (and wakes us) when the child exits or really execs. */
    long pid = colo_clone_resume(a->flags | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID, &a->done, &a->child);
    a->parent.gregs[REG_RAX] = (uint64_t)pid;
    if (pid > 0) {
        uint32_t v;
        while ((v = __atomic_load_n(&a->done, __ATOMIC_ACQUIRE)) != 0)
            sys6(SYS_futex, (long)&a->done, FUTEX_WAIT, v, 0, 0, 0);
    }
    if (colo_trace_on()) colo_trace_result(pid);
    colo_resume(&a->parent);
}

/* fork, or clone without CLONE_VM: the child gets a private copy of the mm.
 * The re-colocation helper must exist before the child does (it is what
 * brings the child back when it execs); then the call itself, here: the
 * child returns from it inside this handler, in its own copy. */
static long do_fork(struct colo_slot *s, ucontext_t *uc, int nr)
{
    greg_t *g = uc->uc_mcontext.gregs;
    colo_recolo_ensure_helper(s);
    /* The guest's own handlers may run as soon as the call returns, still
     * inside this handler (a SIGCHLD of an early exit): SIGSYS must not be
     * blocked then, or their trapped calls (waitpid) would kill the process.
     * sigreturn restores the guest's mask afterwards, in both processes. */
    uint64_t mask = ((uint64_t *)&uc->uc_sigmask)[0] & ~(1ULL << (SIGSYS - 1));
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &mask, 0, 8);
    /* What the child makes its own, copied now: the parent goes on writing the originals. */
    struct colo_fork_start start;
    colo_fork_prepare(s, &start.copies);
    long r;
    if (g[REG_RSI] && nr == SYS_clone) {     /* a new stack: the child continues the guest context on it */
        colo_save_context(&start.child, uc, 0, (uint64_t)g[REG_RSI]);
        r = colo_clone_resume((unsigned long)g[REG_RDI], (uint32_t *)g[REG_R10], &start.child);
    } else {
        r = nr == SYS_fork ? sys0(SYS_fork) : sys5(SYS_clone, g[REG_RDI], 0, g[REG_RDX], g[REG_R10], g[REG_R8]);
        if (r == 0) {                        /* the child: not an address space until it needs one */
            colo_fork_child(s, &start.copies);
            return r;
        }
    }
    colo_fork_release(&start.copies);
    return r;
}

long colo_do_vfork(struct colo_slot *s, ucontext_t *uc, int nr)
{
    greg_t *g = uc->uc_mcontext.gregs;
    if (nr == SYS_fork || (nr == SYS_clone && !(g[REG_RDI] & CLONE_VM))) return do_fork(s, uc, nr);
    unsigned long flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
    uint64_t rsp = (uint64_t)g[REG_RSP];
    if (nr == SYS_clone) {
        flags = (unsigned long)g[REG_RDI];
        if (g[REG_RSI]) rsp = (uint64_t)g[REG_RSI];
        /* posix_spawn and vfork pass no tid, tls or pidfd requests */
        if (flags & ~(CSIGNAL | CLONE_VM | CLONE_VFORK | CLONE_FS | CLONE_FILES | CLONE_SIGHAND))
            return -EINVAL;
    }
    struct colo_vfork_area *a = vfork_area(s, sys0(SYS_gettid));
    colo_save_context(&a->child, uc, 0, rsp);
    colo_save_context(&a->parent, uc, 0, (uint64_t)g[REG_RSP]);
    a->flags = flags & ~(unsigned long)CLONE_VFORK;
    a->done = 1;
    colo_on_stack(vfork_from_area, a, (char *)a + COLO_VFORK_AREA_SIZE);
}

/* ---- exec in place ----------------------------------------------------------- */

static long exec_in_place(struct colo_slot *s, ucontext_t *uc);

/* On the new program's slot: release a vfork parent, then enter the program. */
static void exec_enter(void *arg)
{
    struct colo_exec_ctx *c = arg;
    uint64_t mask = c->mask;
    uint32_t *w = c->vfork_done;
    struct colo_slot *ns = colo_slot_at((uint64_t)c->slot);
    if (w) {
        __atomic_store_n(w, 0, __ATOMIC_RELEASE);
        sys6(SYS_futex, (long)w, FUTEX_WAKE, 1, 0, 0, 0);
    }
    sys1(SYS_set_tid_address, 0);
    sys2(SYS_set_robust_list, 0, sizeof(struct robust_list_head));
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &mask, 0, 8);
    sys5(SYS_prctl, PR_SET_NAME, ns->comm, 0, 0, 0);
    sys2(SYS_arch_prctl, ARCH_SET_FS, 0);
    colo_trace_enable_here();      /* exec left the switcher, and dispatch with it */
    if (colo_trace_on()) colo_trace_result(0);
    colo_jump(ns->entry, ns->initial_sp);
}

static long exec_commit(void)
{
    return sys6(COLO_SYS_exec, COLO_EXEC_COMMIT, 0, 0, 0, 0, 0);
}

/* Same slot: runs on the slot header's stack, since the runtime unmaps the rest. */
static void exec_commit_here(void *arg)
{
    struct colo_exec_ctx *c = arg;
    long r = exec_commit();
    if (r < 0) sys2(SYS_kill, sys0(SYS_getpid), SIGKILL);   /* past the point of no return */
    c->slot = (int32_t)r;
    exec_enter(c);
}

/* The exec area of the vfork parent this (vfork child) process came from, if any. */
static uint32_t *vfork_word_of(struct colo_slot *s, long tid)
{
    for (int i = 0; i < COLO_VFORK_AREA_COUNT; i++) {
        struct colo_vfork_area *a = (struct colo_vfork_area *)((char *)s + COLO_VFORK_AREAS + (uint64_t)i * COLO_VFORK_AREA_SIZE);
        if (__atomic_load_n(&a->done, __ATOMIC_ACQUIRE) == (uint32_t)tid) return &a->done;
    }
    return 0;
}

/* A real execve: the program leaves the address space and the runtime's
 * SIGSYS handler, so a traced thread stops trapping its calls first (and
 * starts again if the exec fails). */
static long native_exec(long nr, long a, long b, long c, long d, long e)
{
    int traced = colo_trace_on() && !colo_switch_attached();
    if (traced) sys5(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    long r = sys6(nr, a, b, c, d, e, 0);
    if (traced) colo_trace_enable_here();
    return r;
}

long colo_do_execve(struct colo_slot *s, ucontext_t *uc, int at)
{
    greg_t *g = uc->uc_mcontext.gregs;
    long dirfd = at ? g[REG_RDI] : AT_FDCWD;
    long path = at ? g[REG_RSI] : g[REG_RDI];
    long argv = at ? g[REG_RDX] : g[REG_RSI];
    long envp = at ? g[REG_R10] : g[REG_RDX];
    long flags = at ? g[REG_R8] : 0;
    /* /proc/self/exe names the runtime's executable in every member: the program meant
     * is the process's own. */
    const char *own = colo_exec_own_program(s, dirfd, (uint64_t)path, flags);
    if (own) {
        dirfd = AT_FDCWD;
        path = (long)own;
        flags &= ~AT_EMPTY_PATH;
    }

    /* The file must be executable by this process: the lookup and permission
     * errors are the caller's own (ENOENT, EACCES, ENOTDIR, ELOOP ...). */
    long r = sys4(SYS_faccessat2, dirfd, path, X_OK, AT_EACCESS | (flags & (AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)));
    if (r < 0) return r;
    /* A signal handler may interrupt the request (a real execve is never
     * interrupted); planning again is harmless. */
    do r = sys6(COLO_SYS_exec, COLO_EXEC_PLAN, dirfd, path, argv, envp, flags);
    while (r == -EINTR);
    if (r < 0) return r;
    if (r == COLO_EXEC_NATIVE)
        return native_exec(SYS_execveat, dirfd, path, argv, envp, flags);
    if (r == COLO_EXEC_RECOLOCATE)     /* a fork child: back into the parent's address space */
        return colo_recolocate(uc, dirfd, path, argv, envp, flags);
    return exec_in_place(s, uc);
}

static long do_coexec(struct colo_slot *s, ucontext_t *uc, int vec)
{
    greg_t *g = uc->uc_mcontext.gregs;
    long pid = g[REG_RDI], path = g[REG_RSI], argv = g[REG_RDX], envp = g[REG_R10];
    /* what does not fit the call's six arguments: the vector and our slot */
    struct colo_coexec_extra capv = { vec ? (uint64_t)g[REG_R8] : 0, vec ? (int32_t)g[REG_R9] : 0, (int64_t)s->index };
    /* /proc/self/exe is the caller's own program here too (the join route runs another process). */
    const char *own = colo_exec_own_program(s, AT_FDCWD, (uint64_t)path, 0);
    if (own) path = (long)own;
    long r = sys4(SYS_faccessat2, AT_FDCWD, path, X_OK, AT_EACCESS);
    if (r < 0) return r;
    do r = sys6(COLO_SYS_exec, vec ? COLO_EXEC_PLAN_COVEC : COLO_EXEC_PLAN_CO, pid, path, argv, envp, (long)&capv);
    while (r == -EINTR);
    if (r < 0) return r;
    if (r == COLO_EXEC_NATIVE)
        return native_exec(SYS_execve, path, argv, envp, 0, 0);
    if (r == COLO_EXEC_RECOLOCATE)     /* a fork child colocating with its parent */
        return colo_recolocate(uc, AT_FDCWD, path, argv, envp, 0);
    if (r == COLO_EXEC_JOIN) {     /* another address space: become `colo --join pid ...` */
        char **args = (char **)((char *)s + COLO_JOIN_ARGS_OFFSET);
        return native_exec(SYS_execve, (long)args[0], (long)(args + 1), envp, 0, 0);
    }
    return exec_in_place(s, uc);
}

long colo_do_coexecve(struct colo_slot *s, ucontext_t *uc) { return do_coexec(s, uc, 0); }
long colo_do_coexecvec(struct colo_slot *s, ucontext_t *uc) { return do_coexec(s, uc, 1); }

/* The runtime has validated the program: replace the caller with it. */
static long exec_in_place(struct colo_slot *s, ucontext_t *uc)
{
    /* Point of no return: from here on the old program is being taken apart. */
    colo_close_cloexec_fds();
    long pid = sys0(SYS_getpid), tid = sys0(SYS_gettid);
    int own = s->owner_pid == pid;
    colo_reset_signals_for_exec(own ? s : 0);
    struct { uint64_t sp; int32_t flags, pad; uint64_t size; } ss = { 0, SS_DISABLE, 0, 0 };
    sys2(SYS_sigaltstack, &ss, 0);

    if (own) {
        colo_recolo_stop_helper(s);   /* the helper thread ends with the old program */
        struct colo_exec_ctx *c = &s->exec;
        c->mask = ((uint64_t *)&uc->uc_sigmask)[0] & ~SIGBIT(SIGSYS);
        c->vfork_done = 0;
        colo_on_stack(exec_commit_here, c, (char *)s + COLO_START_STACK_TOP);
    }
    /* A vfork child: the parent's slot stays; the program goes to a new slot. */
    struct colo_exec_ctx c = { ((uint64_t *)&uc->uc_sigmask)[0] & ~SIGBIT(SIGSYS), vfork_word_of(s, tid), 0 };
    long r = exec_commit();
    if (r < 0) sys2(SYS_kill, pid, SIGKILL);
    c.slot = (int32_t)r;
    struct colo_slot *ns = colo_slot_at((uint64_t)r);
    struct colo_exec_ctx *nc = &ns->exec;
    *nc = c;
    colo_on_stack(exec_enter, nc, (char *)ns + COLO_START_STACK_TOP);
}
