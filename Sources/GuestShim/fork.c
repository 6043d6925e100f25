/* fork.c - a fork()ed child that execs goes back into its parent's address
 * space with its PID (see colo_recolo.h for the whole protocol).
 *
 * Here, all on guest threads, raw system calls only:
 *  - the re-colocation helper: a thread in the parent's thread group, started
 *    by the parent's first fork, that parks SIGCHLD, reaps the old child and
 *    recreates its PID in the shared mm with clone3(set_tid), holding the old
 *    child's close-on-exec descriptors until then and recording both
 *    processes for pidfds;
 *  - the forked child's side of execve (commit, then exit);
 *  - the new process's start-up, which restores what the child had;
 *  - the parent's wait4/waitid, which never report the old child's exit and
 *    wait for a hand-over in progress instead of answering ECHILD, and
 *    whose waitid(P_PIDFD) on a pidfd naming the old child makes it name
 *    the new process first. */
#define _GNU_SOURCE
#include <stddef.h>
#include <signal.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <asm/prctl.h>
#include <linux/sched.h>
#include <linux/futex.h>
#include <linux/pidfd.h>
#include <linux/wait.h>
#include <linux/errno.h>
#include <asm/ioctls.h>
#include <dirent.h>
#include <asm/stat.h>
#include "colo_recolo.h"

_Static_assert(COLO_RECOLO_START_OFFSET + sizeof(struct colo_recolo_start) <= COLO_SLOT_HEADER_RUNTIME_PART,
               "the runtime sees the re-colocation areas");
#include "colo_sys.h"
#include "colo_layout.h"
#include "colo_switch.h"
#include "clone.h"
#include "process.h"
#include "start.h"
#include "trace.h"
#include "fork.h"


#define SIGBIT(s) (1ULL << ((s) - 1))

_Static_assert(sizeof(struct colo_slot) <= COLO_RECOLO_OFFSET, "struct colo_slot grew into the re-colocation area");
_Static_assert(COLO_RECOLO_OFFSET + sizeof(struct colo_recolo_area) <= COLO_RECOLO_START_OFFSET, "re-colocation area");
_Static_assert(COLO_RECOLO_START_OFFSET + sizeof(struct colo_recolo_start) <= 0x9000, "re-colocation start record");

struct ts { long sec, nsec; };

