/* sigsys.c - the in-process SIGSYS handler: serves the system calls the
 * colocation filter traps (emulated brk, mmap placement inside the caller's
 * slot, refusal of memory calls on other processes' mappings, keeping SIGSYS
 * out of every signal mask) and forwards SIGSYS signals that are not ours.
 *
 * It runs on the guest's thread and stack, with the guest's %fs: raw system
 * calls only.  Its own system calls come from outside the slot region, so the
 * filter lets them through. */
#define _GNU_SOURCE
#include <stddef.h>
#include <signal.h>
#include <ucontext.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/mman.h>
#include <linux/errno.h>
#include "colo_sys.h"
#include "colo_layout.h"
#include "colo_switch.h"
#include "sigsys.h"
#include "trace.h"
#include "exec.h"
#include "procself.h"
#include "fork.h"
#include "space.h"

#define PAGE 4096ULL
#define HUGE 0x200000ULL
#define ERR(e) (-(long)(e))
#define SIGBIT(s) (1ULL << ((s) - 1))
/* SIGSYS's si_codes: <asm-generic/siginfo.h> has them, but conflicts with glibc's
 * <signal.h>, which does not define them. */
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2
#endif

static inline uint64_t page_up(uint64_t x) { return (x + PAGE - 1) & ~(PAGE - 1); }
static inline uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }
static inline uint64_t slot_base(const struct colo_slot *s)
{
    return COLO_SLOT_REGION_BASE + ((uint64_t)s->index << COLO_SLOT_SHIFT);
}

/* Is [addr, addr+len) inside the caller's own slot? */
static int in_slot(const struct colo_slot *s, uint64_t addr, uint64_t len)
{
    uint64_t lo = slot_base(s), hi = lo + COLO_SLOT_SIZE;
    return addr >= lo && addr < hi && len <= hi - addr;
}

/* Fault-safe copies between the handler and guest memory. */
static long guest_read(void *dst, uint64_t src, size_t n)
{
    struct iovec l = { dst, n }, r = { (void *)src, n };
    long got = sys6(SYS_process_vm_readv, sys0(SYS_getpid), (long)&l, 1, (long)&r, 1, 0);
    return got == (long)n ? 0 : ERR(EFAULT);
}
static long guest_write(uint64_t dst, const void *src, size_t n)
{
    struct iovec l = { (void *)src, n }, r = { (void *)dst, n };
    long got = sys6(SYS_process_vm_writev, sys0(SYS_getpid), (long)&l, 1, (long)&r, 1, 0);
    return got == (long)n ? 0 : ERR(EFAULT);
}

/* ---- finding free space in the slot's mmap area --------------------------- */

/* Lowest address >= from, aligned, with [a, a+len) free of mappings and below
 * limit, read from /proc/self/maps (the shared mm).  0 if there is none. */
static uint64_t next_gap(uint64_t from, uint64_t len, uint64_t align, uint64_t limit)
{
    int fd = (int)sys4(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY, 0);
    if (fd < 0) return 0;
    uint64_t a = align_up(from, align);
    uint64_t start = 0, end = 0;
    int field = 0;               /* 0: start, 1: end, 2: rest of line */
    char buf[4096];
    long n;
    while ((n = sys3(SYS_read, fd, buf, sizeof buf)) > 0) {
        for (long i = 0; i < n; i++) {
            char c = buf[i];
            if (field < 2) {
                int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
                if (v >= 0) {
                    if (field == 0) start = start << 4 | (uint64_t)v; else end = end << 4 | (uint64_t)v;
                    continue;
                }
                field++;
                if (field == 2 && end > a && start < a + len)
                    a = align_up(end, align);       /* overlaps the candidate: move past it */
            }
            if (c == '\n') { field = 0; start = end = 0; }
        }
        if (a + len > limit) break;
    }
    sys1(SYS_close, fd);
    return a + len <= limit ? a : 0;
}

/* mmap somewhere free inside the slot's mmap area (next fit, wrapping once). */
static long place_mapping(struct colo_slot *s, uint64_t len, long prot, long flags, long fd, long off)
{
    uint64_t align = (len >= HUGE || (flags & MAP_HUGETLB)) ? HUGE : PAGE;
    flags = (flags & ~(long)(MAP_FIXED | MAP_FIXED_NOREPLACE)) | MAP_FIXED_NOREPLACE;
    for (int pass = 0; pass < 2; pass++) {
        uint64_t a = align_up(pass ? s->mmap_lo : s->mmap_cursor, align);
        while (a && a + len <= s->mmap_hi && a + len > a) {
            long r = sys6(SYS_mmap, (long)a, (long)len, prot, flags, fd, off);
            if (r == (long)a) {
                s->mmap_cursor = a + len;
                return r;
            }
            if (r != ERR(EEXIST)) {
                if (r >= 0) sys2(SYS_munmap, r, len);    /* kernel ignored the hint */
                return r >= 0 ? ERR(ENOMEM) : r;
            }
            a = next_gap(a, len, align, s->mmap_hi);
        }
    }
    return ERR(ENOMEM);
}

