/* trace.c - in-process system-call tracing for `colo trace`.
 *
 * While an address space is traced (header.trace_selector is 1), its guest
 * threads run with Syscall User Dispatch and the runtime's text exempt, so
 * every system call of guest code raises SIGSYS instead of entering the
 * kernel.  The SIGSYS handler (sigsys.c) passes it here: the call is made
 * from the runtime's text the way the seccomp filter would have let it
 * happen from the guest's (the filter program itself is run, so the calls it
 * traps go to the same emulation, and the colocation calls still reach the
 * runtime as user notifications), and a record of it goes to the trace ring
 * (colo_abi.h), which the tracer reads from its own mapping of the ring's
 * file.  No ptrace stop is involved: a traced call costs a signal delivery
 * and a sigreturn.
 *
 * Calls that cannot be made from inside the handler are made elsewhere:
 * the guest's rt_sigreturn from the runtime's restorer, a new thread's clone
 * with a child that turns dispatch on for itself (it starts without) before
 * it continues the guest's context.  Every thread or process the runtime
 * starts turns it on too (colo_trace_enable_here).
 *
 * Runs on guest threads: raw system calls only, no libc, no TLS. */
#define _GNU_SOURCE
#include <stddef.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <linux/audit.h>
#include <linux/errno.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include "include/colo_trace.h"
#include <linux/sched.h>
#include "asm_constants.h"
#include "colo_sys.h"
#include "colo_switch.h"
#include "guest_shim.h"
#include "colo_trace.h"
#include "clone.h"
#include "filter.h"
#include "sigsys.h"
#include "trace.h"

extern long colo_copy_user(void *dst, const void *src, uint64_t n, uint64_t *fault);
extern char __executable_start[], etext[];

_Static_assert(sizeof(struct colo_trace_record) == COLO_TRACE_RECORD_SIZE, "a record has the ring's record size");
_Static_assert(sizeof(struct colo_trace_ring) <= 4096, "the ring header fits its page");
_Static_assert(offsetof(struct colo_table_header, trace_selector) == COLO_TRACE_SELECTOR_ADDR - COLO_TABLE_ADDR,
               "COLO_TRACE_SELECTOR_ADDR");
_Static_assert((COLO_TRACE_RECORDS & (COLO_TRACE_RECORDS - 1)) == 0, "a power of two");
/* What clone.S writes as numbers (asm_constants.h). */
_Static_assert(ASM_TRACE_SELECTOR_ADDR == COLO_TRACE_SELECTOR_ADDR, "clone.S's trace selector");
_Static_assert(ASM_PR_SET_SYSCALL_USER_DISPATCH == PR_SET_SYSCALL_USER_DISPATCH, "clone.S's prctl");
_Static_assert(ASM_PR_SYS_DISPATCH_ON == PR_SYS_DISPATCH_ON, "clone.S's prctl argument");
_Static_assert(ASM_CLONE_VM == CLONE_VM, "clone.S's CLONE_VM");


static struct colo_table_header *const header = (struct colo_table_header *)COLO_TABLE_ADDR;
static struct colo_trace_ring *const ring = (struct colo_trace_ring *)COLO_TRACE_RING_ADDR;
static struct colo_trace_record *const records = (struct colo_trace_record *)(COLO_TRACE_RING_ADDR + 4096);


void colo_trace_enable_here(void)
{
    if (colo_trace_on())
        sys5(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, (long)__executable_start,
             (long)(etext - __executable_start), COLO_TRACE_SELECTOR_ADDR);
}

/* ---- argument tables (also the tracer's, through colo_trace.h) ---------------------- */

/* The first argument of colocation call `nr` of the given kind (colo_syscalls.def), or -1. */
static int colo_arg_of_kind(int nr, int kind)
{
    const struct colo_syscall_desc *d = colo_syscall_of(nr);
    for (int i = 0; d && i < d->nargs; i++)
        if (d->kinds[i] == kind) return i;
    return -1;
}