static struct colo_recolo_area *area_of(struct colo_slot *s)
{
    return (struct colo_recolo_area *)((char *)s + COLO_RECOLO_OFFSET);
}
static uint32_t load(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static uint64_t load64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void store64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static long futex_wait(uint32_t *w, uint32_t v, long ms)
{
    struct ts t = { ms / 1000, (ms % 1000) * 1000000 };
    return sys6(SYS_futex, (long)w, FUTEX_WAIT, v, ms ? (long)&t : 0, 0, 0);
}
static void futex_wake(uint32_t *w) { sys6(SYS_futex, (long)w, FUTEX_WAKE, 0x7fffffff, 0, 0, 0); }
static void pause_us(long us)
{
    struct ts t = { 0, us * 1000 };
    sys2(SYS_nanosleep, &t, 0);
}

/* ---- for the runtime --------------------------------------------------------- */

int colo_recolo_helper_alive(struct colo_slot *slot, int32_t tgid)
{
    struct colo_recolo_area *a = area_of(slot);
    return load(&a->helper_state) == COLO_HELPER_RUNNING && a->helper_tgid == tgid &&
           __atomic_load_n(&a->helper_tid, __ATOMIC_ACQUIRE) != 0;
}

int colo_recolo_post(struct colo_slot *slot, int32_t pid, int32_t newslot)
{
    struct colo_recolo_area *a = area_of(slot);
    for (int i = 0; i < COLO_RECOLO_REQUESTS; i++) {
        struct colo_recolo_request *q = &a->req[i];
        if (load(&q->state) != COLO_RQ_FREE) continue;
        q->pid = pid;
        q->slot = newslot;
        store(&q->reaped, 0);
        __atomic_add_fetch(&a->in_flight, 1, __ATOMIC_ACQ_REL);
        store(&q->state, COLO_RQ_REQUESTED);
        __atomic_add_fetch(&a->seq, 1, __ATOMIC_ACQ_REL);
        futex_wake(&a->seq);
        return 0;
    }
    return -EAGAIN;
}

/* ---- the new process ---------------------------------------------------------- */

static void start_fail(struct colo_recolo_start *st, int step, long err)
{
    st->step = step;
    st->error = (int32_t)-err;
    sys1(SYS_exit_group, 127);
}

/* clone3's child, on the new slot's start-up stack: become what the forked
 * child was, then enter the program. */
static void recolo_child_main(void *arg)
{
    struct colo_slot *ns = arg;
    struct colo_recolo_start *st = (struct colo_recolo_start *)((char *)ns + COLO_RECOLO_START_OFFSET);
    long r;
    /* The helper's descriptors (the parent's) go; the child's come from the runtime. */
    sys3(SYS_close_range, 0, ~0U, 0);
    long cwd = sys6(COLO_SYS_exec, COLO_EXEC_RECOLO_START, ns->index, 0, 0, 0, 0);
    if (cwd < 0) start_fail(st, 1, cwd);
    if ((r = sys1(SYS_fchdir, cwd)) < 0) start_fail(st, 2, r);
    sys1(SYS_close, cwd);
    sys1(SYS_umask, st->umask);
    for (int i = 0; i < 16; i++) sys4(SYS_prlimit64, 0, i, &st->rlim[i], 0);
    /* Process group and session, as the child had set them up (a job-control
     * shell's child leads a group of its own, which died with the old child). */
    long pgid = sys1(SYS_getpgid, 0);
    if (st->sid == st->pid) {
        if ((r = sys0(SYS_setsid)) < 0) start_fail(st, 3, r);
    } else if (st->pgid != pgid) {
        if ((r = sys2(SYS_setpgid, 0, st->pgid == st->pid ? 0 : st->pgid)) < 0) start_fail(st, 3, r);
        if (st->foreground) {    /* every signal is blocked still: no SIGTTOU */
            long tty = sys4(SYS_openat, -100, "/dev/tty", 02 | 0400 | 02000000 /* O_RDWR|O_NOCTTY|O_CLOEXEC */, 0);
            if (tty >= 0) {
                int32_t pg = st->pgid;
                sys3(SYS_ioctl, tty, TIOCSPGRP, &pg);
                sys1(SYS_close, tty);
            }
        }
    }
    if (st->ngroups >= 0 && (r = sys2(SYS_setgroups, st->ngroups, st->groups)) < 0) start_fail(st, 4, r);
    if ((r = sys3(SYS_setresgid, st->gid[0], st->gid[1], st->gid[2])) < 0) start_fail(st, 4, r);
    if ((r = sys3(SYS_setresuid, st->uid[0], st->uid[1], st->uid[2])) < 0) start_fail(st, 4, r);
    /* Dispositions as execve leaves them: handled -> default, ignored stays. */
    colo_set_start_dispositions(st->ignored, 0);
    sys5(SYS_prctl, PR_SET_NAME, ns->comm, 0, 0, 0);
    sys2(SYS_arch_prctl, ARCH_SET_FS, 0);
    sys2(SYS_arch_prctl, ARCH_SET_GS, 0);
    uint64_t mask = st->mask & ~SIGBIT(SIGSYS);
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &mask, 0, 8);
    colo_trace_enable_here();
    if (colo_trace_on()) colo_trace_result(0);    /* the forked child's exec */
    colo_jump(ns->entry, ns->initial_sp);
}

/* Recreate `pid` in the shared mm as a child of this thread group; *pidfd
 * names the new process. */
static long spawn_with_pid(int32_t index, int32_t pid, int32_t *pidfd)
{
    struct colo_slot *ns = colo_slot_at((uint64_t)index);
    long r = -EEXIST;
    /* The PID is free once the old child is released; an autoreaped child
     * may take a moment longer. */
    for (int i = 0; i < 2000 && r == -EEXIST; i++) {
        r = colo_clone_on_start_stack(ns, recolo_child_main, pid, pidfd);
        if (r == -EEXIST) pause_us(100);
    }
    return r;
}

/* ---- the helper thread ---------------------------------------------------------- */

/* The pidfs inode of the process `pidfd` names (0 if none). */
static uint64_t pidfs_ino(long pidfd)
{
    struct stat st;
    return sys2(SYS_fstat, pidfd, &st) == 0 ? st.st_ino : 0;
}

/* Record the hand-over of `pid` (`pidfd` names the old child, which has not
 * exited yet) for the parent's pidfds naming the old child. */
