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
 * for re-colocation (fork.c).
 *
 * The program first decides on the architecture and the call number alone,
 * through a sorted decision tree over the calls in `rules`; every other call
 * reaches ALLOW without a load of the instruction pointer or an argument, so
 * the kernel's seccomp action cache (Linux 5.11+, which emulates the program
 * per number with only these two known) allows it without running the
 * program at all.  Only the calls in `rules` look at where they come from. */
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
#include <linux/errno.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <signal.h>
#include <linux/sched.h>
#include "colo_sys.h"
#include "guest_shim.h"
#include "filter.h"

#define OFF_NR     offsetof(struct seccomp_data, nr)
#define OFF_ARCH   offsetof(struct seccomp_data, arch)
#define OFF_IP_HI  (offsetof(struct seccomp_data, instruction_pointer) + 4)
#define OFF_ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define OFF_ARG_HI(i) (OFF_ARG_LO(i) + 4)

/* The colocation system calls: CheriBSD's numbers + 1000 (colo_abi.h). */
#define COLO_SYS_FIRST 1000
#define COLO_SYS_LAST  1999

/* What a call needs when it comes from inside the slot region. */
enum need {
    N_TRAP,         /* the SIGSYS handler */
    N_RANGE,        /* native if its memory range lies in the caller's own slot, else the handler */
    N_MMAP,         /* placement (no MAP_FIXED*) to the handler, else as N_RANGE */
    N_SIGMASK,      /* rt_sigprocmask: the handler if it may block SIGSYS */
    N_CLONE,        /* threads and CLONE_VM processes native, vfork and fork to the handler */
    N_ENOSYS,       /* fails with ENOSYS, and libc falls back */
    N_GUEST,        /* colocation calls served in the guest (coexecve(c)): the handler, which rewrites
                     * registers (the runtime from outside the slot region) */
    N_RUNTIME,      /* the other colocation calls: the runtime, from anywhere */
};
struct rule { uint32_t first, last; enum need need; };
#define ONE(nr, need) { (nr), (nr), (need) }

/* Every Linux call that is not simply allowed, in ascending order of number; the
 * colocation calls follow, from colo_syscalls.def (see build_rules). */
static const struct rule linux_rules[] = {
    ONE(SYS_mmap, N_MMAP),
    ONE(SYS_mprotect, N_RANGE),
    ONE(SYS_munmap, N_RANGE),
    ONE(SYS_brk, N_TRAP),
    ONE(SYS_rt_sigaction, N_TRAP),
    ONE(SYS_rt_sigprocmask, N_SIGMASK),
    ONE(SYS_mremap, N_TRAP),
    ONE(SYS_msync, N_RANGE),
    ONE(SYS_madvise, N_RANGE),
    ONE(SYS_shmat, N_TRAP),
    ONE(SYS_clone, N_CLONE),
    ONE(SYS_fork, N_TRAP),
    ONE(SYS_vfork, N_TRAP),
    ONE(SYS_execve, N_TRAP),
    ONE(SYS_wait4, N_TRAP),         /* wait4 and waitid: a forked child's hand-over is invisible */
    ONE(SYS_readlink, N_TRAP),      /* readlink(at): /proc/self/exe names the process's program */
    ONE(SYS_rt_sigsuspend, N_TRAP),
    ONE(SYS_mlock, N_RANGE),
    ONE(SYS_munlock, N_RANGE),
    ONE(SYS_remap_file_pages, N_RANGE),
    ONE(SYS_mbind, N_RANGE),
    ONE(SYS_waitid, N_TRAP),
    ONE(SYS_readlinkat, N_TRAP),
    ONE(SYS_execveat, N_TRAP),
    ONE(SYS_mlock2, N_RANGE),
    ONE(SYS_pkey_mprotect, N_RANGE),
    /* clone3's flags are out of BPF's reach (clone is used instead), and an
     * rseq area registered by one program would outlive it across exec in
     * place (the kernel kills a thread whose rseq area is gone). */
    ONE(SYS_rseq, N_ENOSYS),
    ONE(SYS_clone3, N_ENOSYS),
#ifdef SYS_mseal
    ONE(SYS_mseal, N_RANGE),
#endif
};
#define LINUX_RULES (sizeof linux_rules / sizeof linux_rules[0])
/* At most: the Linux rules, each colocation call served in the guest, and the runtime's
 * ranges around them. */
