/* internal.h - what the guest-side files of Sources/Switcher share. */
#ifndef COLO_SWITCHER_INTERNAL_H
#define COLO_SWITCHER_INTERNAL_H

#include <ucontext.h>
#include "switcher.h"

/* The kernel's struct sigaction for rt_sigaction(2). */
struct kernel_sigaction { uint64_t handler, flags, restorer, mask; };

/* Call visit(fd, F_GETFD flags, ctx) for each open descriptor of the
 * process, until it returns nonzero.  0 or -errno. */
long colo_each_fd(int (*visit)(long fd, long flags, void *ctx), void *ctx);

/* Close every descriptor marked close-on-exec (but `keep`).  0 or -errno. */
long colo_close_cloexec_fds(void);
long colo_close_cloexec_fds_except(int keep);

/* Start the program of `slot` as colo_spawn does, with CLONE_PARENT: the caller's parent
 * is its parent (the agent's members are the runtime's children). */
int colo_spawn_as_sibling(struct colo_slot *slot);

/* Kill every other process of the caller's mm until there is none, then exit (watchdog.c). */
void colo_kill_address_space_and_exit(void) __attribute__((noreturn));

/* The seccomp program colo_build_filter built last (filter.c). */
extern struct colo_sock_filter colo_filter_program[];
extern uint32_t colo_filter_length;


/* The dispositions a new program starts with: every signal default, those
 * of `ignored` (bit sig-1) ignored, SIGSYS the runtime's handler.  0, or
 * -errno if the SIGSYS handler could not be installed. */
long colo_set_start_dispositions(uint64_t ignored);

/* Dispositions as execve leaves them: handled signals back to default,
 * ignored ones kept; the shadowed SIGSYS record of slot `s` too, if given.
 * The thread also leaves the switcher (colo_switch_detach). */
void colo_reset_signals_for_exec(struct colo_slot *s);

/* Save the trapped guest context so colo_resume() continues it with `rax`
 * (and rsp = `rsp`). */
void colo_save_context(struct colo_resume *r, const ucontext_t *uc, long rax, uint64_t rsp);

/* ---- the switcher (switch.c) ---- */

/* The kernel-level handler of every signal a guest handles, and of the
 * synchronous fault signals of processes using the switcher: defers signals
 * that arrive while a thread borrows another process's context, hands faults
 * of borrowed code to their process, then runs the guest's own disposition. */
void colo_signal_entry(int sig, siginfo_t *info, void *uctx);

/* Make `k` (what the guest asked for) install the dispatcher: its flags and
 * mask stay, and its restorer unless it has none (then the runtime's). */
void colo_dispatch_through(struct kernel_sigaction *k);

/* Is `handler` the dispatcher? */
static inline int colo_is_dispatcher(uint64_t handler) { return handler == (uint64_t)colo_signal_entry; }

/* SIGSYS from Syscall User Dispatch: if the thread borrows a context, the
 * call goes to the callee's thread (no return); else 0. */
int colo_switch_unborrow_syscall(ucontext_t *uc);

/* SIGSYS from Syscall User Dispatch on a thread that neither borrows nor is
 * traced: its selector goes back to ALLOW. */
void colo_switch_stale_block(void);

/* Route the fault signals of slot `s`'s process through the dispatcher. */
void colo_switch_dispatch_faults(struct colo_slot *s);

/* Has the calling thread attached itself to the switcher (its own SCB)? */
int colo_switch_attached(void);

/* The header of slot `index` (< COLO_MAX_SLOTS: callers check). */
static inline struct colo_slot *colo_slot_at(uint64_t index)
{
    return (struct colo_slot *)(COLO_SLOT_REGION_BASE + (index << COLO_SLOT_SHIFT));
}

/* Row `index` (< COLO_MAX_SLOTS) of the process table. */
static inline struct colo_proc_entry *colo_proc_entry_at(uint64_t index)
{
    return (struct colo_proc_entry *)(COLO_TABLE_ADDR + 4096 + index * sizeof(struct colo_proc_entry));
}

/* Is `a` the start of an SCB block of the SCB area (the event log's excepted)?  What the
 * runtime's side checks before it follows an SCB address a guest could have written. */
static inline int colo_is_scb_block(uint64_t a)
{
    return a >= COLO_SCB_AREA_ADDR && a < COLO_SWITCH_LOG_ADDR && (a - COLO_SCB_AREA_ADDR) % COLO_SCB_SIZE == 0;
}

/* The slot whose region holds address `a` (a calling instruction), or 0. */
static inline struct colo_slot *colo_slot_of(uint64_t a)
{
    if (a < COLO_SLOT_REGION_BASE || a >= COLO_SLOT_REGION_END) return 0;
    struct colo_slot *s = (struct colo_slot *)(COLO_SLOT_REGION_BASE +
        (((a - COLO_SLOT_REGION_BASE) >> COLO_SLOT_SHIFT) << COLO_SLOT_SHIFT));
    return s->magic == COLO_SLOT_MAGIC ? s : 0;
}

/* A system call the seccomp filter traps to the handler, made for slot `s`
 * (sigsys.c): its result, or no return (exec, vfork). */
long colo_serve_trap(struct colo_slot *s, ucontext_t *uc, int nr);

/* ---- in-process tracing (trace.c) ---- */

/* Is the address space being traced? */
int colo_trace_on(void);

/* If it is, trap the calling thread's system calls from now on. */
void colo_trace_enable_here(void);

/* A traced thread's system call (SIGSYS from Syscall User Dispatch). */
void colo_trace_syscall(struct colo_slot *s, siginfo_t *info, ucontext_t *uc);

/* The end of the thread's call recorded as COLO_TRACE_ENTRY. */
void colo_trace_result(long result);

/* A signal reached the thread. */
void colo_trace_signal(int sig, const siginfo_t *info);

/* Turn Syscall User Dispatch off and forget the thread's SCB (exec in place). */
void colo_switch_detach(void);

/* The restorer of handlers the runtime installs (clone.S). */
extern void colo_sigreturn(void);
#define COLO_SA_RESTORER 0x04000000

/* execve (at = 0) or execveat (at = 1) trapped in slot `s`. */
long colo_do_execve(struct colo_slot *s, ucontext_t *uc, int at);

/* coexecve(pid, path, argv, envp) and coexecvec(..., capv, capc) trapped in slot `s`: the
 * handlers of the calls colo_syscalls.def serves in the guest (colo_do_<id>). */
long colo_do_coexecve(struct colo_slot *s, ucontext_t *uc);
long colo_do_coexecvec(struct colo_slot *s, ucontext_t *uc);

/* vfork or clone(CLONE_VFORK) trapped in slot `s`; the parent returns only
 * through a resumed context, never to the caller. */
long colo_do_vfork(struct colo_slot *s, ucontext_t *uc, int nr);

/* wait4 or waitid trapped in slot `s` (fork.c: re-colocation hand-overs stay invisible). */
long colo_do_wait(struct colo_slot *s, ucontext_t *uc, int nr);

/* readlinkat(dirfd, path, buf, size) trapped in slot `s` (procself.c): a /proc exe link of
 * a process of this address space names that process's program. */
long colo_do_readlink(struct colo_slot *s, long dirfd, uint64_t path, uint64_t buf, long size);

/* The program an exec of (dirfd, path, flags) by slot `s`'s process means when the path
 * is a /proc exe link of the address space (or, with AT_EMPTY_PATH, a descriptor opened
 * on one), else 0. */
const char *colo_exec_own_program(struct colo_slot *s, long dirfd, uint64_t path, long flags);

#endif