int colo_trace_path_arg(int nr)
{
    if (nr >= 1000 && nr <= 1999) return colo_arg_of_kind(nr, COLO_ARG_STR);
    switch (nr) {
    case SYS_open: case SYS_stat: case SYS_lstat: case SYS_access: case SYS_execve: case SYS_truncate:
    case SYS_chdir: case SYS_rename: case SYS_mkdir: case SYS_rmdir: case SYS_creat: case SYS_link:
    case SYS_unlink: case SYS_symlink: case SYS_readlink: case SYS_chmod: case SYS_chown:
    case SYS_lchown: case SYS_mknod: case SYS_statfs: case SYS_chroot:
        return 0;
    case SYS_openat: case SYS_openat2: case SYS_execveat: case SYS_newfstatat: case SYS_statx:
    case SYS_faccessat: case SYS_faccessat2: case SYS_readlinkat: case SYS_mkdirat: case SYS_unlinkat:
        return 1;
    default:
        return -1;
    }
}

int colo_trace_argv_arg(int nr)
{
    if (nr >= 1000 && nr <= 1999) return colo_arg_of_kind(nr, COLO_ARG_ARGV);
    switch (nr) {
    case SYS_execve: return 1;
    case SYS_execveat: return 2;
    default: return -1;
    }
}

/* ---- the ring ---------------------------------------------------------------------------- */

/* Does process `pid` still run (not gone, not a zombie)? */
static int running(int32_t pid)
{
    if (pid <= 0 || sys2(SYS_kill, pid, 0) == -ESRCH) return 0;
    char path[32] = "/proc/", digits[12], buf[256];
    int n = 0, k = 6;
    for (int32_t v = pid; v; v /= 10) digits[n++] = (char)('0' + v % 10);
    while (n) path[k++] = digits[--n];
    colo_memcpy(path + k, "/stat", 6);
    long fd = sys4(SYS_openat, AT_FDCWD, path, O_RDONLY, 0);
    if (fd < 0) return 0;
    long got = sys3(SYS_read, fd, buf, sizeof buf - 1);
    sys1(SYS_close, fd);
    for (long i = got - 2; i > 0; i--)     /* "pid (comm) S ...": the state follows the last ')' */
        if (buf[i] == ')') return buf[i + 2] != 'Z' && buf[i + 2] != 'X';
    return 1;
}

/* Wait until record n may be written: the reader has consumed the one it
 * replaces.  If the reader has gone, tracing ends. */
static void wait_for_room(uint64_t n)
{
    for (;;) {
        uint64_t tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
        if (n - tail < COLO_TRACE_RECORDS) return;
        int32_t reader = __atomic_load_n(&ring->reader_pid, __ATOMIC_RELAXED);
        if (!running(reader)) {
            __atomic_store_n(&header->trace_selector, SYSCALL_DISPATCH_FILTER_ALLOW, __ATOMIC_RELAXED);
            return;
        }
        __atomic_add_fetch(&ring->waiters, 1, __ATOMIC_SEQ_CST);
        struct { long sec, nsec; } ten_ms = { 0, 10000000 };
        if (__atomic_load_n(&ring->tail, __ATOMIC_SEQ_CST) == tail)
            sys6(SYS_futex, (long)&ring->tail, FUTEX_WAIT, (uint32_t)tail, (long)&ten_ms, 0, 0);
        __atomic_sub_fetch(&ring->waiters, 1, __ATOMIC_SEQ_CST);
    }
}