static struct colo_recolo_pidfd *record_old_child(struct colo_recolo_area *a, int32_t pid, long pidfd)
{
    uint64_t ino = pidfs_ino(pidfd);
    if (!ino) return 0;
    struct colo_recolo_pidfd *e = &a->pidfds[a->pidfd_next % COLO_RECOLO_PIDFDS];
    store64(&e->old_ino, 0);              /* readers skip it while it changes */
    store64(&e->new_ino, 0);
    __atomic_store_n(&e->pid, pid, __ATOMIC_RELEASE);
    store64(&e->old_ino, ino);
    store(&a->pidfd_next, a->pidfd_next + 1);
    return e;
}

static int autoreaps(void)
{
    struct kernel_sigaction cur;
    if (sys4(SYS_rt_sigaction, SIGCHLD, 0, &cur, 8) < 0) return 0;
    return cur.handler == (uint64_t)SIG_IGN || (cur.flags & SA_NOCLDWAIT);
}

/* The old child's close-on-exec descriptors, held by this process from
 * before the old child exits until the new process exists. */
#define HELD_MAX 64
struct held { int32_t fd[HELD_MAX]; int n; };

static int is_cloexec_in(long fdinfo_dir, const char *name)
{
    char buf[256];
    long fd = sys4(SYS_openat, fdinfo_dir, name, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) return 0;
    long n = sys3(SYS_read, fd, buf, sizeof buf - 1);
    sys1(SYS_close, fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    for (char *p = buf; *p; p++) {             /* "flags:\t02000002": octal open flags */
        if ((p == buf || p[-1] == '\n') && p[0] == 'f' && p[1] == 'l' && p[2] == 'a' && p[3] == 'g' &&
            p[4] == 's' && p[5] == ':') {
            unsigned long flags = 0;
            for (p += 6; *p == '\t' || *p == ' '; p++) {}
            for (; *p >= '0' && *p <= '7'; p++) flags = flags * 8 + (unsigned long)(*p - '0');
            return (flags & O_CLOEXEC) != 0;
        }
    }
    return 0;
}

/* A real execve closes the close-on-exec descriptors once the new program
 * is certain; a parent may wait for that (GLib's spawn reads a close-on-exec
 * pipe to its end) and then open a pidfd on the PID, which must name the
 * new process by then, not the exiting old child nor nothing (reaped).  So
 * this process takes copies of them (`pidfd` names the old child) and
 * drops them once the new process exists. */
static void hold_cloexec_fds(int32_t pid, long pidfd, struct held *h)
{
    char path[32] = "/proc/", digits[12];
    int nd = 0, len = 6;
    for (uint32_t v = (uint32_t)pid; v || !nd; v /= 10) digits[nd++] = (char)('0' + v % 10);
    while (nd) path[len++] = digits[--nd];
    colo_memcpy(path + len, "/fdinfo", 8);
    long dir = sys4(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dir < 0) return;
    char buf[2048];
    long n;
    while (h->n < HELD_MAX && (n = sys3(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n && h->n < HELD_MAX;) {
            unsigned short reclen = *(unsigned short *)(buf + off + offsetof(struct dirent64, d_reclen));
            const char *name = buf + off + offsetof(struct dirent64, d_name);
            off += reclen;
            if (name[0] < '0' || name[0] > '9' || !is_cloexec_in(dir, name)) continue;
            long fd = 0;
            for (const char *p = name; *p; p++) fd = fd * 10 + (*p - '0');
            long copy = sys3(SYS_pidfd_getfd, pidfd, fd, 0);     /* close-on-exec here too */
            if (copy >= 0) h->fd[h->n++] = (int32_t)copy;
        }
    }
    sys1(SYS_close, dir);
}

static void serve(struct colo_recolo_area *a, struct colo_recolo_request *q)
{
    int32_t pid = q->pid;
    struct colo_recolo_pidfd *e = 0;
    struct held held;
    colo_memset(&held, 0, sizeof held);     /* not an initializer: the compiler would call memset */
    long old_pidfd = sys2(SYS_pidfd_open, pid, 0);
    if (old_pidfd >= 0) {
        e = record_old_child(a, pid, old_pidfd);
        hold_cloexec_fds(pid, old_pidfd, &held);
        sys1(SYS_close, old_pidfd);
    }
    /* Park SIGCHLD: the old child's exit must not reach the parent's handler.
     * (The default disposition discards it without reaping the child.) */
    struct kernel_sigaction old, dfl;
    colo_memset(&dfl, 0, sizeof dfl);
    int parked = 0;
    if (sys4(SYS_rt_sigaction, SIGCHLD, 0, &old, 8) == 0 && old.handler != (uint64_t)SIG_DFL &&
        old.handler != (uint64_t)SIG_IGN && !(old.flags & SA_NOCLDWAIT)) {
        sys4(SYS_rt_sigaction, SIGCHLD, &dfl, 0, 8);
        parked = 1;
    }
    store(&q->state, COLO_RQ_PARKED);
    long r = sys6(COLO_SYS_exec, COLO_EXEC_RECOLO_PARKED, pid, 0, 0, 0, 0);
    if (r == 0) {
        uint8_t si[128];
        long w = sys5(SYS_waitid, P_PID, pid, si, WEXITED | __WALL, 0);
        if (w == -ECHILD && !autoreaps()) {
            /* The parent's own wait reaped it: it says so right after. */
            for (int i = 0; i < 100 && !load(&q->reaped); i++) futex_wait(&q->reaped, 0, 20);
        }
    }
    /* If the parent had SIGCHLD blocked, the kernel queued it anyway: take it
     * back (this thread blocks it too, and the queue is the process's). */
    int drained = 0;
    uint64_t chld = SIGBIT(SIGCHLD);
    struct ts zero = { 0, 0 };
    uint8_t dsi[128];
    if (sys4(SYS_rt_sigtimedwait, &chld, dsi, &zero, 8) == SIGCHLD) drained = *(int32_t *)(dsi + 16) == pid ? 1 : 2;
    if (parked) {
        struct kernel_sigaction cur;
        if (sys4(SYS_rt_sigaction, SIGCHLD, 0, &cur, 8) == 0 && cur.handler == (uint64_t)SIG_DFL)
            sys4(SYS_rt_sigaction, SIGCHLD, &old, 0, 8);
    }
    if (drained == 2) sys2(SYS_kill, sys0(SYS_getpid), SIGCHLD);     /* another child's: give it back */
    if (r == 0) {
        int32_t pidfd = -1;
        long c = spawn_with_pid(q->slot, pid, &pidfd);
        if (c < 0) sys6(COLO_SYS_exec, COLO_EXEC_RECOLO_FAILED, pid, c, 0, 0, 0);
        else {
            __atomic_add_fetch(&a->swaps, 1, __ATOMIC_RELAXED);
            if (e) store64(&e->new_ino, pidfs_ino(pidfd));
            sys1(SYS_close, pidfd);
        }
    }
    for (int i = 0; i < held.n; i++) sys1(SYS_close, held.fd[i]);
    if (parked || drained) {
        /* A SIGCHLD of another child discarded while parked (or merged with
         * the one taken back): raise one. */
        uint8_t si[128];
        colo_memset(si, 0, sizeof si);
        long w = sys5(SYS_waitid, P_ALL, 0, si, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT, 0);
        if (w == 0 && *(int32_t *)(si + 16) != 0) sys2(SYS_kill, sys0(SYS_getpid), SIGCHLD);
    }
    store(&q->state, COLO_RQ_FREE);
    __atomic_sub_fetch(&a->in_flight, 1, __ATOMIC_ACQ_REL);
    futex_wake(&a->in_flight);
}

static void helper_main(void *arg)
{
    struct colo_slot *s = arg;
    struct colo_recolo_area *a = area_of(s);
    uint64_t all = ~0ULL;
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);
    sys5(SYS_prctl, PR_SET_NAME, "colo-recolo", 0, 0, 0);
    for (;;) {
        uint32_t seq = load(&a->seq);
        int served = 0;
        for (int i = 0; i < COLO_RECOLO_REQUESTS; i++)
            if (load(&a->req[i].state) == COLO_RQ_REQUESTED) { serve(a, &a->req[i]); served = 1; }
        if (served) continue;
        if (load(&a->helper_state) == COLO_HELPER_QUIT) return;     /* SYS_exit clears helper_tid */
        futex_wait(&a->seq, seq, 0);
    }
}

void colo_recolo_ensure_helper(struct colo_slot *s)
{
    long pid = sys0(SYS_getpid);
    /* Not in a vfork child sharing its parent's slot.  (owner_pid is still 0
     * while the runtime finishes starting the slot's first process.) */
    if (s->owner_pid != pid && s->owner_pid != 0) return;
    struct colo_recolo_area *a = area_of(s);
    if (colo_recolo_helper_alive(s, (int32_t)pid)) return;
    uint32_t expect = COLO_HELPER_NONE;
    if (!__atomic_compare_exchange_n(&a->helper_state, &expect, COLO_HELPER_STARTING, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return;                                /* another thread is starting it */
    colo_memset(a->req, 0, sizeof a->req);
    store(&a->in_flight, 0);
    a->helper_tgid = (int32_t)pid;
    long t = colo_clone_start(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                              CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID,
                              (char *)s + COLO_RECOLO_STACK_TOP, &a->helper_tid, helper_main, s);
    if (t < 0) { store(&a->helper_state, COLO_HELPER_NONE); return; }
    __atomic_store_n(&a->helper_tid, (int32_t)t, __ATOMIC_RELEASE);
    store(&a->helper_state, COLO_HELPER_RUNNING);
}

void colo_recolo_stop_helper(struct colo_slot *s)
{
    struct colo_recolo_area *a = area_of(s);
    if (a->helper_tgid != (int32_t)sys0(SYS_getpid) || load(&a->helper_state) != COLO_HELPER_RUNNING) return;
    store(&a->helper_state, COLO_HELPER_QUIT);
    __atomic_add_fetch(&a->seq, 1, __ATOMIC_ACQ_REL);
    futex_wake(&a->seq);
    int32_t t;
    while ((t = __atomic_load_n(&a->helper_tid, __ATOMIC_ACQUIRE)) != 0)
        futex_wait((uint32_t *)&a->helper_tid, (uint32_t)t, 0);
    colo_memset(a, 0, offsetof(struct colo_recolo_area, pidfd_next));
}

void colo_recolo_reset(struct colo_slot *s)
{
    colo_memset(area_of(s), 0, sizeof(struct colo_recolo_area));
}

/* ---- the forked child's execve -------------------------------------------------- */

/* Where kept_fds collects descriptors. */
struct fd_list { int32_t *fds; long count, max; };

static int keep_unless_cloexec(long fd, long flags, void *ctx)
{
    struct fd_list *l = ctx;
    if (flags & 1 /* FD_CLOEXEC */) return 0;
    if (l->count == l->max) { l->count = -1; return 1; }
    l->fds[l->count++] = (int32_t)fd;
    return 0;
}

/* The descriptors execve keeps (not close-on-exec), into fds[0..max); the
 * count, or -1 if they do not fit (the runtime then looks for itself). */
static long kept_fds(int32_t *fds, long max)
{
    struct fd_list l = { fds, 0, max };
    return colo_each_fd(keep_unless_cloexec, &l) < 0 ? -1 : l.count;
}

long colo_recolocate(ucontext_t *uc, long dirfd, long path, long argv, long envp, long flags)
{
    uint64_t mask = ((uint64_t *)&uc->uc_sigmask)[0] & ~SIGBIT(SIGSYS);
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &mask, 0, 8);     /* handlers may run while we wait */
    int32_t fds[256];
    long nfds = kept_fds(fds, 256);
    long r;
    do r = sys6(COLO_SYS_exec, COLO_EXEC_RECOLO_COMMIT, (long)mask, (long)fds, nfds, 0, 0);
    while (r == -EINTR);                     /* the runtime knows a repeated commit */
    if (r == 0) {
        /* The runtime holds our descriptors and the program; the helper takes
         * our PID over once we are gone. */
        for (;;) sys1(SYS_exit_group, 0);
    }
    /* Nothing irreversible happened: a real execve, as CheriBSD retries. */
    return sys5(SYS_execveat, dirfd, path, argv, envp, flags);
}

/* ---- the parent's wait calls ---------------------------------------------------- */

static struct colo_recolo_request *swapping(struct colo_recolo_area *a, int32_t pid)
{
    for (int i = 0; i < COLO_RECOLO_REQUESTS; i++)
        if (load(&a->req[i].state) != COLO_RQ_FREE && a->req[i].pid == pid) return &a->req[i];
    return 0;
}

static long put_guest(uint64_t dst, const void *src, unsigned long n)
{
    if (!dst) return 0;
    struct { const void *b; unsigned long n; } l = { src, n }, r = { (void *)dst, n };
    long got = sys6(SYS_process_vm_writev, sys0(SYS_getpid), (long)&l, 1, (long)&r, 1, 0);
    return got == (long)n ? 0 : -14;
}

/* A pidfd opened on a forked child before its hand-over names the old,
 * reaped process: make descriptor `fd` name the process that took its PID
 * (with the same flags), if that one is still this process's child. */
static void renew_pidfd(struct colo_recolo_area *a, long fd)
{
    if (!load(&a->pidfd_next)) return;
    struct stat st;
    if (sys2(SYS_fstat, fd, &st) < 0) return;
    for (int i = 0; i < COLO_RECOLO_PIDFDS; i++) {
        struct colo_recolo_pidfd *e = &a->pidfds[i];
        if (load64(&e->old_ino) != st.st_ino) continue;
        int32_t pid = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);
        uint64_t new_ino = load64(&e->new_ino);
        if (!new_ino || load64(&e->old_ino) != st.st_ino) return;
        long fl = sys2(SYS_fcntl, fd, F_GETFL), fdfl = sys2(SYS_fcntl, fd, F_GETFD);
        if (fl < 0 || fdfl < 0) return;
        long nfd = sys2(SYS_pidfd_open, pid, fl & PIDFD_NONBLOCK);
        if (nfd < 0) return;                   /* gone: already reaped, as natively ECHILD */
        struct stat ns;
        /* The same file system (fd is a pidfd) and N itself (not a later process with its PID). */
        if (sys2(SYS_fstat, nfd, &ns) == 0 && ns.st_dev == st.st_dev && ns.st_ino == new_ino)
            sys3(SYS_dup3, nfd, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
        sys1(SYS_close, nfd);
        return;
    }
}

long colo_do_wait(struct colo_slot *s, ucontext_t *uc, int nr)
{
    greg_t *g = uc->uc_mcontext.gregs;
    struct colo_recolo_area *a = area_of(s);
    int by_pidfd = nr == SYS_waitid && g[REG_RDI] == P_PIDFD;
    if (load(&a->helper_state) == COLO_HELPER_NONE || a->helper_tgid != (int32_t)sys0(SYS_getpid)) {
        if (by_pidfd) renew_pidfd(a, g[REG_RSI]);
        return sys6(nr, g[REG_RDI], g[REG_RSI], g[REG_RDX], g[REG_R10], g[REG_R8], g[REG_R9]);
    }
    /* We may sleep: let the guest's own handlers make trapped calls meanwhile. */
    uint64_t m = ((uint64_t *)&uc->uc_sigmask)[0] & ~SIGBIT(SIGSYS);
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &m, 0, 8);
    int w4 = nr == SYS_wait4;
    long options = w4 ? g[REG_RDX] : g[REG_R10];
    uint64_t out = (uint64_t)(w4 ? g[REG_RSI] : g[REG_RDX]), ru = (uint64_t)(w4 ? g[REG_R10] : g[REG_R8]);
    for (;;) {
        uint32_t f;
        while ((f = load(&a->in_flight)) != 0) {        /* a hand-over in progress: its end first */
            long r = futex_wait(&a->in_flight, f, 2000);
            if (r == -EINTR) return r;
            if (r == -ETIMEDOUT) break;
        }
        /* Every request is posted (seq bumped) before its child may exit. */
        uint32_t seq = load(&a->seq);
        if (by_pidfd) renew_pidfd(a, g[REG_RSI]);
        int32_t status = 0;
        uint8_t si[128], usage[144];
        colo_memset(si, 0, sizeof si);
        long r = w4 ? sys4(SYS_wait4, g[REG_RDI], &status, options, usage)
                    : sys5(SYS_waitid, g[REG_RDI], g[REG_RSI], si, options, usage);
        int32_t pid = w4 ? (int32_t)r : (r == 0 ? *(int32_t *)(si + 16) : 0);
        struct colo_recolo_request *q = pid > 0 ? swapping(a, pid) : 0;
        if (q) {                                        /* the old child's exit: not the parent's business */
            if (!(options & WNOWAIT)) { store(&q->reaped, 1); futex_wake(&q->reaped); }
            else futex_wait(&a->in_flight, load(&a->in_flight), 50);
            continue;
        }
        /* No child (the helper reaped the old one) or none ready, while a
         * hand-over ran: ask again once it is over. */
        if ((r == -ECHILD || (r == 0 && pid == 0)) && (load(&a->in_flight) != 0 || load(&a->seq) != seq)) continue;
        if (r < 0) return r;
        if (w4 && r > 0 && put_guest(out, &status, 4) < 0) return -14;
        if (!w4 && put_guest(out, si, 28) < 0) return -14;
        if ((w4 ? r > 0 : 1) && put_guest(ru, usage, sizeof usage) < 0) return -14;
        return r;
    }
}
