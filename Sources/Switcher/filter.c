/* filter.c - the seccomp BPF program of an address space.
 *
 * The runtime installs it on itself once; every colocated process inherits it.
 * Calls made from outside the slot region (the runtime's own code, the vDSO,
 * a program that really execve()d out of colocation) are always allowed.  From
 * inside the region, only what the shared address space needs is trapped to
 * the SIGSYS handler, and the colocation system calls go to the runtime as
 * user notifications.  A caller's own slot is the one holding the calling
 * instruction, so one program serves every process and survives exec into
 * another slot.  Memory calls whose whole range lies inside the caller's own
 * slot run natively.  Raw BPF because libseccomp cannot express
 * instruction-pointer or slot arithmetic.  fork and wait4/waitid are trapped
 * for re-colocation (fork.c). */
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <signal.h>
#include <linux/sched.h>
#include "switcher.h"
#include "sys.h"

#define OFF_NR     offsetof(struct seccomp_data, nr)
#define OFF_ARCH   offsetof(struct seccomp_data, arch)
#define OFF_IP_HI  (offsetof(struct seccomp_data, instruction_pointer) + 4)
#define OFF_ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define OFF_ARG_HI(i) (OFF_ARG_LO(i) + 4)

/* Symbolic jump targets, resolved after emission. */
enum { L_ALLOW = 1000, L_TRAP, L_RANGE, L_MMAP, L_SIGMASK, L_ABOVE30, L_ABOVE130, L_CREDS, L_CREDS_HIGH, L_COLO, L_CLONE, L_OUTSIDE, L_NOTIF, L_ENOSYS, L_NONE };

struct builder {
    struct colo_sock_filter *f;
    uint32_t n;
        uint16_t lbl_t[COLO_FILTER_MAX], lbl_f[COLO_FILTER_MAX];   /* 0, or a label */
    int label_at[L_NONE - L_ALLOW];
};

static void emit(struct builder *b, uint16_t code, uint32_t k, int jt, int jf)
{
    uint32_t i = b->n++;
    b->f[i].code = code;
    b->f[i].k = k;
    b->f[i].jt = 0;
    b->f[i].jf = 0;
    b->lbl_t[i] = (uint16_t)(jt >= L_ALLOW ? jt : 0);
    b->lbl_f[i] = (uint16_t)(jf >= L_ALLOW ? jf : 0);
    if (jt < L_ALLOW) b->f[i].jt = (uint8_t)jt;
    if (jf < L_ALLOW) b->f[i].jf = (uint8_t)jf;
}
static void label(struct builder *b, int l) { b->label_at[l - L_ALLOW] = (int)b->n; }
static void ld(struct builder *b, uint32_t off) { emit(b, BPF_LD | BPF_W | BPF_ABS, off, 0, 0); }
static void jeq(struct builder *b, uint32_t k, int jt, int jf) { emit(b, BPF_JMP | BPF_JEQ | BPF_K, k, jt, jf); }
static void jge(struct builder *b, uint32_t k, int jt, int jf) { emit(b, BPF_JMP | BPF_JGE | BPF_K, k, jt, jf); }
static void jgt(struct builder *b, uint32_t k, int jt, int jf) { emit(b, BPF_JMP | BPF_JGT | BPF_K, k, jt, jf); }
static void jset(struct builder *b, uint32_t k, int jt, int jf) { emit(b, BPF_JMP | BPF_JSET | BPF_K, k, jt, jf); }
static void ret(struct builder *b, uint32_t k) { emit(b, BPF_RET | BPF_K, k, 0, 0); }
static void rsh(struct builder *b, uint32_t k) { emit(b, BPF_ALU | BPF_RSH | BPF_K, k, 0, 0); }
static void and(struct builder *b, uint32_t k) { emit(b, BPF_ALU | BPF_AND | BPF_K, k, 0, 0); }
static void tax(struct builder *b) { emit(b, BPF_MISC | BPF_TAX, 0, 0, 0); }
static void jeqx(struct builder *b, int jt, int jf) { emit(b, BPF_JMP | BPF_JEQ | BPF_X, 0, jt, jf); }

/* The program last built, which the in-process tracer runs (trace.c). */
struct colo_sock_filter colo_filter_program[COLO_FILTER_MAX];
uint32_t colo_filter_length;