/* ---- the emulated calls ---------------------------------------------------- */

static long do_brk(struct colo_slot *s, uint64_t req)
{
    if (req < s->brk_start || req > s->brk_start + s->brk_limit)
        return (long)s->brk_cur;
    uint64_t newend = page_up(req);
    if (newend > s->brk_mapped_end) {
        long r = sys6(SYS_mmap, (long)s->brk_mapped_end, (long)(newend - s->brk_mapped_end),
                      PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (r != (long)s->brk_mapped_end) {
            if (r >= 0) sys2(SYS_munmap, r, newend - s->brk_mapped_end);
            return (long)s->brk_cur;
        }
    } else if (newend < s->brk_mapped_end) {
        sys2(SYS_munmap, (long)newend, (long)(s->brk_mapped_end - newend));
    }
    s->brk_mapped_end = newend;
    s->brk_cur = req;
    return (long)req;
}

static long do_mmap(struct colo_slot *s, const greg_t *g)
{
    uint64_t addr = (uint64_t)g[REG_RDI], len = (uint64_t)g[REG_RSI];
    long prot = g[REG_RDX], flags = g[REG_R10], fd = g[REG_R8], off = g[REG_R9];
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
        if (!in_slot(s, addr, page_up(len))) return ERR(EACCES);
        return sys6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
    }
    if (flags & MAP_32BIT) return ERR(ENOMEM);     /* no slot lies below 2 GiB */
    if (len == 0 || page_up(len) < len) return ERR(EINVAL);
    len = page_up(len);
    if (addr && in_slot(s, addr & ~(PAGE - 1), len)) {   /* a hint inside the slot: try it */
        long r = sys6(SYS_mmap, (long)(addr & ~(PAGE - 1)), (long)len, prot, flags | MAP_FIXED_NOREPLACE, fd, off);
        if (r >= 0 || r != ERR(EEXIST)) return r;
    }
    return place_mapping(s, len, prot, flags, fd, off);
}

