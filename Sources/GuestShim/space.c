/* space.c - a fork child of a colocated process becomes an address space of its own (CheriBSD:
 * every process is one, a fork child the only member of its copied vmspace).
 *
 * fork() copies the whole mm: the parent's slots and the shared structures (capability table,
 * SCB area, process table, trace ring; the child's copies are made private, colo_fork_child).
 * Nothing serves the child until it needs it (a fork only marks its slot header
 * COLO_SPACE_FORKED).  Its first colocation call that needs an address space reaches the
 * runtime that serves its parent, which asks the calling thread to become one with a queued
 * SIGSYS (COLO_SPACE_SIGNAL; the same when a process coexecve()s into the child).  The signal
 * interrupts the call, and this handler
 *   1. asks for an address space (COLO_SYS_space): the runtime that holds the filter chain's one
 *      listener starts a runtime for it, a process of its own outside every address space, which
 *      gets the child's calls relayed over a socket (CallChannel.swift) and answers this one:
 *      where its shared structures are (struct colo_space_plan: files to map shared at their
 *      fixed addresses) and the socket of the child's agent;
 *   2. leaves its parent's address space: maps the new structures over the copies, keeping what
 *      is its own (its slot header, its thread's SCB), and unmaps every slot
 *      but its own;
 *   3. starts the address space's agent (agent.c), a CLONE_VM process that carries out the new
 *      runtime's requests in this mm, as the agent of `colo COMMAND`'s address space does;
 *   4. waits until the runtime has made the child the first member of its address space.
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
#include <sys/mman.h>
#include "colo_cap.h"
#include "colo_agent.h"
#include "colo_space.h"
#include "colo_trace.h"
#include "switcher.h"
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

/* Copy the pages of [from, from+len) (page-aligned) that exist (mincore; all of them if it
 * cannot tell) to `to`: the others read as zeros there, as they do here. */
static void copy_resident(char *to, uint64_t from, uint64_t len)
{
    unsigned char vec[512];
    for (uint64_t off = 0; off < len; off += sizeof vec * PAGE) {
        uint64_t n = (len - off) / PAGE < sizeof vec ? (len - off) / PAGE : sizeof vec;
        long r = sys3(SYS_mincore, from + off, n * PAGE, vec);
        for (uint64_t i = 0; i < n; i++)
            if (r < 0 || (vec[i] & 1))
                colo_memcpy(to + off + i * PAGE, (const char *)(from + off + i * PAGE), PAGE);
    }
}