#define RULES_MAX (LINUX_RULES + 2 * COLO_SYSCALL_COUNT + 1)

static struct rule rules[RULES_MAX];
static uint32_t nrules;

/* The Linux rules, then the colocation range: every number to the runtime (which answers
 * ENOSYS for one it does not know, as outside an address space) but those the table serves
 * in the guest.  -1 if the table is not in ascending order. */
static int build_rules(void)
{
    nrules = 0;
    for (uint32_t i = 0; i < LINUX_RULES; i++) rules[nrules++] = linux_rules[i];
    uint32_t from = COLO_SYS_FIRST;
    int32_t last = 0;
    for (uint32_t i = 0; i < COLO_SYSCALL_COUNT; i++) {
        const struct colo_syscall_desc *d = colo_syscall_at(i);
        if (d->number <= last) return -1;
        last = d->number;
        if (d->served != COLO_SERVED_GUEST) continue;
        if ((uint32_t)d->number > from) rules[nrules++] = (struct rule){ from, (uint32_t)d->number - 1, N_RUNTIME };
        rules[nrules++] = (struct rule)ONE((uint32_t)d->number, N_GUEST);
        from = (uint32_t)d->number + 1;
    }
    rules[nrules++] = (struct rule){ from, COLO_SYS_LAST, N_RUNTIME };
    for (uint32_t i = 1; i < nrules; i++)
        if (rules[i].first <= rules[i - 1].last) return -1;
    return 0;
}

/* Symbolic jump targets, resolved after emission; the decision tree's own
 * labels follow L_TREE. */
enum { L_ALLOW = 1000, L_TRAP, L_NOTIF, L_ENOSYS, L_NEED_TRAP, L_NEED_RANGE, L_RANGE, L_NEED_MMAP,
       L_NEED_SIGMASK, L_NEED_CLONE, L_NEED_ENOSYS, L_NEED_GUEST, L_TREE, L_END = L_TREE + RULES_MAX };

/* Where the tree sends a call of each need. */
static const uint16_t need_label[] = {
    [N_TRAP] = L_NEED_TRAP, [N_RANGE] = L_NEED_RANGE, [N_MMAP] = L_NEED_MMAP,
    [N_SIGMASK] = L_NEED_SIGMASK, [N_CLONE] = L_NEED_CLONE, [N_ENOSYS] = L_NEED_ENOSYS,
    [N_GUEST] = L_NEED_GUEST, [N_RUNTIME] = L_NOTIF,
};

struct builder {
    struct colo_sock_filter f[COLO_FILTER_MAX];
    uint32_t n;
    uint16_t lbl_t[COLO_FILTER_MAX], lbl_f[COLO_FILTER_MAX];   /* 0, or a label */
    int label_at[L_END - L_ALLOW];
    int next_tree_label;
};