/* Append `r` (its used part) to the ring. */
static void append(struct colo_trace_record *r)
{
    uint64_t n = __atomic_fetch_add(&ring->head, 1, __ATOMIC_RELAXED);
    wait_for_room(n);
    struct colo_trace_record *e = &records[n & (COLO_TRACE_RECORDS - 1)];
    __atomic_store_n(&e->seq, 2 * n + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    r->tsc = __builtin_ia32_rdtsc();
    colo_memcpy((char *)e + 8, (const char *)r + 8, offsetof(struct colo_trace_record, data) - 8 + r->data_len);
    __atomic_store_n(&e->seq, 2 * n + 2, __ATOMIC_RELEASE);
}

static void begin(struct colo_trace_record *r, int kind, int nr)
{
    r->start = __builtin_ia32_rdtsc();
    r->pid = (int32_t)sys0(SYS_getpid);
    r->tid = (int32_t)sys0(SYS_gettid);
    r->kind = (uint16_t)kind;
    r->nr = nr;
    r->data_len = r->strings = r->argv_count = r->truncated = r->pad = 0;
    r->result = 0;
    for (int i = 0; i < 6; i++) r->args[i] = 0;
}

/* Copy the NUL-terminated string at guest address `src` into the record's
 * data.  0, or -1 if it does not fit or cannot be read. */
static int add_string(struct colo_trace_record *r, uint64_t src)
{
    char *dst = r->data + r->data_len;
    uint64_t room = sizeof r->data - r->data_len, n = 0;
    while (n < room) {
        uint64_t chunk = 64 - ((src + n) & 63);     /* never across a page */
        if (chunk > room - n) chunk = room - n;
        if (colo_copy_user(dst + n, (const void *)(src + n), chunk, 0) < 0) break;
        for (uint64_t i = 0; i < chunk; i++) {
            if (dst[n + i] == 0) {
                r->data_len = (uint16_t)(r->data_len + n + i + 1);
                return 0;
            }
        }
        n += chunk;
    }
    r->truncated = 1;
    return -1;
}

/* The strings a call's arguments point to, as they are before the call. */
static void add_strings(struct colo_trace_record *r)
{
    int p = colo_trace_path_arg(r->nr), v = colo_trace_argv_arg(r->nr);
    if (p >= 0 && r->args[p] && add_string(r, r->args[p]) == 0) r->strings |= (uint16_t)(1u << p);
    if (v < 0 || !r->args[v]) return;
    for (uint64_t i = 0; i < 64; i++) {
        uint64_t s;
        if (colo_copy_user(&s, (const void *)(r->args[v] + 8 * i), 8, 0) < 0 || !s) return;
        if (add_string(r, s) < 0) return;
        r->argv_count++;
    }
    r->truncated = 1;
}

void colo_trace_result(long result)
{
    struct colo_trace_record r;
    begin(&r, COLO_TRACE_RESULT, 0);
    r.result = result;
    append(&r);
}

static void colo_trace_signal(int sig, const siginfo_t *info)
{
    struct colo_trace_record r;
    begin(&r, COLO_TRACE_SIGNAL, sig);
    r.args[0] = (uint64_t)(int64_t)info->si_code;
    r.args[1] = (uint64_t)info->si_addr;
    r.args[2] = (uint64_t)(int64_t)info->si_pid;
    append(&r);
}

void colo_trace_wait_status(int32_t pid, int32_t status)
{
    if (!colo_trace_on()) return;
    struct colo_trace_record r;
    begin(&r, COLO_TRACE_WAIT, 0);
    r.pid = r.tid = pid;
    r.result = status;
    append(&r);
}

/* ---- deciding and making a call ------------------------------------------------------------ */

/* The filter program (filter.c keeps the one the runtime built). */


/* A thread (or CLONE_VM process) with a stack of its own: its child starts
 * on that stack below a copy of the trapped context, turns tracing on for
 * itself and continues the context with rax = 0 (clone.S). */
static long clone_thread(ucontext_t *uc, const uint64_t *a)
{
    /* Without a stack of its own the child would return into this handler on
     * the parent's stack while the parent still runs on it. */
    if (!a[1]) return -EINVAL;
    struct colo_resume *child = (struct colo_resume *)((a[1] - sizeof *child) & ~63ULL);
    colo_save_context(child, uc, 0, a[1]);
    return colo_clone_thread(a[0], child, a[2], a[3], a[4], child);
}

/* Calls that end somewhere other than here: their record now, their result
 * later (exec in place: exec.c; vfork: when the child has exec'd or exited). */
static int ends_elsewhere(int nr, const uint64_t *a)
{
    return nr == SYS_execve || nr == SYS_execveat || nr == COLO_SYS_coexecve || nr == COLO_SYS_coexecvec ||
           nr == SYS_vfork || (nr == SYS_clone && (a[0] & CLONE_VFORK));
}

/* Calls that may wait for something else to happen: the tracer is told when
 * they begin, so that it can show a thread blocked in one. */
static int may_block(int nr)
{
    switch (nr) {
    case SYS_read: case SYS_write: case SYS_readv: case SYS_writev: case SYS_pread64: case SYS_pwrite64:
    case SYS_open: case SYS_openat: case SYS_connect: case SYS_accept: case SYS_accept4:
    case SYS_sendto: case SYS_recvfrom: case SYS_sendmsg: case SYS_recvmsg: case SYS_sendmmsg: case SYS_recvmmsg:
    case SYS_poll: case SYS_ppoll: case SYS_select: case SYS_pselect6:
    case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_epoll_pwait2:
    case SYS_futex: case SYS_nanosleep: case SYS_clock_nanosleep: case SYS_pause:
    case SYS_rt_sigsuspend: case SYS_rt_sigtimedwait: case SYS_wait4: case SYS_waitid:
    case SYS_flock: case SYS_fcntl: case SYS_msgrcv: case SYS_msgsnd: case SYS_semop: case SYS_semtimedop:
    case SYS_mq_timedreceive: case SYS_mq_timedsend: case SYS_io_getevents:
    case COLO_SYS_cocall_slow: case COLO_SYS_coaccept_slow: case COLO_SYS_copark:
        return 1;
    default:
        return 0;
    }
}

static int forks(int nr, const uint64_t *a)
{
    return nr == SYS_fork || (nr == SYS_clone && !(a[0] & (CLONE_VM | CLONE_VFORK)));
}

void colo_trace_syscall(struct colo_slot *s, siginfo_t *info, ucontext_t *uc)
{
    greg_t *g = uc->uc_mcontext.gregs;
    int nr = info->si_syscall;
    struct colo_trace_record r;
    begin(&r, COLO_TRACE_CALL, nr);
    const int regs[6] = { REG_RDI, REG_RSI, REG_RDX, REG_R10, REG_R8, REG_R9 };
    for (int i = 0; i < 6; i++) r.args[i] = (uint64_t)g[regs[i]];
    const uint64_t *a = r.args;
    /* The switcher's signal dispatcher makes the copies below fault-safe (and
     * shows faults): a traced process gets it, as a switcher user does. */
    if (s && !s->switcher_signals) colo_switch_dispatch_faults(s);
    add_strings(&r);

    if (nr == SYS_rt_sigreturn) {
        /* From a guest handler's restorer: the frame is at rsp.  Our own
         * sigreturn continues at the runtime's restorer with that rsp. */
        int64_t rax = 0;
        const ucontext_t *frame = (const ucontext_t *)g[REG_RSP];
        if (colo_copy_user(&rax, &frame->uc_mcontext.gregs[REG_RAX], 8, 0) < 0) rax = 0;
        r.result = rax;
        append(&r);
        g[REG_RIP] = (greg_t)colo_sigreturn;
        return;
    }
    struct seccomp_data d = { .nr = nr, .arch = AUDIT_ARCH_X86_64, .instruction_pointer = (uint64_t)info->si_call_addr };
    for (int i = 0; i < 6; i++) d.args[i] = a[i];
    uint32_t action = colo_filter_run(colo_filter_program, colo_filter_length, &d);
    /* The mask a call leaves must be in the context sigreturn restores. */
    if (nr == SYS_rt_sigprocmask && s) action = SECCOMP_RET_TRAP | COLO_TRAP_DATA;
    if (may_block(nr)) {
        r.kind = COLO_TRACE_BEGIN;
        append(&r);
        r.kind = COLO_TRACE_CALL;
    }
    long res;
    switch (action & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_ALLOW:
        if (nr == SYS_exit || nr == SYS_exit_group) {
            r.kind = COLO_TRACE_ENTRY;
            append(&r);
            res = sys6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
            break;
        }
        if (nr == SYS_clone && (a[0] & CLONE_VM)) res = clone_thread(uc, a);
        else res = sys6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        break;
    case SECCOMP_RET_TRAP:
        if (!s) { res = -ENOSYS; break; }
        if (ends_elsewhere(nr, a)) {
            r.kind = COLO_TRACE_ENTRY;
            append(&r);
            res = colo_serve_trap(s, uc, nr);
            g[REG_RAX] = res;
            colo_trace_result(res);
            return;
        }
        res = colo_serve_trap(s, uc, nr);
        if (forks(nr, a) && res == 0) {     /* the child: dispatch was not inherited */
            colo_trace_enable_here();
            g[REG_RAX] = 0;
            return;
        }
        break;
    case SECCOMP_RET_USER_NOTIF:     /* the colocation calls: the filter sends them on from here too */
        res = sys6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        break;
    case SECCOMP_RET_ERRNO:
        res = -(long)(action & SECCOMP_RET_DATA);
        break;
    default:
        res = -ENOSYS;
        break;
    }
    g[REG_RAX] = res;
    r.result = res;
    append(&r);
}

/* ---- for the runtime and the tracer ---------------------------------------------------------- */

void colo_trace_publish(struct colo_table_header *h)
{
    h->sud_exempt_start = (uint64_t)__executable_start;
    h->sud_exempt_len = (uint64_t)(etext - __executable_start);
}

uint64_t colo_scb_selector_offset(void) { return offsetof(struct colo_scb, selector); }
uint64_t colo_scb_idle_selector_offset(void) { return offsetof(struct colo_scb, idle_selector); }

/* The reader's side, in the tracer's own mapping of the ring. */

uint64_t colo_trace_head(const struct colo_trace_ring *r)
{
    return __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
}

int colo_trace_read(const struct colo_trace_ring *r, uint64_t n, struct colo_trace_record *out)
{
    const struct colo_trace_record *e =
        (const struct colo_trace_record *)((const char *)r + 4096) + (n & (COLO_TRACE_RECORDS - 1));
    if (__atomic_load_n(&e->seq, __ATOMIC_ACQUIRE) != 2 * n + 2) return 0;
    colo_memcpy(out, e, offsetof(struct colo_trace_record, data));
    uint16_t len = out->data_len <= sizeof out->data ? out->data_len : 0;
    out->data_len = len;
    colo_memcpy(out->data, e->data, len);
    return 1;
}

void colo_trace_consumed(struct colo_trace_ring *r, uint64_t n)
{
    __atomic_store_n(&r->tail, n, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&r->waiters, __ATOMIC_SEQ_CST))
        sys6(SYS_futex, (long)&r->tail, FUTEX_WAKE, INT_MAX, 0, 0, 0);
}

