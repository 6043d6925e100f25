/* colo_switch.h - what the guest shim (Sources/GuestShim) calls in the switcher: the signal
 * dispatcher, unborrowing, and saving and continuing a guest context. */
#ifndef COLO_SWITCH_H
#define COLO_SWITCH_H

#include <stdint.h>
#include <signal.h>
#include <ucontext.h>
#include <linux/prctl.h>
#include "colo_abi.h"

/* The kernel's struct sigaction for rt_sigaction(2). */
struct kernel_sigaction { uint64_t handler, flags, restorer, mask; };

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

/* What the dispatcher reports every signal to while the address space is traced (the
 * in-process tracer installs it, colo_trace_install); 0: nobody. */
extern void (*colo_switch_signal_observer)(int sig, const siginfo_t *info);

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

/* Turn Syscall User Dispatch off and forget the thread's SCB (exec in place). */
void colo_switch_detach(void);

/* Is the address space being traced (the table's trace selector says BLOCK)? */
static inline int colo_trace_on(void)
{
    const struct colo_table_header *h = (const struct colo_table_header *)COLO_TABLE_ADDR;
    return __atomic_load_n(&h->trace_selector, __ATOMIC_RELAXED) == SYSCALL_DISPATCH_FILTER_BLOCK;
}

/* ---- guest contexts (context.c, context.S) ---- */

/* Save the trapped guest context so colo_resume() continues it with `rax`
 * (and rsp = `rsp`). */
void colo_save_context(struct colo_resume *r, const ucontext_t *uc, long rax, uint64_t rsp);

/* Continue a saved guest context: its signal mask, extended state and registers. */
void colo_resume(const struct colo_resume *r) __attribute__((noreturn));

/* Call fn(arg) on the stack ending at `top`; fn does not return. */
void colo_on_stack(void (*fn)(void *), void *arg, void *top) __attribute__((noreturn));

/* The restorer of handlers the runtime installs. */
extern void colo_sigreturn(void);
#define COLO_SA_RESTORER 0x04000000

#endif