/* Private anonymous memory holding the bytes of [addr, addr+len) (page-aligned), or 0. */
static uint64_t snapshot(uint64_t addr, uint64_t len)
{
    long tmp = sys6(SYS_mmap, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (tmp < 0 && tmp > -4096) return 0;
    copy_resident((char *)tmp, addr, len);
    return (uint64_t)tmp;
}

/* Replace [addr, addr+len) with `copy` (a snapshot of it), or with one made now. */
static void privatize(uint64_t addr, uint64_t len, uint64_t copy)
{
    if (!copy) copy = snapshot(addr, len);
    if (copy) sys5(SYS_mremap, copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, addr);
}

/* Fresh private zeros over [from, to). */
static void clear(uint64_t from, uint64_t to)
{
    if (to > from)
        sys6(SYS_mmap, from, to - from, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

#define CAPS_WHOLE PAGE_UP(sizeof(struct colo_cap_table) + COLO_CAP_TABLE_CAPACITY * sizeof(struct colo_cap_entry))

/* The capability table's part in use: its entries up to the highest ever minted, whole pages. */
static uint64_t caps_in_use(void)
{
    const struct colo_cap_table *caps = (const struct colo_cap_table *)COLO_CAP_TABLE_ADDR;
    uint64_t used = caps->used < COLO_CAP_TABLE_CAPACITY ? caps->used : COLO_CAP_TABLE_CAPACITY;
    return PAGE_UP(sizeof(struct colo_cap_table) + used * sizeof(struct colo_cap_entry));
}

/* The calling thread's SCB block (its GS base's), or 0. */
static uint64_t own_scb_block(void)
{
    uint64_t gs = 0;
    sys2(SYS_arch_prctl, ARCH_GET_GS, &gs);
    if (gs < COLO_SCB_AREA_ADDR || gs >= COLO_SWITCH_LOG_ADDR) return 0;
    return gs - (gs - COLO_SCB_AREA_ADDR) % COLO_SCB_SIZE;
}

void colo_fork_prepare(struct colo_slot *s, struct colo_fork_copies *c)
{
    /* Only what is in use is copied (mincore looks a shared page up in the file's cache, and
     * a fork pays for each): the header's part the process and its runtime use (the rest,
     * start-up stack and vfork areas, is nobody's in the child), and the capability table's
     * entries up to the highest ever minted. */
    c->header = snapshot((uint64_t)s, COLO_SLOT_HEADER_RUNTIME_PART);
    c->caps_len = caps_in_use();
    c->caps = snapshot(COLO_CAP_TABLE_ADDR, c->caps_len);
    c->scb_block = own_scb_block();
    c->scb = c->scb_block ? snapshot(c->scb_block, COLO_SCB_SIZE) : 0;
}

void colo_fork_release(const struct colo_fork_copies *c)
{
    if (c->header) sys2(SYS_munmap, c->header, COLO_SLOT_HEADER_RUNTIME_PART);
    if (c->caps) sys2(SYS_munmap, c->caps, c->caps_len);
    if (c->scb) sys2(SYS_munmap, c->scb, COLO_SCB_SIZE);
}

void colo_fork_child(struct colo_slot *s, const struct colo_fork_copies *c)
{
    /* The structures a fork copies as shared memory: the runtime (and the parent's address
     * space) must not see what the child writes into them, nor the child what they write. */
    uint64_t header = (uint64_t)s;
    privatize(header, COLO_SLOT_HEADER_RUNTIME_PART, c->header);
    clear(header + COLO_SLOT_HEADER_RUNTIME_PART, header + COLO_SLOT_HEADER_SIZE);
    uint64_t copied = c->caps ? c->caps_len : caps_in_use();
    privatize(COLO_CAP_TABLE_ADDR, copied, c->caps);
    clear(COLO_CAP_TABLE_ADDR + copied, COLO_CAP_TABLE_ADDR + CAPS_WHOLE);
    /* The SCB area: the calling thread's own block is copied, every other one starts empty
     * (NEW: none of them is a thread of the child).  The event log's block stays. */
    uint64_t own = own_scb_block();
    if (own) {
        privatize(own, COLO_SCB_SIZE, own == c->scb_block ? c->scb : 0);
        clear(COLO_SCB_AREA_ADDR, own);
        clear(own + COLO_SCB_SIZE, COLO_SWITCH_LOG_ADDR);
    } else {
        clear(COLO_SCB_AREA_ADDR, COLO_SWITCH_LOG_ADDR);
    }
    colo_space_forked(s);
}

void colo_fork_child_resumed(const struct colo_resume *r)
{
    const struct colo_fork_start *f = (const struct colo_fork_start *)r;
    struct colo_slot *s = colo_slot_of(r->iret[0]);
    if (s) colo_fork_child(s, &f->copies);
}

struct ts { long sec, nsec; };

static long start_space(struct colo_slot *s);

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
    long r = start_space(s);
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

/* Map `m` shared, its kept bytes first copied into the file (resident pages only). */
static long map_shared(const struct colo_space_map *m)
{
    if (m->keep_len) {
        long tmp = sys6(SYS_mmap, 0, m->len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, m->offset);
        if (tmp < 0 && tmp > -4096) return tmp;
        copy_resident((char *)tmp + m->keep_from, m->addr + m->keep_from, m->keep_len);
        sys2(SYS_munmap, tmp, m->len);
    }
    long r = sys6(SYS_mmap, m->addr, m->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, m->fd, m->offset);
    return r < 0 && r > -4096 ? r : 0;
}

static int fits_layout(const struct colo_space_map *m, uint64_t own)
{
    /* The shared structures, below the slot region, or this process's own slot header. */
    if (m->len == 0 || m->len > COLO_SLOT_REGION_BASE || m->keep_from > m->len || m->keep_len > m->len - m->keep_from) return 0;
    if (m->addr == own) return m->len == COLO_SLOT_HEADER_SIZE;
    return m->addr >= COLO_RUNTIME_AREA_BASE && m->addr <= COLO_SLOT_REGION_BASE - m->len;
}

static long start_space(struct colo_slot *s)
{
    uint64_t own = (uint64_t)s;
    /* The calling thread's SCB block, whose state carries over. */
    uint64_t gs = 0, scb = 0;
    sys2(SYS_arch_prctl, ARCH_GET_GS, &gs);
    if (gs >= COLO_SCB_AREA_ADDR && gs < COLO_SWITCH_LOG_ADDR) scb = gs - (gs - COLO_SCB_AREA_ADDR) % COLO_SCB_SIZE;
    struct colo_space_plan *answer = (struct colo_space_plan *)((char *)s + COLO_JOIN_ARGS_OFFSET);
    long r;
    do r = sys6(COLO_SYS_space, (long)answer, sizeof *answer, s->index, scb, 0, 0);
    while (r == -EINTR);
    if (r < 0) return r;
    struct colo_space_plan plan;
    colo_memcpy(&plan, answer, sizeof plan);     /* the header it lies in is replaced */
    long agent = plan.agent;
    int ok = plan.magic == COLO_SPACE_PLAN_MAGIC && plan.nmaps <= COLO_SPACE_MAX_MAPS;
    for (uint32_t i = 0; ok && i < plan.nmaps; i++) ok = fits_layout(&plan.maps[i], own);
    if (!ok) r = -EPROTO;

    /* Leave the parent's address space (a traced thread stops dispatching first: the selector
     * is in the table): the new structures replace the copies, what is this process's own
     * carried over; the parent's other slots go. */
    if (r == 0) {
        sys5(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
        for (uint32_t i = 0; r == 0 && i < plan.nmaps; i++) r = map_shared(&plan.maps[i]);
    }
    for (uint32_t i = 0; i < plan.nmaps && i < COLO_SPACE_MAX_MAPS; i++) sys1(SYS_close, plan.maps[i].fd);
    if (r < 0) { sys1(SYS_close, agent); return r; }
    if (own > COLO_SLOT_REGION_BASE) sys2(SYS_munmap, COLO_SLOT_REGION_BASE, own - COLO_SLOT_REGION_BASE);
    if (own + COLO_SLOT_SIZE < COLO_SLOT_REGION_END)
        sys2(SYS_munmap, own + COLO_SLOT_SIZE, COLO_SLOT_REGION_END - own - COLO_SLOT_SIZE);
    s->owner_pid = (int32_t)sys0(SYS_getpid);
    colo_recolo_reset(s);                        /* the parent's helper and hand-overs are not ours */
    /* What the table tells the address space's processes about the code in its mm (the
     * switcher's entry points, the text traced threads run exempt): this mm's image, which
     * the new runtime, a process of its own, cannot name. */
    struct colo_table_header *table = (struct colo_table_header *)COLO_TABLE_ADDR;
    if (colo_switcher_supported()) colo_switcher_entries(table->switcher);
    colo_trace_publish(table);

    long pid = colo_agent_start_in(agent);
    sys1(SYS_close, agent);
    if (pid < 0) return pid;
    /* The runtime makes us its first member, then says so (COLO_SPACE_READY). */
    struct ts step = { 0, 50 * 1000 * 1000 };
    for (int i = 0; i < 600; i++) {
        uint32_t st = __atomic_load_n(&s->space_state, __ATOMIC_ACQUIRE);
        if (st == COLO_SPACE_READY) {
            __atomic_store_n(&s->space_state, COLO_SPACE_MEMBER, __ATOMIC_RELEASE);
            return 0;
        }
        if (sys2(SYS_kill, pid, 0) < 0) break;   /* the agent ended: its runtime is gone */
        sys6(SYS_futex, (long)&s->space_state, FUTEX_WAIT, st, (long)&step, 0, 0);
    }
    sys2(SYS_kill, pid, SIGKILL);
    return -EAGAIN;
}

void colo_space_ready(struct colo_slot *s)
{
    /* A shared futex: the runtime's view of the header is another mapping of the same page. */
    __atomic_store_n(&s->space_state, COLO_SPACE_READY, __ATOMIC_RELEASE);
    sys6(SYS_futex, (long)&s->space_state, FUTEX_WAKE, 1, 0, 0, 0);
}
