/* space.c - a fork child of a colocated process becomes an address space of its own (CheriBSD:
 * every process is one, a fork child the only member of its copied vmspace).
 *
 * fork() copies the whole mm: the parent's slots, the shared structures (capability table, SCB
 * area, process table, trace ring; the child's own copies are private, colo_fork_child) and the
 * agent's image (the runtime's executable), which has no thread here.
 * Nothing serves the child until it needs it (a fork only marks its slot header
 * COLO_SPACE_FORKED).  Its first colocation call that needs an address space reaches the
 * runtime it was forked from, which finds no address space of the caller's and asks the
 * calling thread to become one with a queued SIGSYS (COLO_SPACE_SIGNAL; the same when a
 * process coexecve()s into the child).  The signal interrupts the call, and this handler
 *   1. asks that runtime for the mapping plan of a runtime of its own (the runtime's program
 *      and its interpreter, as new descriptors, and an initial stack) and for the relay it
 *      will serve (colo_space);
 *   2. leaves its parent's address space: unmaps the copied shared structures and every slot
 *      but its own;
 *   3. applies the plan (COLO_RUNTIME_AREA_BASE, outside the slot region, so the runtime's own
 *      calls are not trapped) and starts the runtime: a CLONE_VM process with no exit signal,
 *      which closes what it need not hold and enters the program as execve would.  The child's
 *      calls still reach the listener of the one filter chain it inherited (Linux allows one
 *      listener per chain), held by the runtime it was forked from, which relays them to the
 *      new runtime over that socket (CallChannel.swift);
 *   4. waits until the runtime has made the child the first member of the new address space.
 * SIGSYS is SA_RESTART: the interrupted call is made again, and now reaches the new runtime. */
#define _GNU_SOURCE
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <linux/errno.h>
#include <linux/sched.h>
#include <linux/futex.h>
#include <linux/wait.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <asm/prctl.h>
#include "colo_plan.h"
#include <sys/mman.h>
#include "colo_cap.h"
#include "colo_sys.h"
#include "colo_layout.h"
#include "colo_switch.h"
#include "guest_shim.h"
#include "clone.h"
#include "fork.h"
#include "space.h"


static void colo_space_forked(struct colo_slot *s)
{
    __atomic_store_n(&s->space_state, COLO_SPACE_FORKED, __ATOMIC_RELEASE);
}

#define PAGE 4096ULL
#define PAGE_UP(x) (((x) + PAGE - 1) & ~(PAGE - 1))

/* Replace [addr, addr+len) (page-aligned) with private anonymous memory holding the same bytes;
 * only pages that exist (mincore) are copied, the rest read as zeros as before. */