/* Instructions past COLO_FILTER_MAX are counted, not stored: the build fails. */
static void emit(struct builder *b, uint16_t code, uint32_t k, int jt, int jf)
{
    uint32_t i = b->n++;
    if (i >= COLO_FILTER_MAX) return;
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

/* Jump to `outside` if the calling instruction lies outside the slot region,
 * else to `inside` (0: the next instruction). */
static void region(struct builder *b, int outside, int inside)
{
    ld(b, OFF_IP_HI);
    jge(b, (uint32_t)(COLO_SLOT_REGION_BASE >> 32), 0, outside);
    jge(b, (uint32_t)(COLO_SLOT_REGION_END >> 32), outside, inside);
}

/* The decision tree over rules[lo, hi), with the number in A: halves split
 * by one comparison, then up to four rules tested in turn; a number that
 * matches none is allowed. */
static void tree(struct builder *b, uint32_t lo, uint32_t hi)
{
    if (hi - lo > 4) {
        uint32_t mid = lo + (hi - lo) / 2;
        int upper = b->next_tree_label++;
        jge(b, rules[mid].first, upper, 0);
        tree(b, lo, mid);
        label(b, upper);
        tree(b, mid, hi);
        return;
    }
    for (uint32_t i = lo; i < hi; i++) {
        int to = need_label[rules[i].need];
        int last = i + 1 == hi;
        if (rules[i].first == rules[i].last) {
            jeq(b, rules[i].first, to, last ? L_ALLOW : 0);
        } else {
            jgt(b, rules[i].last, last ? L_ALLOW : 1, 0);   /* above: the next rule */
            jge(b, rules[i].first, to, L_ALLOW);             /* below: no later rule either */
        }
    }
}

/* The program last built, which the in-process tracer runs (trace.c). */
struct colo_sock_filter colo_filter_program[COLO_FILTER_MAX];
uint32_t colo_filter_length;

int colo_build_filter(struct colo_sock_filter *out, uint32_t max)
{
    struct builder b;
    colo_memset(&b, 0, sizeof b);
    b.next_tree_label = L_TREE;
    if (build_rules() < 0) return -1;
    uint32_t slot_hi_shift = COLO_SLOT_SHIFT - 32;              /* high word >> this = slot */
    uint32_t slot_hi_mask = (uint32_t)(COLO_SLOT_SIZE >> 32) - 1;

    ld(&b, OFF_ARCH);
    jeq(&b, AUDIT_ARCH_X86_64, 0, L_ALLOW);
    ld(&b, OFF_NR);
    tree(&b, 0, nrules);

    label(&b, L_NEED_TRAP);
    region(&b, L_ALLOW, L_TRAP);
    label(&b, L_NEED_ENOSYS);
    region(&b, L_ALLOW, L_ENOSYS);
    /* Outside the slot region the colocation calls still go to the runtime:
     * the handler's own exec request, and a traced guest's calls, which the
     * handler makes for it (trace.c). */
    label(&b, L_NEED_GUEST);
    region(&b, L_NOTIF, L_TRAP);

    /* clone: CLONE_VFORK needs the handler (the parent waits in user space),
     * and so does a fork (no CLONE_VM: the re-colocation helper starts first);
     * threads and CLONE_VM processes run natively. */
    label(&b, L_NEED_CLONE);
    region(&b, L_ALLOW, 0);
    ld(&b, OFF_ARG_LO(0));
    jset(&b, CLONE_VFORK, L_TRAP, 0);
    jset(&b, CLONE_VM, L_ALLOW, L_TRAP);

    /* rt_sigprocmask: only calls that may block SIGSYS need the handler. */
    label(&b, L_NEED_SIGMASK);
    region(&b, L_ALLOW, 0);
    ld(&b, OFF_ARG_LO(0));
    jeq(&b, SIG_UNBLOCK, L_ALLOW, 0);
    ld(&b, OFF_ARG_LO(1));
    jeq(&b, 0, 0, L_TRAP);
    ld(&b, OFF_ARG_HI(1));
    jeq(&b, 0, L_ALLOW, L_TRAP);

    /* mmap: placement (no MAP_FIXED*) always goes to the handler. */
    label(&b, L_NEED_MMAP);
    region(&b, L_ALLOW, 0);
    ld(&b, OFF_ARG_LO(3));
    jset(&b, MAP_FIXED | MAP_FIXED_NOREPLACE, L_RANGE, L_TRAP);

    /* addr in the caller's slot (the slot of the calling instruction), below
     * the slot's last 4 GiB, and len < 4 GiB: the whole range is inside the
     * slot.  Anything else is decided by the handler. */
    label(&b, L_NEED_RANGE);
    region(&b, L_ALLOW, 0);
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
    label(&b, L_NOTIF);
    ret(&b, SECCOMP_RET_USER_NOTIF);
    label(&b, L_ENOSYS);
    ret(&b, SECCOMP_RET_ERRNO | ENOSYS);

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
    colo_memcpy(out, b.f, b.n * sizeof *b.f);
    colo_memcpy(colo_filter_program, b.f, b.n * sizeof *b.f);
    colo_filter_length = b.n;
    return (int)b.n;
}