void colo_trace_set(struct colo_table_header *h, int on)
{
    __atomic_store_n(&h->trace_selector, on ? SYSCALL_DISPATCH_FILTER_BLOCK : SYSCALL_DISPATCH_FILTER_ALLOW, __ATOMIC_SEQ_CST);
}

void colo_trace_reader_ready(struct colo_trace_ring *r)
{
    __atomic_store_n(&r->reader_ready, 1, __ATOMIC_SEQ_CST);
    sys6(SYS_futex, (long)&r->reader_ready, FUTEX_WAKE, INT_MAX, 0, 0, 0);
}

int colo_trace_wait_for_reader(struct colo_trace_ring *r, int seconds)
{
    struct { long sec, nsec; } tenth = { 0, 100000000 };
    for (int i = 0; i < seconds * 10; i++) {
        if (__atomic_load_n(&r->reader_ready, __ATOMIC_ACQUIRE)) return 1;
        if (!running(r->reader_pid)) return 0;
        sys6(SYS_futex, (long)&r->reader_ready, FUTEX_WAIT, 0, (long)&tenth, 0, 0);
    }
    return __atomic_load_n(&r->reader_ready, __ATOMIC_ACQUIRE) != 0;
}

void colo_trace_install(void)
{
    colo_switch_signal_observer = colo_trace_signal;
}
