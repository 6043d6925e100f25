/* switch.c - the switcher: cocall/coaccept without entering the kernel.
 *
 * A callee thread waiting in coaccept saves its context in its SCB, marks it
 * IDLE and parks its own kernel thread (futex, WCHAN "copark").  A caller's
 * cocall takes the callee (IDLE -> BUSY), copies its request into the
 * callee's input buffer and continues the callee's context on its own kernel
 * thread ("borrows" it): the callee's coaccept returns there.  The callee's
 * next coaccept copies the reply into the caller's buffer, saves the callee's
 * context again, switches back to the caller and marks the callee IDLE.
 *
 * While borrowing, the caller's Syscall User Dispatch selector is BLOCK: a
 * system call made by callee code raises SIGSYS, and the context is handed to
 * the callee's parked thread, which makes the call as the callee and carries
 * on to the next coaccept, which then answers the waiting caller through a
 * futex ("unborrow").  Faults of callee code are handed over the same way, so
 * they happen in the callee; signals for the caller wait until it has its own
 * context back.  The runtime retires SCBs of exited threads (colo_scb_retire).
 *
 * Runs on guest threads, in the runtime's text (exempt from Syscall User
 * Dispatch): raw system calls only, no libc, no TLS. */
#define _GNU_SOURCE
#include <stddef.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <linux/futex.h>
#include <asm/prctl.h>
#include <asm/hwcap2.h>
#include <linux/auxvec.h>
#include <linux/errno.h>
#include "events.h"
#include "colo_cap.h"
#include "colo_sys.h"
#include "colo_layout.h"
#include "colo_switch.h"
#include "switcher.h"

void (*colo_switch_signal_observer)(int sig, const siginfo_t *info);

extern long colo_switch(struct colo_switch_context *save, const struct colo_switch_context *load, long ret,
                        uint32_t *publish, uint32_t value);
extern long colo_switch_back(struct colo_switch_context *save, const struct colo_switch_context *load, long ret,
                             uint32_t *publish, uint32_t value);
extern void colo_switch_load(const struct colo_switch_context *load, long ret) __attribute__((noreturn));
extern long colo_switch_park(struct colo_switch_context *save, void (*fn)(void *), void *arg, void *top);
extern long colo_copy_user(void *dst, const void *src, uint64_t n, uint64_t *fault);
extern char colo_copy_begin[], colo_copy_end[], colo_copy_fault[];
extern char __executable_start[], etext[];

#define SIGBIT(s) (1ULL << ((s) - 1))
#define FAULT_SIGNALS (SIGBIT(SIGSEGV) | SIGBIT(SIGBUS) | SIGBIT(SIGFPE) | SIGBIT(SIGILL) | SIGBIT(SIGTRAP))

/* The selector as it is while not borrowing: ALLOW, or BLOCK while the
 * address space is traced.  (A tracer that stopped the thread between the
 * load and the store finds the selector it set overwritten, and sets it
 * again: InProcessTracer.swift.) */
