/* events.c - the switcher's event log: a lock-free ring that any thread of
 * the address space appends to (the layout and the protocol are in
 * colo_abi.h, next to struct colo_switch_event; readers: Runtime's
 * SwitcherLog.swift).  Runs on guest threads (and on the runtime's, for
 * colo_scb_retire): no libc, no TLS, no system call. */
#include <stddef.h>
#include "events.h"
#include "include/colo_switch_log.h"
#include "colo_cap.h"
#include "switcher.h"

extern long colo_copy_user(void *dst, const void *src, uint64_t n, uint64_t *fault);

_Static_assert(sizeof(struct colo_table_header) == 4096, "the table header is one page");
_Static_assert(offsetof(struct colo_table_header, switch_log_head) % 64 == 0, "the log head has a cache line of its own");
_Static_assert(sizeof(struct colo_switch_event) == 64, "an event is one cache line");
_Static_assert(COLO_SWITCH_LOG_EVENTS * sizeof(struct colo_switch_event) <= COLO_SCB_SIZE, "the ring fits in one SCB block");
_Static_assert(COLO_SWITCH_LOG_INDEX == COLO_CAP_TABLE_CAPACITY - 1, "the log has the last capability index's block");
_Static_assert(COLO_SWITCH_LOG_ADDR == COLO_SCB_AREA_ADDR + COLO_SWITCH_LOG_INDEX * COLO_SCB_SIZE, "the log's address");
_Static_assert((COLO_SWITCH_LOG_EVENTS & (COLO_SWITCH_LOG_EVENTS - 1)) == 0, "a power of two");

static inline uint64_t now(void)
{
    return __builtin_ia32_rdtsc();
}

/* Claim the next record; the caller fills it and completes it with done(). */
static struct colo_switch_event *claim(uint64_t *n)
{
    struct colo_table_header *h = (struct colo_table_header *)COLO_TABLE_ADDR;
    struct colo_switch_event *ring = (struct colo_switch_event *)COLO_SWITCH_LOG_ADDR;
    *n = __atomic_fetch_add(&h->switch_log_head, 1, __ATOMIC_RELAXED);
    struct colo_switch_event *e = &ring[*n & (COLO_SWITCH_LOG_EVENTS - 1)];
    __atomic_store_n(&e->seq, 2 * *n + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);     /* "being written" before any field */
    return e;
}

static void done(struct colo_switch_event *e, uint64_t n)
{
    __atomic_store_n(&e->seq, 2 * n + 2, __ATOMIC_RELEASE);
}

static void who(struct colo_switch_event *e, const struct colo_scb *caller, const struct colo_scb *callee)
{
    e->pid = caller ? caller->pid : 0;
    e->tid = caller ? caller->tid : 0;
    e->peer_pid = callee ? callee->pid : 0;
    e->peer_tid = callee ? callee->tid : 0;
}

__attribute__((noinline, cold))
void colo_log_call_begin(struct colo_scb *caller, uint64_t out, uint64_t outlen)
{
    int32_t op = -1;
    /* capv_t: a size_t length, then an int op (the caller's own buffer, read
     * fault-safely: a bad buffer fails the call, not the log). */
    if (outlen >= 12 && colo_copy_user(&op, (const void *)(out + 8), 4, 0) < 0)
        op = -1;
    caller->log_op = op;
    caller->log_start = now();
}

__attribute__((noinline, cold))
void colo_log_call_end(struct colo_scb *caller, const struct colo_scb *callee, long delivered, long r)
{
    uint64_t t = now(), n, start = caller->log_start;
    if (start == 0)
        return;
    caller->log_start = 0;
    struct colo_switch_event *e = claim(&n);
    e->tsc = t;
    e->arg = start;
    e->kind = COLO_EV_CALL;
    e->op = caller->log_op;
    who(e, caller, callee);
    e->result = r;
    e->out = delivered > 0 ? (uint32_t)delivered : 0;
    e->in = r > 0 ? (uint32_t)r : 0;
    done(e, n);
}

__attribute__((noinline, cold))
void colo_log_event(uint32_t kind, const struct colo_scb *caller, const struct colo_scb *callee, int64_t result, uint64_t arg)
{
    uint64_t t = now(), n;
    struct colo_switch_event *e = claim(&n);
    e->tsc = t;
    e->arg = arg;
    e->kind = kind;
    e->op = -1;
    who(e, caller, callee);
    e->result = result;
    e->out = 0;
    e->in = 0;
    done(e, n);
}

/* ---- for the runtime and the tools (colo_switch_log.h) ---- */

void colo_switch_log_adjust(struct colo_table_header *h, int32_t delta)
{
    __atomic_add_fetch(&h->switch_log, (uint32_t)delta, __ATOMIC_SEQ_CST);
}

void colo_switch_log_knob(struct colo_table_header *h, int on)
{
    if (on)
        __atomic_or_fetch(&h->switch_log, 1u, __ATOMIC_SEQ_CST);
    else
        __atomic_and_fetch(&h->switch_log, ~1u, __ATOMIC_SEQ_CST);
}

uint32_t colo_switch_log_flags(const struct colo_table_header *h)
{
    return __atomic_load_n(&h->switch_log, __ATOMIC_ACQUIRE);
}

uint64_t colo_switch_log_head(const struct colo_table_header *h)
{
    return __atomic_load_n(&h->switch_log_head, __ATOMIC_ACQUIRE);
}

uint64_t colo_rdtsc(void)
{
    return now();
}

uint64_t colo_scb_borrowing_offset(void)
{
    return offsetof(struct colo_scb, borrowing);
}