static long do_mremap(struct colo_slot *s, const greg_t *g)
{
    uint64_t old = (uint64_t)g[REG_RDI], oldsz = (uint64_t)g[REG_RSI], newsz = (uint64_t)g[REG_RDX];
    long flags = g[REG_R10];
    uint64_t newaddr = (uint64_t)g[REG_R8];
    if (!in_slot(s, old, page_up(oldsz))) return ERR(EACCES);
    if (flags & MREMAP_FIXED) {
        if (!in_slot(s, newaddr, page_up(newsz))) return ERR(EACCES);
        return sys5(SYS_mremap, (long)old, (long)oldsz, (long)newsz, flags, (long)newaddr);
    }
    if (in_slot(s, old, page_up(newsz))) {
        long r = sys5(SYS_mremap, (long)old, (long)oldsz, (long)newsz, flags & ~(long)MREMAP_MAYMOVE, 0);
        if (r >= 0 || !(flags & MREMAP_MAYMOVE) || r != ERR(ENOMEM)) return r;
    } else if (!(flags & MREMAP_MAYMOVE)) {
        return ERR(ENOMEM);
    }
    /* Move: reserve a free range in the slot, then move onto it. */
    long dst = place_mapping(s, page_up(newsz), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (dst < 0) return dst;
    long r = sys5(SYS_mremap, (long)old, (long)oldsz, (long)newsz, flags | MREMAP_FIXED | MREMAP_MAYMOVE, dst);
    if (r < 0) sys2(SYS_munmap, dst, (long)page_up(newsz));
    return r;
}

static long do_shmat(struct colo_slot *s, const greg_t *g)
{
    long id = g[REG_RDI], flg = g[REG_RDX];
    uint64_t addr = (uint64_t)g[REG_RSI];
    struct shmid_ds ds;
    long r = sys3(SYS_shmctl, id, IPC_STAT, &ds);
    if (r < 0) return r;
    uint64_t len = page_up(ds.shm_segsz);
    if (addr) {
        if (flg & SHM_RND) addr &= ~(PAGE - 1);   /* SHMLBA: x86-64's page (glibc's macro calls __getpagesize) */
        if (!in_slot(s, addr, len)) return ERR(EACCES);
        return sys3(SYS_shmat, id, (long)addr, flg);
    }
    long dst = place_mapping(s, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (dst < 0) return dst;
    r = sys3(SYS_shmat, id, dst, flg | SHM_REMAP);
    if (r < 0) sys2(SYS_munmap, dst, (long)len);
    return r;
}

static long do_sigaction(struct colo_slot *s, const greg_t *g)
{
    long sig = g[REG_RDI];
    uint64_t act = (uint64_t)g[REG_RSI], oact = (uint64_t)g[REG_RDX];
    if (g[REG_R10] != 8) return ERR(EINVAL);
    if (sig == SIGSYS) {   /* the guest's SIGSYS disposition lives in the slot */
        struct kernel_sigaction in, prev;
        colo_memcpy(&prev, &s->guest_sigsys, sizeof prev);
        if (act && guest_read(&in, act, sizeof in) < 0) return ERR(EFAULT);
        if (oact && guest_write(oact, &prev, sizeof prev) < 0) return ERR(EFAULT);
        if (act) {
            in.mask &= ~SIGBIT(SIGSYS);
            colo_memcpy(&s->guest_sigsys, &in, sizeof in);
        }
        return 0;
    }
    if (sig < 1 || sig > 64 || sig == SIGKILL || sig == SIGSTOP) {
        struct kernel_sigaction in;
        if (act && guest_read(&in, act, sizeof in) < 0) return ERR(EFAULT);
        return sys4(SYS_rt_sigaction, sig, act ? (long)&in : 0, (long)oact, 8);
    }
    /* A handler the guest installs runs under the switcher's dispatcher (see
     * switch.c); the guest sees its own disposition.  A vfork child sharing
     * its parent's slot sets its dispositions directly. */
    struct colo_sigaction_rec *shadow = &s->guest_actions[sig - 1];
    struct kernel_sigaction old, shown, in;
    long r = sys4(SYS_rt_sigaction, sig, 0, &old, 8);
    if (r < 0) return r;
    if (colo_is_dispatcher(old.handler)) colo_memcpy(&shown, shadow, sizeof shown);
    else shown = old;
    if (act) {
        if (guest_read(&in, act, sizeof in) < 0) return ERR(EFAULT);
        in.mask &= ~SIGBIT(SIGSYS);
        int fault = sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP;
        int handled = in.handler != (uint64_t)SIG_DFL && in.handler != (uint64_t)SIG_IGN;
        if (s->owner_pid == sys0(SYS_getpid) && (handled || (fault && s->switcher_signals))) {
            struct kernel_sigaction k = in;
            colo_memcpy(shadow, &in, sizeof in);
            colo_dispatch_through(&k);
            r = sys4(SYS_rt_sigaction, sig, &k, 0, 8);
        } else {
            r = sys4(SYS_rt_sigaction, sig, &in, 0, 8);
        }
        if (r < 0) return r;
    }
    if (oact && guest_write(oact, &shown, sizeof shown) < 0) return ERR(EFAULT);
    return 0;
}

/* The mask the guest had when it trapped is in the ucontext; sigreturn installs
 * whatever we leave there. */
static long do_sigprocmask(ucontext_t *uc, const greg_t *g)
{
    long how = g[REG_RDI];
    uint64_t set = (uint64_t)g[REG_RSI], oset = (uint64_t)g[REG_RDX];
    uint64_t *cur = (uint64_t *)&uc->uc_sigmask;
    if (g[REG_R10] != 8) return ERR(EINVAL);
    uint64_t old = *cur, nw = old, in = 0;
    if (set) {
        if (guest_read(&in, set, sizeof in) < 0) return ERR(EFAULT);
        if (how == SIG_BLOCK) nw = old | in;
        else if (how == SIG_UNBLOCK) nw = old & ~in;
        else if (how == SIG_SETMASK) nw = in;
        else return ERR(EINVAL);
    }
    *cur = nw & ~(SIGBIT(SIGKILL) | SIGBIT(SIGSTOP) | SIGBIT(SIGSYS));
    if (oset && guest_write(oset, &old, sizeof old) < 0) return ERR(EFAULT);
    return 0;
}

static long do_sigsuspend(const greg_t *g)
{
    uint64_t mask;
    if (g[REG_RSI] != 8) return ERR(EINVAL);
    if (guest_read(&mask, (uint64_t)g[REG_RDI], sizeof mask) < 0) return ERR(EFAULT);
    mask &= ~SIGBIT(SIGSYS);
    return sys2(SYS_rt_sigsuspend, &mask, 8);
}

/* A SIGSYS that is not one of our traps: give it to the guest's own disposition. */
static void forward_sigsys(struct colo_slot *s, int sig, siginfo_t *info, void *uctx)
{
    uint64_t h = s ? s->guest_sigsys.handler : (uint64_t)SIG_DFL;
    if (h == (uint64_t)SIG_IGN) return;
    if (h == (uint64_t)SIG_DFL) {
        struct kernel_sigaction dfl;
        colo_memset(&dfl, 0, sizeof dfl);
        sys4(SYS_rt_sigaction, SIGSYS, &dfl, 0, 8);
        ((ucontext_t *)uctx)->uc_sigmask.__val[0] &= ~SIGBIT(SIGSYS);
        sys3(SYS_tgkill, sys0(SYS_getpid), sys0(SYS_gettid), SIGSYS);   /* delivered at sigreturn */
        return;
    }
    if (s->guest_sigsys.flags & SA_SIGINFO)
        ((void (*)(int, siginfo_t *, void *))h)(sig, info, uctx);
    else
        ((void (*)(int))h)(sig);
}

long colo_serve_trap(struct colo_slot *s, ucontext_t *uc, int nr)
{
    greg_t *g = uc->uc_mcontext.gregs;
    switch (nr) {
    case SYS_brk:            return do_brk(s, (uint64_t)g[REG_RDI]);
    case SYS_mmap:           return do_mmap(s, g);
    case SYS_mremap:         return do_mremap(s, g);
    case SYS_shmat:          return do_shmat(s, g);
    case SYS_rt_sigaction:   return do_sigaction(s, g);
    case SYS_rt_sigprocmask: return do_sigprocmask(uc, g);
    case SYS_rt_sigsuspend:  return do_sigsuspend(g);
    case SYS_execve:         return colo_do_execve(s, uc, 0);
    case SYS_execveat:       return colo_do_execve(s, uc, 1);
    /* The colocation calls colo_syscalls.def serves in the guest: colo_do_<id>. */
#define SERVED_GUEST(id) case COLO_SYS_##id: return colo_do_##id(s, uc);
#define SERVED_RUNTIME(id)
#define SERVED_SWITCHER(id)
#define COLO_SYSCALL(id, name, number, served, nargs, a0, a1, a2, a3, a4, a5) SERVED_##served(id)
#include "colo_syscalls.def"
#undef COLO_SYSCALL
#undef SERVED_GUEST
#undef SERVED_RUNTIME
#undef SERVED_SWITCHER
    case SYS_vfork:
    case SYS_fork:
    case SYS_clone:          return colo_do_vfork(s, uc, nr);
    case SYS_wait4: case SYS_waitid: return colo_do_wait(s, uc, nr);   /* fork.c */
    case SYS_readlink:   return colo_do_readlink(s, AT_FDCWD, (uint64_t)g[REG_RDI], (uint64_t)g[REG_RSI], g[REG_RDX]);
    case SYS_readlinkat: return colo_do_readlink(s, g[REG_RDI], (uint64_t)g[REG_RSI], (uint64_t)g[REG_RDX], g[REG_R10]);
    case SYS_munmap: case SYS_mprotect: case SYS_madvise: case SYS_pkey_mprotect:
    case SYS_mlock: case SYS_mlock2: case SYS_munlock: case SYS_msync:
    case SYS_remap_file_pages: case SYS_mbind:
#ifdef SYS_mseal
    case SYS_mseal:
#endif
        if (!in_slot(s, (uint64_t)g[REG_RDI], page_up((uint64_t)g[REG_RSI])))
            return ERR(EACCES);
        return sys6(nr, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]);
    default:
        return ERR(ENOSYS);
    }
}

void colo_sigsys_handler(int sig, siginfo_t *info, void *uctx)
{
    ucontext_t *uc = uctx;
    struct colo_slot *s = colo_slot_of((uint64_t)info->si_call_addr);
    if (info->si_code == SYS_USER_DISPATCH) {
        /* A borrowed context's call goes to the callee's thread; a traced
         * thread's call is made and recorded; else the BLOCK was stale. */
        if (colo_switch_unborrow_syscall(uc)) return;
        if (colo_trace_on()) {
            colo_trace_syscall(s, info, uc);
            return;
        }
        colo_switch_stale_block();
        uc->uc_mcontext.gregs[REG_RIP] -= 2;
        return;
    }
    if (info->si_code == SI_QUEUE && ((uint64_t)info->si_value.sival_ptr >> 32) == COLO_SPACE_SIGNAL) {
        colo_space_requested((uint32_t)(uint64_t)info->si_value.sival_ptr);    /* space.c */
        return;
    }
    if (info->si_code != SYS_SECCOMP || info->si_errno != COLO_TRAP_DATA || !s) {
        forward_sigsys(s, sig, info, uctx);
        return;
    }
    s->stats_traps++;
    uc->uc_mcontext.gregs[REG_RAX] = colo_serve_trap(s, uc, info->si_syscall);
}
