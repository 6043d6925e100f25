/* filter.c - the seccomp BPF program of one colocated process.
 *
 * Calls made from outside the slot region (the runtime's own code, the vDSO,
 * a program that really execve()d out of colocation) are always allowed.  From
 * inside the region, only what the shared address space needs is trapped to
 * the SIGSYS handler; memory calls whose whole range lies inside the caller's
 * own slot run natively.  Raw BPF because libseccomp cannot express
 * instruction-pointer or slot arithmetic. */
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/audit.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <signal.h>
#include "switcher.h"
#include "sys.h"

#define OFF_NR     offsetof(struct seccomp_data, nr)
#define OFF_ARCH   offsetof(struct seccomp_data, arch)
#define OFF_IP_HI  (offsetof(struct seccomp_data, instruction_pointer) + 4)
#define OFF_ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define OFF_ARG_HI(i) (OFF_ARG_LO(i) + 4)

/* Symbolic jump targets, resolved after emission. */
enum { L_ALLOW = 1000, L_TRAP, L_RANGE, L_MMAP, L_SIGMASK, L_NONE };

struct builder {
    struct colo_sock_filter *f;
    uint32_t n;
    uint8_t tgt_t[COLO_FILTER_MAX], tgt_f[COLO_FILTER_MAX];  /* 0 = relative, else label-L_ALLOW+1 */
    uint16_t lbl_t[COLO_FILTER_MAX], lbl_f[COLO_FILTER_MAX];
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
static void jset(struct builder *b, uint32_t k, int jt, int jf) { emit(b, BPF_JMP | BPF_JSET | BPF_K, k, jt, jf); }
static void ret(struct builder *b, uint32_t k) { emit(b, BPF_RET | BPF_K, k, 0, 0); }

/* Memory calls whose (addr, len) in args 0 and 1 are checked against the slot. */
static const uint32_t range_calls[] = {
    SYS_munmap, SYS_mprotect, SYS_madvise, SYS_pkey_mprotect, SYS_mlock, SYS_mlock2,
    SYS_munlock, SYS_msync, SYS_remap_file_pages, SYS_mbind,
#ifdef SYS_mseal
    SYS_mseal,
#endif
};

/* Calls that change credentials: the kernel then clears the parent-death
 * signal, which the handler re-arms so the process still dies with the runtime. */
static const uint32_t credential_calls[] = {
    SYS_setuid, SYS_setgid, SYS_setreuid, SYS_setregid, SYS_setresuid, SYS_setresgid,
    SYS_setfsuid, SYS_setfsgid, SYS_capset,
};

int colo_build_filter(struct colo_slot *slot)
{
    struct builder b;
    colo_memset(&b, 0, sizeof b);
    b.f = slot->filter;
    uint32_t slot_hi = (uint32_t)((COLO_SLOT_REGION_BASE + ((uint64_t)slot->index << COLO_SLOT_SHIFT)) >> 32);
    uint32_t slot_hi_words = (uint32_t)(COLO_SLOT_SIZE >> 32);

    ld(&b, OFF_ARCH);
    jeq(&b, AUDIT_ARCH_X86_64, 0, L_ALLOW);
    ld(&b, OFF_IP_HI);
    jge(&b, (uint32_t)(COLO_SLOT_REGION_BASE >> 32), 0, L_ALLOW);
    jge(&b, (uint32_t)(COLO_SLOT_REGION_END >> 32), L_ALLOW, 0);
    ld(&b, OFF_NR);
    jeq(&b, SYS_brk, L_TRAP, 0);
    jeq(&b, SYS_mmap, L_MMAP, 0);
    for (size_t i = 0; i < sizeof range_calls / sizeof range_calls[0]; i++)
        jeq(&b, range_calls[i], L_RANGE, 0);
    jeq(&b, SYS_mremap, L_TRAP, 0);
    jeq(&b, SYS_shmat, L_TRAP, 0);
    jeq(&b, SYS_rt_sigaction, L_TRAP, 0);
    jeq(&b, SYS_rt_sigsuspend, L_TRAP, 0);
    jeq(&b, SYS_rt_sigprocmask, L_SIGMASK, 0);
    for (size_t i = 0; i < sizeof credential_calls / sizeof credential_calls[0]; i++)
        jeq(&b, credential_calls[i], L_TRAP, 0);
    jge(&b, 1000, 0, L_ALLOW);               /* colocation system calls */
    jge(&b, 2000, L_ALLOW, L_TRAP);

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

    /* addr in own slot, below its last 4 GiB, and len < 4 GiB: the whole
     * range is inside the slot.  Anything else is decided by the handler. */
    label(&b, L_RANGE);
    ld(&b, OFF_ARG_HI(0));
    jge(&b, slot_hi, 0, L_TRAP);
    jge(&b, slot_hi + slot_hi_words - 1, L_TRAP, 0);
    ld(&b, OFF_ARG_HI(1));
    jeq(&b, 0, L_ALLOW, L_TRAP);

    label(&b, L_ALLOW);
    ret(&b, SECCOMP_RET_ALLOW);
    label(&b, L_TRAP);
    ret(&b, SECCOMP_RET_TRAP | COLO_TRAP_DATA);

    if (b.n > COLO_FILTER_MAX)
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
    slot->filter_len = b.n;
    return 0;
}