static inline void unblock(struct colo_scb *me)
{
    __atomic_store_n(&me->selector, __atomic_load_n(&me->idle_selector, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
}

static struct colo_cap_table *const cap_table = (struct colo_cap_table *)COLO_CAP_TABLE_ADDR;

/* The calling thread's SCB: its GS base (0 if it never attached, or if the
 * program uses GS for something of its own). */
static inline struct colo_scb *self_scb(void)
{
    uint64_t v;
    __asm__ volatile("rdgsbase %0" : "=r"(v));
    if (v - COLO_SCB_AREA_ADDR >= (uint64_t)COLO_CAP_TABLE_CAPACITY * COLO_SCB_SIZE) return 0;
    return (struct colo_scb *)v;
}

/* Is `me` (the GS base) the calling thread's own SCB?  A new thread starts
 * with its creator's GS base, so where that matters (a borrowing SCB) the
 * slow paths ask. */
static int own(const struct colo_scb *me)
{
    return me->tid == (int32_t)sys0(SYS_gettid);
}

/* The SCB a capability of `type` (SCB or TARGET) names, or 0. */
static struct colo_scb *scb_of(uint64_t cap, unsigned type, int *dead)
{
    struct colo_cap_entry *e = colo_cap_lookup(cap_table, cap, type);
    if (!e) return 0;
    if (dead) *dead = (e->flags & COLO_CAP_DEAD) != 0;
    return (struct colo_scb *)e->object;
}

/* EINVAL for a NULL buffer with a length, EPROTO for an untagged one
 * (COLO_UNTAGGED_LIMIT) unless `untagged_ok` (a coaccept: its copy fails
 * later), EINVAL for unaligned values, EFAULT for a range outside the user
 * address space, else 0 (as the slow path checks). */
static long check_buffer(uint64_t p, uint64_t n, int untagged_ok)
{
    if (p == 0 && n != 0) return -EINVAL;
    if (p != 0 && p < COLO_UNTAGGED_LIMIT) return untagged_ok ? 0 : -EPROTO;
    if ((p | n) % 8 != 0) return -EINVAL;
    if (p + n < p || p + n > 0x800000000000ULL) return -EFAULT;
    return 0;
}

/* check_buffer for the output and the input buffer of a call. */
static long check_buffers(uint64_t out, uint64_t outlen, uint64_t in, uint64_t inlen, int untagged_ok)
{
    long e = check_buffer(out, outlen, untagged_ok);
    return e ? e : check_buffer(in, inlen, untagged_ok);
}

static inline long futex_wait(uint32_t *w, uint32_t v)
{
    return sys6(SYS_futex, (long)w, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, v, 0, 0, 0);
}
static inline void futex_wake(uint32_t *w)
{
    sys6(SYS_futex, (long)w, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, 0, 0, 0);
}

/* The callee's state has just left BUSY: wake the callers asleep on it. */
static inline void wake_waiters(struct colo_scb *callee, int all)
{
    if (__atomic_load_n(&callee->waiters, __ATOMIC_SEQ_CST))
        sys6(SYS_futex, (long)&callee->state, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, all ? INT_MAX : 1, 0, 0, 0);
}

#define WCHAN_COPARK 0x6b7261706f63ULL      /* "copark": a callee's parked thread */
#define WCHAN_COCALL 0x6c6c61636f63ULL      /* "cocall": a caller waiting for an unborrowed call */
#define WCHAN_COBUSY 0x797375626f63ULL      /* "cobusy": a caller waiting for a busy callee */

/* The process's WCHAN in the table (8 bytes written at once). */
static void show_wchan(struct colo_scb *me, uint64_t text)
{
    if (me->wchan) __atomic_store_n((uint64_t *)me->wchan, text, __ATOMIC_RELAXED);
}

/* A busy callee: spin a little, then yield, then sleep on its state until
 * whoever makes it IDLE (or DEAD) wakes us ("cobusy"; at most 10 ms at a
 * time), so that callers queued on a busy service do not hold a CPU the
 * service needs. */
static void backoff(struct colo_scb *me, struct colo_scb *callee, unsigned round)
{
    if (round < 64) {
        __asm__ volatile("pause");
    } else if (round < 256) {
        sys0(SYS_sched_yield);
    } else {
        if (round == 256) show_wchan(me, WCHAN_COBUSY);
        struct { long s, ns; } ts = { 0, 10000000 };
        __atomic_add_fetch(&callee->waiters, 1, __ATOMIC_SEQ_CST);
        sys6(SYS_futex, (long)&callee->state, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, COLO_SCB_BUSY, (long)&ts, 0, 0);
        __atomic_sub_fetch(&callee->waiters, 1, __ATOMIC_SEQ_CST);
    }
}

/* Signals that arrived while this thread borrowed a context: raise them
 * again now that it runs its own code. */
static void deliver_pending(struct colo_scb *me)
{
    uint64_t p = __atomic_exchange_n(&me->pending, 0, __ATOMIC_ACQ_REL);
    while (p) {
        int sig = __builtin_ctzll(p) + 1;
        p &= p - 1;
        sys4(SYS_rt_tgsigqueueinfo, me->pid, me->tid, sig, me->pending_info[sig - 1]);
    }
}

/* ---- cocall ------------------------------------------------------------------ */

#define DEST_FAULT 4096     /* deliver(): the callee's buffer faulted */

static inline uint32_t done_word(uint32_t seq, uint32_t state) { return seq << 2 | state; }

/* Copy the caller's request (and cookie) into the callee's waiting coaccept:
 * the bytes copied, -EFAULT if the caller's buffer faulted, -DEST_FAULT if
 * the callee's did. */
static long deliver(struct colo_scb *caller, struct colo_scb *callee)
{
    uint64_t n = caller->call_outlen < callee->inlen ? caller->call_outlen : callee->inlen;
    uint64_t fa = 0, cookie = caller->cookie;
    if (n && colo_copy_user((void *)callee->in, (const void *)caller->call_out, n, &fa) < 0)
        return fa - callee->in < n ? -DEST_FAULT : -EFAULT;
    if (callee->cookiep && colo_copy_user((void *)callee->cookiep, &cookie, 8, 0) < 0)
        return -DEST_FAULT;
    return (long)n;
}

/* Copy a reply into the caller's input buffer: the bytes copied, -EFAULT if
 * the caller's buffer faulted, -DEST_FAULT if the callee's (`out`) did. */
static long reply(struct colo_scb *caller, uint64_t out, uint64_t outlen)
{
    uint64_t n = outlen < caller->call_inlen ? outlen : caller->call_inlen;
    uint64_t fa = 0;
    if (n && colo_copy_user((void *)caller->call_in, (const void *)out, n, &fa) < 0)
        return fa - caller->call_in < n ? -EFAULT : -DEST_FAULT;
    return (long)n;
}

/* The SCB capability `data` names: `hint` (this thread's SCB, or the one
 * it borrows) when it is that SCB's, which needs no table lookup. */
static inline struct colo_scb *own_scb(uint64_t data, struct colo_scb *hint)
{
    if (hint && (hint->cookie | COLO_CAP_TAG) == data && hint->magic == COLO_SCB_MAGIC) return hint;
    return scb_of(data, COLO_CAP_SCB, 0);
}

long colo_switch_cocall(uint64_t data, uint64_t target, uint64_t out, uint64_t outlen, uint64_t in, uint64_t inlen)
{
    struct colo_scb *cur = self_scb();
    struct colo_scb *me = own_scb(data, cur);
    if (!me || !cur) return -EINVAL;
    if (me != cur)      /* callee code calling out: from its own thread, please */
        return cur->borrowing == me ? -COLO_SWITCH_UNBORROW_FIRST : -EINVAL;
    long e = check_buffers(out, outlen, in, inlen, 0);
    if (e) return e;
    struct colo_scb *callee = me->last_callee;
    if (target != me->last_target || !callee || callee->cookie != me->last_cookie || callee->magic != COLO_SCB_MAGIC) {
        int dead = 0;
        callee = scb_of(target, COLO_CAP_TARGET, &dead);
        if (!callee) return -EINVAL;
        if (dead) return -ENOLINK;
        if (callee == me) return -EDEADLK;
        me->last_target = target;
        me->last_cookie = callee->cookie;
        me->last_callee = callee;
    }

    unsigned round;
    for (round = 0;; round++) {
        uint32_t st = __atomic_load_n(&callee->state, __ATOMIC_ACQUIRE);
        if (st == COLO_SCB_IDLE) {
            if (__atomic_compare_exchange_n(&callee->state, &st, COLO_SCB_BUSY, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                break;
            continue;
        }
        if (st == COLO_SCB_NEW) return -EAGAIN;
        if (st == COLO_SCB_SLOW) {
            if (colo_log_on()) colo_log_event(COLO_EV_FALLBACK, me, callee, -EPROTOTYPE, 0);
            return -EPROTOTYPE;
        }
        if (st == COLO_SCB_DEAD) {
            if (round >= 256) show_wchan(me, 0);
            return -ENOLINK;
        }
        backoff(me, callee, round);
    }
    if (__builtin_expect(round >= 256, 0)) show_wchan(me, 0);

    me->call_out = out;
    me->call_outlen = outlen;
    me->call_in = in;
    me->call_inlen = inlen;
    if (colo_log_on()) colo_log_call_begin(me, out, outlen);
    long n = deliver(me, callee);
    if (n == -EFAULT) {
        __atomic_store_n(&callee->state, COLO_SCB_IDLE, __ATOMIC_SEQ_CST);
        wake_waiters(callee, 0);
        return -EFAULT;
    }
    /* The callee's buffer faulted: its coaccept fails, and its next one gets
     * the request. */
    me->redeliver = n == -DEST_FAULT;
    if (n == -DEST_FAULT) n = -EFAULT;
    me->seq++;
    __atomic_store_n(&me->done, done_word(me->seq, COLO_CALL_WAITING), __ATOMIC_RELAXED);
    callee->caller_seq = me->seq;
    callee->caller = me;
    me->stats_calls++;
    __atomic_store_n(&me->borrowing, callee, __ATOMIC_RELAXED);
    __atomic_store_n(&me->selector, SYSCALL_DISPATCH_FILTER_BLOCK, __ATOMIC_RELAXED);
    long r = colo_switch(&me->call_ctx, &callee->accept_ctx, n, 0, 0);
    if (colo_log_on()) colo_log_call_end(me, callee, n, r);
    /* Back on our own context, from the callee's coaccept or an unborrow. */
    unblock(me);
    __atomic_store_n(&me->borrowing, 0, __ATOMIC_RELEASE);
    struct colo_scb *w = me->wake_after;
    if (w) {
        me->wake_after = 0;
        futex_wake(&w->park);
    }
    /* The callee's coaccept made it IDLE (after an unborrow it is still BUSY,
     * and park_loop wakes its waiters).  That IDLE was a plain store in
     * colo_switch_back, so a waiter that went to sleep just then may not be
     * seen here: its sleep is bounded (backoff). */
    wake_waiters(callee, 0);
    if (__atomic_load_n(&me->pending, __ATOMIC_ACQUIRE)) deliver_pending(me);
    return r;
}

/* ---- coaccept ---------------------------------------------------------------- */

/* On the SCB's park stack: publish the saved context and wait until the
 * context is lent back to this thread (unborrow, return) or abandoned, or a
 * signal handler interrupts the wait before any caller came (EINTR). */
static void park_loop(void *arg)
{
    struct colo_scb *me = arg;
    show_wchan(me, WCHAN_COPARK);
    __atomic_store_n(&me->state, COLO_SCB_IDLE, __ATOMIC_SEQ_CST);
    wake_waiters(me, 0);
    for (;;) {
        uint32_t cmd = __atomic_exchange_n(&me->park, COLO_PARK_NONE, __ATOMIC_ACQ_REL);
        if (cmd != COLO_PARK_NONE) show_wchan(me, 0);
        if (cmd == COLO_PARK_UNBORROW) {
            uint64_t mask = 0;
            sys4(SYS_rt_sigprocmask, SIG_BLOCK, 0, &mask, 8);
            me->resume.mask = mask;
            colo_resume(&me->resume);
        }
        if (cmd == COLO_PARK_ABANDON) colo_switch_load(&me->accept_ctx, -EINTR);
        if (cmd == COLO_PARK_RETURN) colo_switch_load(&me->accept_ctx, me->park_value);
        if (futex_wait(&me->park, COLO_PARK_NONE) == -EINTR) {
            uint32_t st = COLO_SCB_IDLE;
            if (__atomic_compare_exchange_n(&me->state, &st, COLO_SCB_BUSY, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
                show_wchan(me, 0);
                colo_switch_load(&me->accept_ctx, -EINTR);
            }
        }
    }
}

/* Answer a caller that waits on its futex (its call was unborrowed). */
static void answer_waiting(struct colo_scb *me, struct colo_scb *caller, long r)
{
    uint32_t expect = done_word(me->caller_seq, COLO_CALL_WAITING);
    if (!__atomic_compare_exchange_n(&caller->done, &expect, done_word(me->caller_seq, COLO_CALL_COPYING), 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;     /* it stopped waiting (EINTR) */
    caller->result = r;
    __atomic_store_n(&caller->done, done_word(me->caller_seq, COLO_CALL_ANSWERED), __ATOMIC_RELEASE);
    futex_wake(&caller->done);
}

long colo_switch_coaccept(uint64_t data, uint64_t cookiep, uint64_t out, uint64_t outlen, uint64_t in, uint64_t inlen)
{
    struct colo_scb *cur = self_scb();
    struct colo_scb *me = own_scb(data, cur && cur->borrowing ? cur->borrowing : cur);
    if (!me) return -EINVAL;
    int borrowed = cur != me;
    if (borrowed && (!cur || cur->borrowing != me)) return -EINVAL;
    long e = check_buffers(out, outlen, in, inlen, 1);
    if (e) return e;

    me->cookiep = cookiep;
    me->out = out;
    me->outlen = outlen;
    me->in = in;
    me->inlen = inlen;
    struct colo_scb *caller = me->caller;
    long mine = 0;          /* what this coaccept returns once it has answered */
    if (caller && caller->redeliver) {
        /* The previous coaccept failed (EFAULT): this one gets the request. */
        long n = deliver(caller, me);
        if (n >= 0 || n == -DEST_FAULT) {
            if (n >= 0) caller->redeliver = 0;
            return n >= 0 ? n : -EFAULT;
        }
        caller->redeliver = 0;
        if (!borrowed) {
            me->caller = 0;
            answer_waiting(me, caller, -EFAULT);
        } else {
            me->caller = 0;
            return colo_switch_back(&me->accept_ctx, &caller->call_ctx, -EFAULT, &me->state, COLO_SCB_IDLE);
        }
    } else if (caller) {
        long r = reply(caller, out, outlen);
        if (r == -DEST_FAULT) {         /* our output buffer: both calls fail */
            r = -EFAULT;
            mine = -EFAULT;
        }
        me->caller = 0;
        if (borrowed) {
            if (mine == 0)      /* back to the caller; we are IDLE once off our stack */
                return colo_switch_back(&me->accept_ctx, &caller->call_ctx, r, &me->state, COLO_SCB_IDLE);
            /* Our coaccept fails: our own thread returns it, the caller
             * wakes it once it has its context back. */
            me->park_value = mine;
            caller->wake_after = me;
            return colo_switch_back(&me->accept_ctx, &caller->call_ctx, r, &me->park, COLO_PARK_RETURN);
        }
        answer_waiting(me, caller, r);
        if (mine) return mine;
    } else if (borrowed) {
        return -EINVAL;
    }
    return colo_switch_park(&me->accept_ctx, park_loop, me, (char *)me + COLO_SCB_SIZE);
}

/* ---- unborrow ------------------------------------------------------------------ */

/* On the caller's own stack: wake the callee's parked thread, which takes
 * the borrowed context saved in its SCB; from now on this thread runs only
 * its own code. */
static void hand_over(struct colo_scb *me, struct colo_scb *callee)
{
    __atomic_store_n(&callee->park, COLO_PARK_UNBORROW, __ATOMIC_SEQ_CST);
    futex_wake(&callee->park);
    __atomic_store_n(&me->borrowing, 0, __ATOMIC_SEQ_CST);
    me->stats_unborrows++;
}

/* After hand_over: the caller's own signal mask again, and the signals that
 * were held for it while it borrowed. */
static void take_back_signals(struct colo_scb *me)
{
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &me->saved_mask, 0, 8);
    if (__atomic_load_n(&me->pending, __ATOMIC_ACQUIRE)) deliver_pending(me);
}

/* On the caller's own stack: hand the context to the callee's thread, wait
 * for the call's answer (or a signal: EINTR), return it from the cocall. */
static void unborrow_wait(void *arg)
{
    struct colo_scb *me = arg;
    struct colo_scb *callee = me->borrowing;
    uint32_t waiting = done_word(me->seq, COLO_CALL_WAITING);
    hand_over(me, callee);
    /* A callee that died meanwhile answers nothing (the runtime answers for
     * it once it sees the exit, unless we were still borrowing then): the call
     * received nothing (CheriBSD's kern_cocall_slow returns the 0 bytes it
     * started with when the exiting callee wakes it). */
    if (__atomic_load_n(&callee->state, __ATOMIC_SEQ_CST) == COLO_SCB_DEAD) {
        uint32_t expect = waiting;
        if (__atomic_compare_exchange_n(&me->done, &expect, done_word(me->seq, COLO_CALL_ANSWERED), 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            me->result = 0;
    }
    take_back_signals(me);
    show_wchan(me, WCHAN_COCALL);
    for (;;) {
        uint32_t v = __atomic_load_n(&me->done, __ATOMIC_ACQUIRE);
        if ((v & 3) == COLO_CALL_ANSWERED) break;
        if (futex_wait(&me->done, v) == -EINTR && v == waiting) {
            uint32_t expect = waiting;
            if (__atomic_compare_exchange_n(&me->done, &expect, done_word(me->seq, COLO_CALL_CANCELLED), 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
                struct colo_scb *mine = me;
                __atomic_compare_exchange_n(&callee->caller, &mine, 0, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
                me->redeliver = 0;
                show_wchan(me, 0);
                colo_switch_load(&me->call_ctx, -EINTR);
            }
        }
    }
    show_wchan(me, 0);
    colo_switch_load(&me->call_ctx, me->result);
}

/* On the caller's own stack, after callee code faulted: the fault is the
 * callee's now; the call ends with ENOLINK. */
static void unborrow_fault(void *arg)
{
    struct colo_scb *me = arg;
    struct colo_scb *callee = me->borrowing;
    callee->caller = 0;
    me->redeliver = 0;
    hand_over(me, callee);
    take_back_signals(me);
    colo_switch_load(&me->call_ctx, -ENOLINK);
}

/* Hand the borrowed context in `uc`, to be continued at `rip`, to the
 * callee's parked thread; the caller then continues with `then` on its own
 * stack.  No return. */
static void unborrow(struct colo_scb *me, ucontext_t *uc, uint64_t rip, void (*then)(void *))
{
    uint64_t all = ~0ULL;
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);
    unblock(me);
    struct colo_scb *callee = me->borrowing;
    greg_t *g = uc->uc_mcontext.gregs;
    g[REG_RIP] = (greg_t)rip;
    colo_save_context(&callee->resume, uc, g[REG_RAX], (uint64_t)g[REG_RSP]);
    me->saved_mask = ((uint64_t *)&uc->uc_sigmask)[0] & ~SIGBIT(SIGSYS);
    uint64_t fs = me->call_ctx.fsbase;
    __asm__ volatile("wrfsbase %0" :: "r"(fs) : "memory");
    colo_on_stack(then, me, (char *)me->call_ctx.rsp - 256);
}

int colo_switch_unborrow_syscall(ucontext_t *uc)
{
    struct colo_scb *me = self_scb();
    greg_t *g = uc->uc_mcontext.gregs;
    if (!me || me->magic != COLO_SCB_MAGIC || !me->borrowing || !own(me)) return 0;
    /* The call was not made (rax holds its number again): the callee's
     * thread continues at the syscall instruction and makes it. */
    if (colo_log_on()) colo_log_event(COLO_EV_UNBORROW, me, me->borrowing, g[REG_RAX], 0);
    unborrow(me, uc, (uint64_t)g[REG_RIP] - 2, unborrow_wait);
    return 1;
}

void colo_switch_stale_block(void)
{
    struct colo_scb *me = self_scb();
    if (!me || me->magic != COLO_SCB_MAGIC || !own(me)) return;
    me->idle_selector = SYSCALL_DISPATCH_FILTER_ALLOW;     /* a tracer that went away without undoing it */
    unblock(me);
}

/* ---- signals ------------------------------------------------------------------- */

static int is_fault(int sig, const siginfo_t *info)
{
    return (SIGBIT(sig) & FAULT_SIGNALS) && info->si_code > 0;
}

/* The slot of the process running this handler: its SCB's, else the one
 * the handler's stack is in. */
static struct colo_slot *current_slot(struct colo_scb *me)
{
    uint64_t a = me && me->magic == COLO_SCB_MAGIC ? me->slot : (uint64_t)__builtin_frame_address(0);
    if (a < COLO_SLOT_REGION_BASE || a >= COLO_SLOT_REGION_END) return 0;
    struct colo_slot *s = (struct colo_slot *)(COLO_SLOT_REGION_BASE +
        (((a - COLO_SLOT_REGION_BASE) >> COLO_SLOT_SHIFT) << COLO_SLOT_SHIFT));
    return s->magic == COLO_SLOT_MAGIC ? s : 0;
}

/* Make the dispatcher return through the runtime's restorer (the guest's,
 * in its slot, would be blocked by Syscall User Dispatch while the thread
 * borrows a context).  The dispatcher keeps a frame pointer (guestSafeC). */
#define RETURN_VIA_RUNTIME() (((void **)__builtin_frame_address(0))[1] = (void *)colo_sigreturn)

void colo_signal_entry(int sig, siginfo_t *info, void *uctx)
{
    ucontext_t *uc = uctx;
    greg_t *g = uc->uc_mcontext.gregs;
    if (is_fault(sig, info) && (uint64_t)g[REG_RIP] >= (uint64_t)colo_copy_begin &&
        (uint64_t)g[REG_RIP] < (uint64_t)colo_copy_end) {
        g[REG_R9] = (greg_t)info->si_addr;
        g[REG_RIP] = (greg_t)colo_copy_fault;
        RETURN_VIA_RUNTIME();
        return;
    }
    struct colo_scb *me = self_scb();
    if (me && me->magic == COLO_SCB_MAGIC && __atomic_load_n(&me->borrowing, __ATOMIC_ACQUIRE) && own(me)) {
        if (is_fault(sig, info)) {
            /* Callee code faulted: its own thread repeats the instruction
             * (after an int3, the int3 itself) and dies of it or handles
             * it; the caller's call fails with ENOLINK. */
            uint64_t rip = (uint64_t)g[REG_RIP];
            if (sig == SIGTRAP && info->si_code == SI_KERNEL /* int3 */) rip -= 1;
            if (colo_log_on()) colo_log_event(COLO_EV_FAULT, me, me->borrowing, sig, (uint64_t)info->si_addr);
            unborrow(me, uc, rip, unborrow_fault);
        }
        colo_memcpy(me->pending_info[sig - 1], info, sizeof me->pending_info[0]);
        __atomic_or_fetch(&me->pending, SIGBIT(sig), __ATOMIC_RELEASE);
        RETURN_VIA_RUNTIME();
        return;
    }
    void (*observe)(int, const siginfo_t *) = colo_switch_signal_observer;
    if (observe && colo_trace_on()) observe(sig, info);
    struct colo_slot *s = current_slot(me);
    struct colo_sigaction_rec *a = s ? &s->guest_actions[sig - 1] : 0;
    uint64_t h = a ? a->handler : (uint64_t)SIG_DFL;
    if (h == (uint64_t)SIG_DFL || (h == (uint64_t)SIG_IGN && is_fault(sig, info))) {
        struct kernel_sigaction dfl;
        colo_memset(&dfl, 0, sizeof dfl);
        sys4(SYS_rt_sigaction, sig, &dfl, 0, 8);
        if (is_fault(sig, info)) return;      /* the instruction faults again, by default */
        ((uint64_t *)&uc->uc_sigmask)[0] &= ~SIGBIT(sig);
        sys4(SYS_rt_tgsigqueueinfo, sys0(SYS_getpid), sys0(SYS_gettid), sig, info);
        return;
    }
    if (h == (uint64_t)SIG_IGN) return;
    if (a->flags & SA_RESETHAND) a->handler = (uint64_t)SIG_DFL;
    if (a->flags & SA_SIGINFO)
        ((void (*)(int, siginfo_t *, void *))h)(sig, info, uctx);
    else
        ((void (*)(int))h)(sig);
}

void colo_dispatch_through(struct kernel_sigaction *k)
{
    k->handler = (uint64_t)colo_signal_entry;
    k->flags |= SA_SIGINFO;
    if (!(k->flags & COLO_SA_RESTORER)) {
        k->flags |= COLO_SA_RESTORER;
        k->restorer = (uint64_t)colo_sigreturn;
    }
    k->mask &= ~SIGBIT(SIGSYS);
}

/* Route the synchronous fault signals of slot `s`'s process through the
 * dispatcher, keeping what the guest had installed as its disposition. */
void colo_switch_dispatch_faults(struct colo_slot *s)
{
    if (__atomic_exchange_n(&s->switcher_signals, 1, __ATOMIC_ACQ_REL)) return;
    for (int sig = 1; sig <= 64; sig++) {
        if (!(SIGBIT(sig) & FAULT_SIGNALS)) continue;
        struct kernel_sigaction old, k;
        if (sys4(SYS_rt_sigaction, sig, 0, &old, 8) < 0 || colo_is_dispatcher(old.handler)) continue;
        colo_memcpy(&s->guest_actions[sig - 1], &old, sizeof old);
        k = old;
        colo_dispatch_through(&k);
        sys4(SYS_rt_sigaction, sig, &k, 0, 8);
    }
}

/* ---- attaching threads ---------------------------------------------------------- */

/* The calling thread starts using the switcher with the SCB that capability
 * `data` names (after cosetup): GS base = SCB; a caller (`calls`) gets
 * Syscall User Dispatch with the runtime's text exempt; the process's fault
 * signals go through the dispatcher.  0 or -errno. */
long colo_switch_attach(uint64_t data, long calls)
{
    struct colo_scb *me = scb_of(data, COLO_CAP_SCB, 0);
    if (!me || me->magic != COLO_SCB_MAGIC || me->tid != sys0(SYS_gettid)) return -EINVAL;
    struct colo_slot *s = (struct colo_slot *)me->slot;
    if (s->owner_pid != me->pid) return -EINVAL;
    colo_switch_dispatch_faults(s);
    uint64_t v = (uint64_t)me;
    __asm__ volatile("wrgsbase %0" :: "r"(v) : "memory");
    if (calls) {
        me->idle_selector = colo_trace_on() ? SYSCALL_DISPATCH_FILTER_BLOCK : SYSCALL_DISPATCH_FILTER_ALLOW;
        unblock(me);
        long r = sys5(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON,
                      (long)__executable_start, (long)(etext - __executable_start), (long)&me->selector);
        if (r < 0 && r != -EBUSY /* on already */) return r;
    }
    return 0;
}

void colo_switch_detach(void)
{
    sys5(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    uint64_t zero = 0;
    __asm__ volatile("wrgsbase %0" :: "r"(zero) : "memory");
}

/* The thread's SCB, for cogetpid2/cogettid (no system call). */
struct colo_scb *colo_switch_self(void)
{
    return self_scb();
}

int colo_switch_attached(void)
{
    struct colo_scb *me = self_scb();
    return me && me->magic == COLO_SCB_MAGIC && own(me);
}

/* ---- the runtime's side ---------------------------------------------------------- */

int colo_switcher_supported(void)
{
    int fd = (int)sys4(SYS_openat, AT_FDCWD, "/proc/self/auxv", O_RDONLY, 0);
    if (fd < 0) return 0;
    uint64_t aux[128];
    long n = sys3(SYS_read, fd, aux, sizeof aux);
    sys1(SYS_close, fd);
    for (long i = 0; i + 1 < n / 8; i += 2)
        if (aux[i] == AT_HWCAP2) return (aux[i + 1] & HWCAP2_FSGSBASE) != 0;
    return 0;
}

void colo_switcher_entries(uint64_t out[8])
{
    out[COLO_SWITCHER_ATTACH] = (uint64_t)colo_switch_attach;
    out[COLO_SWITCHER_COCALL] = (uint64_t)colo_switch_cocall;
    out[COLO_SWITCHER_COACCEPT] = (uint64_t)colo_switch_coaccept;
    out[COLO_SWITCHER_SELF] = (uint64_t)colo_switch_self;
    out[COLO_SWITCHER_COPY] = (uint64_t)colo_copy_user;
}

void colo_scb_init(struct colo_scb *scb, int32_t pid, int32_t tid, uint64_t cookie, uint64_t slot, char *wchan)
{
    colo_memset(scb, 0, offsetof(struct colo_scb, pending_info));
    scb->pid = pid;
    scb->tid = tid;
    scb->cookie = cookie;
    scb->slot = slot;
    scb->wchan = wchan;
    scb->stage_out = scb->stage_in = 0;     /* a block used before may hold a record */
    scb->stage_got = -1;
    __atomic_store_n(&scb->magic, COLO_SCB_MAGIC, __ATOMIC_RELEASE);
}

uint32_t colo_scb_state(const struct colo_scb *scb)
{
    return __atomic_load_n(&scb->state, __ATOMIC_ACQUIRE);
}

int colo_scb_take_stage(struct colo_scb *scb, uint64_t out, uint64_t outlen, uint64_t in, uint64_t inlen)
{
    int staged = 0;
    if (out != 0 && __atomic_load_n(&scb->stage_out, __ATOMIC_ACQUIRE) == out &&
        scb->stage_outlen == outlen && outlen <= COLO_STAGE_SIZE)
        staged |= COLO_STAGED_OUT;
    if (in != 0 && __atomic_load_n(&scb->stage_in, __ATOMIC_ACQUIRE) == in && scb->stage_inlen == inlen)
        staged |= COLO_STAGED_IN;
    __atomic_store_n(&scb->stage_out, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&scb->stage_in, 0, __ATOMIC_RELAXED);
    return staged;
}

void *colo_scb_stage(struct colo_scb *scb) { return scb->stage; }

void colo_scb_stage_got(struct colo_scb *scb, int64_t n)
{
    __atomic_store_n(&scb->stage_got, n, __ATOMIC_RELEASE);
}

void colo_scb_set_slow(struct colo_scb *scb)
{
    uint32_t st = __atomic_load_n(&scb->state, __ATOMIC_ACQUIRE);
    while (st != COLO_SCB_DEAD && st != COLO_SCB_SLOW &&
           !__atomic_compare_exchange_n(&scb->state, &st, COLO_SCB_SLOW, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        ;
}

int32_t colo_scb_caller_pid(const struct colo_scb *scb)
{
    /* The runtime asks, and `caller` is guest-writable: only an SCB block is followed. */
    uint64_t c = (uint64_t)__atomic_load_n(&scb->caller, __ATOMIC_ACQUIRE);
    return colo_is_scb_block(c) ? ((const struct colo_scb *)c)->pid : 0;
}

void colo_scb_retire(struct colo_scb *me)
{
    __atomic_store_n(&me->state, COLO_SCB_DEAD, __ATOMIC_SEQ_CST);
    wake_waiters(me, 1);
    /* A caller waiting for an unborrowed call of this thread: it received
     * nothing (later calls: ENOLINK). */
    struct colo_scb *c = __atomic_load_n(&me->caller, __ATOMIC_SEQ_CST);
    if (c && __atomic_load_n(&c->borrowing, __ATOMIC_SEQ_CST) != me) {
        me->caller = 0;
        answer_waiting(me, c, 0);
    }
    /* This thread died borrowing a callee's context: that context is lost;
     * the callee's own thread returns EINTR from the coaccept it was in. */
    struct colo_scb *b = __atomic_load_n(&me->borrowing, __ATOMIC_SEQ_CST);
    if (b && b->caller == me) {
        if (colo_log_on()) colo_log_event(COLO_EV_KILLED, me, b, 0, 0);
        b->caller = 0;
        __atomic_store_n(&b->park, COLO_PARK_ABANDON, __ATOMIC_SEQ_CST);
        futex_wake(&b->park);
    }
    __atomic_store_n(&me->magic, 0, __ATOMIC_RELEASE);
}