static void privatize(uint64_t addr, uint64_t len)
{
    long tmp = sys6(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (tmp < 0 && tmp > -4096) return;
    unsigned char vec[512];
    for (uint64_t off = 0; off < len; off += sizeof vec * PAGE) {
        uint64_t n = (len - off) / PAGE < sizeof vec ? (len - off) / PAGE : sizeof vec;
        long r = sys3(SYS_mincore, addr + off, n * PAGE, vec);
        for (uint64_t i = 0; i < n; i++)
            if (r < 0 || (vec[i] & 1))
                colo_memcpy((char *)tmp + off + i * PAGE, (const char *)(addr + off + i * PAGE), PAGE);
    }
    sys5(SYS_mremap, tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr);
}

/* Fresh private zeros over [from, to). */
static void clear(uint64_t from, uint64_t to)
{
    if (to > from)
        sys6(SYS_mmap, from, to - from, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

void colo_fork_child(struct colo_slot *s)
{
    /* The structures a fork copies as shared memory: the runtime (and the parent's address
     * space) must not see what the child writes into them, nor the child what they write. */
    privatize((uint64_t)s, COLO_SLOT_HEADER_SIZE);
    privatize(COLO_CAP_TABLE_ADDR, PAGE_UP(sizeof(struct colo_cap_table)
                                           + COLO_CAP_TABLE_CAPACITY * sizeof(struct colo_cap_entry)));
    /* The SCB area: the calling thread's own block is copied, every other one starts empty
     * (NEW: none of them is a thread of the child).  The event log's block stays. */
    uint64_t gs = 0;
    sys2(SYS_arch_prctl, ARCH_GET_GS, &gs);
    uint64_t own = gs - (gs - COLO_SCB_AREA_ADDR) % COLO_SCB_SIZE;
    if (gs >= COLO_SCB_AREA_ADDR && gs < COLO_SWITCH_LOG_ADDR) {
        privatize(own, COLO_SCB_SIZE);
        clear(COLO_SCB_AREA_ADDR, own);
        clear(own + COLO_SCB_SIZE, COLO_SWITCH_LOG_ADDR);
    } else {
        clear(COLO_SCB_AREA_ADDR, COLO_SWITCH_LOG_ADDR);
    }
    colo_space_forked(s);
}

void colo_fork_child_resumed(const struct colo_resume *r)
{
    struct colo_slot *s = colo_slot_of(r->iret[0]);
    if (s) colo_fork_child(s);
}

struct ts { long sec, nsec; };

/* The new runtime's first code (CLONE_VM child of the fork child, on its future stack):
 * what execve would leave, then the program. */
static void runtime_start(void *arg)
{
    struct colo_slot *s = arg;
    const struct colo_plan *plan = (const struct colo_plan *)((char *)s + COLO_JOIN_ARGS_OFFSET);
    long l = s->space_relay;
    /* Only the relay is the runtime's: the child's other descriptors are the child's, and
     * its standard output must not stay open because the runtime holds it (stderr stays, for
     * the runtime's own messages). */
    if (l > 3) sys3(SYS_close_range, 3, l - 1, 0);
    sys3(SYS_close_range, l + 1, ~0U, 0);
    long null = sys4(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR, 0);
    if (null >= 0) {
        sys3(SYS_dup3, null, 0, 0);
        sys3(SYS_dup3, null, 1, 0);
        if (null > 2 && null != l) sys1(SYS_close, null);
    }
    for (int sig = 1; sig <= 64; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        struct kernel_sigaction dfl;
        colo_memset(&dfl, 0, sizeof dfl);
        sys4(SYS_rt_sigaction, sig, &dfl, 0, 8);
    }
    uint64_t none = 0;
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &none, 0, 8);
    sys1(SYS_set_tid_address, 0);
    sys5(SYS_prctl, PR_SET_NAME, "colo", 0, 0, 0);
    sys2(SYS_arch_prctl, ARCH_SET_FS, 0);
    sys2(SYS_arch_prctl, ARCH_SET_GS, 0);
    colo_jump(plan->entry, plan->sp);
}

/* Has the runtime `pid` (a child with no exit signal) ended?  Reaps it if so. */
static int runtime_ended(long pid)
{
    uint8_t si[128];
    colo_memset(si, 0, sizeof si);
    long r = sys5(SYS_waitid, P_PID, pid, si, WEXITED | WNOHANG | __WALL, 0);
    return r < 0 || *(int32_t *)(si + 16) == pid;
}

static long start_runtime(struct colo_slot *s);

/* Become an address space unless this process is one already or becoming one (a request of
 * the runtime's nested in the child's own first call, or the other way round: the inner one
 * waits for the outer to finish). */
static long become_space(struct colo_slot *s)
{
    uint32_t expect = COLO_SPACE_FORKED;
    if (!__atomic_compare_exchange_n(&s->space_state, &expect, COLO_SPACE_STARTING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        struct ts step = { 0, 50 * 1000 * 1000 };
        uint32_t st;
        for (int i = 0; i < 600 && ((st = __atomic_load_n(&s->space_state, __ATOMIC_ACQUIRE)) == COLO_SPACE_STARTING ||
                                     st == COLO_SPACE_READY); i++)
            sys6(SYS_futex, (long)&s->space_state, FUTEX_WAIT, st, (long)&step, 0, 0);
        return __atomic_load_n(&s->space_state, __ATOMIC_ACQUIRE) == COLO_SPACE_MEMBER ? 0 : -EAGAIN;
    }
    long r = start_runtime(s);
    if (r < 0) __atomic_store_n(&s->space_state, COLO_SPACE_FORKED, __ATOMIC_RELEASE);
    sys6(SYS_futex, (long)&s->space_state, FUTEX_WAKE, 0x7fffffff, 0, 0, 0);
    return r;
}

void colo_space_requested(uint32_t index)
{
    if (index >= COLO_MAX_SLOTS) return;
    struct colo_slot *s = colo_slot_at((uint64_t)index);
    /* Only in a fork child whose slot header this is (mapped: it is the process's own). */
    if (__atomic_load_n(&s->space_state, __ATOMIC_ACQUIRE) != COLO_SPACE_FORKED) return;
    if (s->magic != COLO_SLOT_MAGIC || s->owner_pid == (int32_t)sys0(SYS_getpid)) return;
    become_space(s);
}

static long start_runtime(struct colo_slot *s)
{
    struct colo_plan *plan = (struct colo_plan *)((char *)s + COLO_JOIN_ARGS_OFFSET);
    long r;
    do r = sys6(COLO_SYS_space, (long)plan, COLO_JOIN_ARGS_SIZE, s->index, 0, 0, 0);
    while (r == -EINTR);
    if (r < 0) return r;
    long relay = r;
    if (plan->magic != COLO_PLAN_MAGIC || plan->size > COLO_JOIN_ARGS_SIZE) { sys1(SYS_close, relay); return -EINVAL; }

    /* Leave the parent's address space: the copies of its runtime's area, its shared
     * structures and its other slots go (a traced thread stops dispatching first: the
     * selector is in the table). */
    sys5(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
    uint64_t own = (uint64_t)s;
    sys2(SYS_munmap, COLO_RUNTIME_AREA_BASE, COLO_SLOT_REGION_BASE - COLO_RUNTIME_AREA_BASE);
    if (own > COLO_SLOT_REGION_BASE) sys2(SYS_munmap, COLO_SLOT_REGION_BASE, own - COLO_SLOT_REGION_BASE);
    if (own + COLO_SLOT_SIZE < COLO_SLOT_REGION_END)
        sys2(SYS_munmap, own + COLO_SLOT_SIZE, COLO_SLOT_REGION_END - own - COLO_SLOT_SIZE);

    uint32_t failed = 0;
    r = colo_plan_apply(plan, plan->size, &failed);
    for (uint32_t i = 0; i < plan->nops; i++)
        if (plan->ops[i].kind == COLO_PLAN_FILE) sys1(SYS_close, plan->ops[i].fd);   /* EBADF for a repeat */
    if (r < 0) { sys1(SYS_close, relay); return r; }

    long l = relay;
    if (l < 4) {                                 /* clear of the standard descriptors the runtime resets */
        long h = sys3(SYS_fcntl, l, F_DUPFD_CLOEXEC, 4);
        sys1(SYS_close, l);
        if (h < 0) return h;
        l = h;
    }
    s->space_relay = (int32_t)l;
    s->owner_pid = (int32_t)sys0(SYS_getpid);
    colo_recolo_reset(s);                        /* the parent's helper and hand-overs are not ours */
    long pid = colo_clone_start(CLONE_VM, (void *)((plan->sp - 65536) & ~15ULL), 0, runtime_start, s);
    sys1(SYS_close, l);
    if (pid < 0) return pid;
    /* The runtime makes us its first member, then says so (COLO_SPACE_READY). */
    struct ts step = { 0, 50 * 1000 * 1000 };
    for (int i = 0; i < 600; i++) {
        uint32_t st = __atomic_load_n(&s->space_state, __ATOMIC_ACQUIRE);
        if (st == COLO_SPACE_READY) {
            __atomic_store_n(&s->space_state, COLO_SPACE_MEMBER, __ATOMIC_RELEASE);
            return 0;
        }
        if (runtime_ended(pid)) break;
        sys6(SYS_futex, (long)&s->space_state, FUTEX_WAIT, st, (long)&step, 0, 0);
    }
    sys2(SYS_kill, pid, SIGKILL);
    return -EAGAIN;
}

void colo_space_ready(struct colo_slot *s)
{
    __atomic_store_n(&s->space_state, COLO_SPACE_READY, __ATOMIC_RELEASE);
    sys6(SYS_futex, (long)&s->space_state, FUTEX_WAKE, 1, 0, 0, 0);
}