int colo_build_filter(struct colo_sock_filter *out, uint32_t max)
{
    struct builder b;
    colo_memset(&b, 0, sizeof b);
    b.f = out;
    uint32_t slot_hi_shift = COLO_SLOT_SHIFT - 32;              /* high word >> this = slot */
    uint32_t slot_hi_mask = (uint32_t)(COLO_SLOT_SIZE >> 32) - 1;

    ld(&b, OFF_ARCH);
    jeq(&b, AUDIT_ARCH_X86_64, 0, L_ALLOW);
    ld(&b, OFF_IP_HI);
    jge(&b, (uint32_t)(COLO_SLOT_REGION_BASE >> 32), 0, L_OUTSIDE);
    jge(&b, (uint32_t)(COLO_SLOT_REGION_END >> 32), L_OUTSIDE, 0);
    /* The system-call number, through a small decision tree: most calls
     * (read, write, futex, getppid ...) reach ALLOW after a handful of tests. */
    ld(&b, OFF_NR);
    jgt(&b, 30, L_ABOVE30, 0);
    jge(&b, SYS_mmap, 0, L_ALLOW);                  /* 0..8: read, write, open ... */
    jeq(&b, SYS_mmap, L_MMAP, 0);
    jeq(&b, SYS_rt_sigprocmask, L_SIGMASK, 0);
    jeq(&b, SYS_brk, L_TRAP, 0);
    jeq(&b, SYS_rt_sigaction, L_TRAP, 0);
    jeq(&b, SYS_mremap, L_TRAP, 0);
    jeq(&b, SYS_shmat, L_TRAP, 0);
    jeq(&b, SYS_mprotect, L_RANGE, 0);
    jeq(&b, SYS_munmap, L_RANGE, 0);
    jeq(&b, SYS_msync, L_RANGE, 0);
    jeq(&b, SYS_madvise, L_RANGE, L_ALLOW);

    label(&b, L_ABOVE30);                           /* 31..130: process creation, exec, credentials */
    jgt(&b, 130, L_ABOVE130, 0);
    jge(&b, SYS_setuid, L_CREDS, 0);
    jeq(&b, SYS_clone, L_CLONE, 0);
    jeq(&b, SYS_fork, L_TRAP, 0);
    jeq(&b, SYS_vfork, L_TRAP, 0);
    jeq(&b, SYS_execve, L_TRAP, 0);
    jeq(&b, SYS_wait4, L_TRAP, L_ALLOW);
    label(&b, L_CREDS);
    jgt(&b, SYS_setregid, L_CREDS_HIGH, 0);
    jeq(&b, SYS_setuid, L_TRAP, 0);
    jeq(&b, SYS_setgid, L_TRAP, 0);
    jeq(&b, SYS_setreuid, L_TRAP, 0);
    jeq(&b, SYS_setregid, L_TRAP, L_ALLOW);
    label(&b, L_CREDS_HIGH);
    jeq(&b, SYS_setresuid, L_TRAP, 0);
    jeq(&b, SYS_setresgid, L_TRAP, 0);
    jeq(&b, SYS_setfsuid, L_TRAP, 0);
    jeq(&b, SYS_setfsgid, L_TRAP, 0);
    jeq(&b, SYS_capset, L_TRAP, 0);
    jeq(&b, SYS_rt_sigsuspend, L_TRAP, L_ALLOW);

    label(&b, L_ABOVE130);                          /* 131..: memory, exec, colocation calls */
    jge(&b, 1000, L_COLO, 0);
    jeq(&b, SYS_execveat, L_TRAP, 0);
    jeq(&b, SYS_waitid, L_TRAP, 0);                 /* wait4 too: a forked child's hand-over is invisible */
    /* ENOSYS, and libc falls back: clone3's flags are out of BPF's reach (clone
     * is used instead), and an rseq area registered by one program would
     * outlive it across exec in place (the kernel kills a thread whose rseq
     * area is gone). */
    jeq(&b, SYS_clone3, L_ENOSYS, 0);
    jeq(&b, SYS_rseq, L_ENOSYS, 0);
    jeq(&b, SYS_mlock, L_RANGE, 0);
    jeq(&b, SYS_munlock, L_RANGE, 0);
    jeq(&b, SYS_remap_file_pages, L_RANGE, 0);
    jeq(&b, SYS_mbind, L_RANGE, 0);
    jeq(&b, SYS_mlock2, L_RANGE, 0);
    jeq(&b, SYS_pkey_mprotect, L_RANGE, 0);
#ifdef SYS_mseal
    jeq(&b, SYS_mseal, L_RANGE, 0);
#endif
    ret(&b, SECCOMP_RET_ALLOW);
    label(&b, L_COLO);                              /* colocation system calls: to the runtime, */
    jeq(&b, COLO_SYS_coexecve, L_TRAP, 0);          /* but coexecve rewrites registers: the handler */
    jeq(&b, COLO_SYS_coexecvec, L_TRAP, 0);
    jge(&b, 2000, L_ALLOW, L_NOTIF);

    /* clone: CLONE_VFORK needs the handler (the parent waits in user space),
     * and so does a fork (no CLONE_VM: the re-colocation helper starts first);
     * threads and CLONE_VM processes run natively. */
    label(&b, L_CLONE);
    ld(&b, OFF_ARG_LO(0));
    jset(&b, CLONE_VFORK, L_TRAP, 0);
    jset(&b, CLONE_VM, L_ALLOW, L_TRAP);

    /* Outside the slot region only the colocation calls are not allowed: the
     * handler's own exec request, and a traced guest's calls, which the
     * handler makes for it (trace.c). */
    label(&b, L_OUTSIDE);
    ld(&b, OFF_NR);
    jge(&b, 1000, 0, L_ALLOW);
    jge(&b, 2000, L_ALLOW, L_NOTIF);
    label(&b, L_NOTIF);
    ret(&b, SECCOMP_RET_USER_NOTIF);
    label(&b, L_ENOSYS);
    ret(&b, SECCOMP_RET_ERRNO | 38);

    /* rt_sigprocmask: only calls that may block SIGSYS need the handler. */
    label(&b, L_SIGMASK);
    ld(&b, OFF_ARG_LO(0));
    jeq(&b, SIG_UNBLOCK, L_ALLOW, 0);
    ld(&b, OFF_ARG_LO(1));
    jeq(&b, 0, 0, L_TRAP);
    ld(&b, OFF_ARG_HI(1));
    jeq(&b, 0, L_ALLOW, L_TRAP);

    /* mmap: placement (no MAP_FIXED*) always goes to the handler. */
    label(&b, L_MMAP);
    ld(&b, OFF_ARG_LO(3));
    jset(&b, MAP_FIXED | MAP_FIXED_NOREPLACE, 0, L_TRAP);
    /* fall through into the range check */

    /* addr in the caller's slot (the slot of the calling instruction), below
     * the slot's last 4 GiB, and len < 4 GiB: the whole range is inside the
     * slot.  Anything else is decided by the handler. */
    label(&b, L_RANGE);
    ld(&b, OFF_IP_HI);
    rsh(&b, slot_hi_shift);
    tax(&b);
    ld(&b, OFF_ARG_HI(0));
    rsh(&b, slot_hi_shift);
    jeqx(&b, 0, L_TRAP);
    ld(&b, OFF_ARG_HI(0));
    and(&b, slot_hi_mask);
    jeq(&b, slot_hi_mask, L_TRAP, 0);
    ld(&b, OFF_ARG_HI(1));
    jeq(&b, 0, L_ALLOW, L_TRAP);

    label(&b, L_ALLOW);
    ret(&b, SECCOMP_RET_ALLOW);
    label(&b, L_TRAP);
    ret(&b, SECCOMP_RET_TRAP | COLO_TRAP_DATA);

    if (b.n > max || b.n > COLO_FILTER_MAX)
        return -1;
    for (uint32_t i = 0; i < b.n; i++) {
        if (b.lbl_t[i]) {
            int d = b.label_at[b.lbl_t[i] - L_ALLOW] - (int)i - 1;
            if (d < 0 || d > 255) return -1;
            b.f[i].jt = (uint8_t)d;
        }
        if (b.lbl_f[i]) {
            int d = b.label_at[b.lbl_f[i] - L_ALLOW] - (int)i - 1;
            if (d < 0 || d > 255) return -1;
            b.f[i].jf = (uint8_t)d;
        }
    }
    colo_memcpy(colo_filter_program, b.f, b.n * sizeof *b.f);
    colo_filter_length = b.n;
    return (int)b.n;
}
