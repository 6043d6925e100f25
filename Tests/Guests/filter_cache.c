/* filter_cache.c - FilterCacheTests' view of the address space's seccomp
 * program (built with Sources/GuestShim/filter.c): per call number, whether
 * the kernel's seccomp action cache allows it without running the program,
 * and what the program decides for sample instruction pointers and arguments.
 *
 * The cache verdict is kernel/seccomp.c's seccomp_is_const_allow (Linux 6.x):
 * the program is emulated with only the architecture and the number known;
 * any other load, or an instruction it does not know, makes the number
 * uncacheable, and a constant path must end in RET ALLOW.
 *
 * Output: "length N", "call NAME NR" for the calls the test names (the
 * numbers of <sys/syscall.h> and colo_abi.h), "samples NAME ...", then one
 * line per number: "NR CACHED ACTION ..." (CACHED 1 or 0; ACTION allow,
 * trap, notif, errnoE or other:HEX, one per sample). */
#include <stdio.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include "switcher.h"

static struct colo_sock_filter prog[COLO_FILTER_MAX];
static uint32_t len;

/* seccomp_is_const_allow(), for one architecture and number. */
static int const_allow(uint32_t arch, uint32_t nr)
{
    uint32_t a = 0;
    for (uint32_t pc = 0; pc < len; pc++) {
        const struct colo_sock_filter *i = &prog[pc];
        int taken;
        switch (i->code) {
        case BPF_LD | BPF_W | BPF_ABS:
            if (i->k == offsetof(struct seccomp_data, nr)) a = nr;
            else if (i->k == offsetof(struct seccomp_data, arch)) a = arch;
            else return 0;                          /* not a constant: IP or an argument */
            break;
        case BPF_RET | BPF_K:
            return i->k == SECCOMP_RET_ALLOW;
        case BPF_JMP | BPF_JA:
            pc += i->k;
            break;
        case BPF_JMP | BPF_JEQ | BPF_K:
        case BPF_JMP | BPF_JGE | BPF_K:
        case BPF_JMP | BPF_JGT | BPF_K:
        case BPF_JMP | BPF_JSET | BPF_K:
            switch (BPF_OP(i->code)) {
            case BPF_JEQ: taken = a == i->k; break;
            case BPF_JGE: taken = a >= i->k; break;
            case BPF_JGT: taken = a > i->k; break;
            default: taken = (a & i->k) != 0; break;
            }
            pc += taken ? i->jt : i->jf;
            break;
        case BPF_ALU | BPF_AND | BPF_K:
            a &= i->k;
            break;
        default:
            return 0;
        }
    }
    return 0;
}


static void print_action(uint32_t r)
{
    switch (r & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_ALLOW: printf(" allow"); break;
    case SECCOMP_RET_TRAP: printf(" trap"); break;
    case SECCOMP_RET_USER_NOTIF: printf(" notif"); break;
    case SECCOMP_RET_ERRNO: printf(" errno%u", r & SECCOMP_RET_DATA); break;
    default: printf(" other:%x", r);
    }
}

#define CALL(name) { #name, SYS_##name }
static const struct { const char *name; long nr; } calls[] = {
    CALL(getppid), CALL(read), CALL(write), CALL(futex), CALL(getpid), CALL(close), CALL(openat), CALL(fstat),
    CALL(clock_gettime), CALL(nanosleep), CALL(sched_yield), CALL(exit_group), CALL(gettid), CALL(tgkill),
    CALL(brk), CALL(rt_sigaction), CALL(mremap), CALL(shmat), CALL(fork), CALL(vfork), CALL(execve),
    CALL(wait4), CALL(waitid), CALL(readlink), CALL(readlinkat), CALL(execveat), CALL(setuid), CALL(setgid), CALL(setreuid), CALL(setregid),
    CALL(setresuid), CALL(setresgid), CALL(setfsuid), CALL(setfsgid), CALL(capset), CALL(rt_sigsuspend),
    CALL(mmap), CALL(mprotect), CALL(munmap), CALL(msync), CALL(madvise), CALL(mlock), CALL(munlock),
    CALL(remap_file_pages), CALL(mbind), CALL(mlock2), CALL(pkey_mprotect), CALL(rseq), CALL(clone3),
    CALL(clone), CALL(rt_sigprocmask),
    { "coexecve", COLO_SYS_coexecve }, { "coexecvec", COLO_SYS_coexecvec },
};

/* Instruction pointers outside the slot region (a non-PIE program, a PIE
 * such as the runtime, a shared library) and in three slots. */
static const struct { const char *name; uint64_t ip; } ips[] = {
    { "low", 0x400000 },
    { "runtime", 0x555555554000ULL },
    { "library", 0x7ffff7fc0000ULL },
    { "slot0", COLO_SLOT_REGION_BASE + COLO_IMAGE_OFFSET },
    { "slot100", COLO_SLOT_REGION_BASE + 100 * COLO_SLOT_SIZE + 0x123456789ULL },
    { "slot_last", COLO_SLOT_REGION_END - 1 },
};
/* Arguments: all zero, all ones, and a memory range in the caller's own
 * slot (the first slot for callers outside the region) with MAP_FIXED. */
static const char *const args[] = { "zero", "ones", "own" };
enum { IPS = sizeof ips / sizeof ips[0], ARGS = sizeof args / sizeof args[0] };

/* The line of number `nr`. */
static void report(uint32_t nr)
{
    printf("%u %d", nr, const_allow(AUDIT_ARCH_X86_64, nr));
    for (int i = 0; i < IPS; i++) {
        uint64_t ip = ips[i].ip;
        uint64_t own = ip >= COLO_SLOT_REGION_BASE && ip < COLO_SLOT_REGION_END
            ? ip & ~(COLO_SLOT_SIZE - 1) : COLO_SLOT_REGION_BASE;
        for (int k = 0; k < ARGS; k++) {
            struct seccomp_data d;
            memset(&d, k == 1 ? 0xff : 0, sizeof d);
            d.nr = (int)nr;
            d.arch = AUDIT_ARCH_X86_64;
            d.instruction_pointer = ip;
            if (k == 2) {
                d.args[0] = own + COLO_MMAP_LO_OFFSET;
                d.args[1] = 0x10000;
                d.args[2] = PROT_READ;
                d.args[3] = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
            }
            print_action(colo_filter_run(prog, len, &d));
        }
    }
    printf("\n");
}

int main(void)
{
    int n = colo_build_filter(prog, COLO_FILTER_MAX);
    if (n <= 0) { printf("length %d\n", n); return 1; }
    len = (uint32_t)n;
    printf("length %u\n", len);

    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) printf("call %s %ld\n", calls[c].name, calls[c].nr);
    printf("samples");
    for (int i = 0; i < IPS; i++)
        for (int k = 0; k < ARGS; k++) printf(" %s/%s", ips[i].name, args[k]);
    printf("\n");
    /* Every number the cache covers (x86-64 has fewer than 512), then the
     * colocation calls (CheriBSD's numbers + 1000) and the first number after them. */
    for (uint32_t nr = 0; nr < 512; nr++) report(nr);
    for (uint32_t nr = 1000; nr <= 2000; nr++) report(nr);
    return 0;
}
