/* claims.c - test guest for README claims that had no test: signals held while a thread borrows, SIGSYS through sigsuspend, the slot and process limits, MAP_32BIT, rseq/clone3, a full trace ring.
 * Verbs (key=value lines; run natively too, as the positive control where a verb tests a refusal):
 *   borrow_signal   a caller thread's SIGUSR1 arrives while it borrows a callee's context (same
 *                   process, callee spinning in its code): where and when the handler runs
 *   sigsuspend      sigsuspend with every signal but SIGUSR2 blocked: the mask seen in /proc while
 *                   it waits, and a SIGUSR2 handler that makes a trapped call (mmap) inside it
 *   limits          MAP_32BIT, a 65 GiB mmap, 1 GiB mappings until one fails (at most 100), rseq, clone3
 *   fill PROGRAM    posix_spawn PROGRAM wait until a child is refused or not in this mm (kcmp), at most 300
 *   wait            read standard input until EOF
 *   ring N          print pid= and ready, wait for SIGUSR1, print burst, make N getppid calls, print done
 * Build: cc -I Sources/GuestAPI/include -I Sources/ABI/include claims.c Sources/GuestAPI/colo.c Sources/GuestAPI/syscall.c -pthread */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/kcmp.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <colo.h>

#define SLOT(p) ((uintptr_t)(p) >> 36)
#define GiB (1ULL << 30)

static const char *ename(int e)
{
    switch (e) {
    case 0: return "OK";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case ENOSYS: return "ENOSYS";
    case EAGAIN: return "EAGAIN";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EPERM: return "EPERM";
    default: return "E?";
    }
}

/* The 64-bit mask of a /proc status line ("SigPnd:", "SigBlk:") of thread `tid`. */
static uint64_t status_mask(pid_t tid, const char *key)
{
    char path[64], line[256];
    uint64_t v = 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/status", tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = strtoull(line + strlen(key), NULL, 16);
    fclose(f);
    return v;
}
#define BIT(sig) (1ULL << ((sig) - 1))

/* ---- borrow_signal ---- */
static void *bs_target;
static volatile int bs_started, bs_release;
static pid_t bs_caller_tid;
static __thread int bs_tls;
static volatile int bs_runs, bs_released_at_run;
static volatile uintptr_t bs_sp, bs_tls_at_run;
static int bs_delivered, bs_held;

static void bs_handler(int sig)
{
    (void)sig;
    int local;
    bs_sp = (uintptr_t)&local;
    bs_tls_at_run = (uintptr_t)&bs_tls;
    bs_released_at_run = bs_release;
    bs_runs++;
}

static void *bs_callee(void *arg)
{
    (void)arg;
    uint64_t in[2], out[1] = { 42 };
    size_t outlen = 0;
    void *t = NULL;
    if (cosetup(COSETUP_COACCEPT) != 0 || coregister(NULL, &t) != 0) { printf("callee=%s\n", ename(errno)); exit(1); }
    __atomic_store_n(&bs_target, t, __ATOMIC_RELEASE);
    for (;;) {
        if (coaccept(NULL, out, outlen, in, sizeof in) < 0) { outlen = 0; continue; }
        /* callee code, run on the caller's thread: no system call, so no unborrow */
        bs_started = 1;
        while (!bs_release) __builtin_ia32_pause();
        outlen = sizeof out;
    }
    return NULL;
}

static void *bs_signaller(void *arg)
{
    (void)arg;
    while (!bs_started) usleep(1000);
    syscall(SYS_tgkill, getpid(), bs_caller_tid, SIGUSR1);
    /* the kernel delivered it (to the switcher's dispatcher) once it is no longer pending */
    for (int i = 0; i < 5000 && !bs_delivered; i++) {
        if (!((status_mask(bs_caller_tid, "SigPnd:") | status_mask(bs_caller_tid, "ShdPnd:")) & BIT(SIGUSR1)))
            bs_delivered = 1;
        else
            usleep(1000);
    }
    bs_held = bs_delivered && bs_runs == 0;
    bs_release = 1;
    return NULL;
}

static int borrow_signal(void)
{
    pthread_attr_t a;
    void *stack;
    size_t size;
    pthread_getattr_np(pthread_self(), &a);
    pthread_attr_getstack(&a, &stack, &size);
    bs_caller_tid = (pid_t)syscall(SYS_gettid);
    signal(SIGUSR1, bs_handler);
    if (cosetup(COSETUP_COCALL) != 0) { printf("cosetup=%s\n", ename(errno)); return 1; }
    pthread_t c, s;
    pthread_create(&c, NULL, bs_callee, NULL);
    while (__atomic_load_n(&bs_target, __ATOMIC_ACQUIRE) == NULL) usleep(1000);
    pthread_create(&s, NULL, bs_signaller, NULL);
    uint64_t out[2] = { 1, 2 }, in[1] = { 0 };
    ssize_t n;
    while ((n = cocall(bs_target, out, sizeof out, in, sizeof in)) < 0 && errno == EINTR) {}
    pthread_join(s, NULL);
    printf("cocall=%ld\nreply=%lu\ndelivered_while_borrowing=%d\nheld_while_borrowing=%d\n", (long)n,
           (unsigned long)in[0], bs_delivered, bs_held);
    printf("handler_runs=%d\nhandler_after_release=%d\nhandler_on_own_stack=%d\nhandler_own_tls=%d\n", bs_runs,
           bs_released_at_run, bs_sp >= (uintptr_t)stack && bs_sp < (uintptr_t)stack + size,
           bs_tls_at_run == (uintptr_t)&bs_tls);
    return 0;
}

/* ---- sigsuspend ---- */
static pid_t ss_main_tid;
static volatile int ss_got, ss_mmap_in_slot = -1;
static uintptr_t ss_own_slot;
static int ss_mask_seen, ss_sigsys_blocked = -1;

static void ss_handler(int sig)
{
    (void)sig;
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ss_mmap_in_slot = m != MAP_FAILED && SLOT(m) == ss_own_slot;
    ss_got = 1;
}

static void *ss_waker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5000 && !ss_mask_seen; i++) {
        uint64_t blk = status_mask(ss_main_tid, "SigBlk:");
        if (blk & BIT(SIGUSR1)) {       /* sigsuspend's mask is in force */
            ss_mask_seen = 1;
            ss_sigsys_blocked = (blk & BIT(SIGSYS)) != 0;
        } else {
            usleep(1000);
        }
    }
    syscall(SYS_tgkill, getpid(), ss_main_tid, SIGUSR2);
    return NULL;
}

static int suspend(void)
{
    int local;
    ss_own_slot = SLOT(&local);
    ss_main_tid = (pid_t)syscall(SYS_gettid);
    struct sigaction sa = { .sa_handler = ss_handler };
    sigaction(SIGUSR2, &sa, NULL);
    sigset_t usr2, wait_mask;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);    /* SIGUSR2 only arrives inside sigsuspend */
    sigfillset(&wait_mask);
    sigdelset(&wait_mask, SIGUSR2);
    pthread_t w;
    pthread_create(&w, NULL, ss_waker, NULL);
    while (!ss_got) sigsuspend(&wait_mask);
    pthread_join(w, NULL);
    printf("suspend_mask_seen=%d\nsigsys_blocked_in_sigsuspend=%d\nhandler_mmap_in_slot=%d\n", ss_mask_seen,
           ss_sigsys_blocked, ss_mmap_in_slot);
    return 0;
}

/* ---- limits ---- */
static int limits(void)
{
    int local;
    uintptr_t own = SLOT(&local);
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    printf("map32=%s\n", m == MAP_FAILED ? ename(errno) : "OK");
    m = mmap(NULL, 65 * GiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    printf("map65g=%s\n", m == MAP_FAILED ? ename(errno) : "OK");
    if (m != MAP_FAILED) munmap(m, 65 * GiB);
    int chunks = 0, in_slot = 1;
    while (chunks < 100) {
        m = mmap(NULL, GiB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) break;
        chunks++;
        if (SLOT(m) != own || SLOT((char *)m + GiB - 1) != own) in_slot = 0;
    }
    printf("gib_chunks=%d\nchunks_in_own_slot=%d\n", chunks, in_slot);
    long r = syscall(SYS_rseq, NULL, 0, 0, 0);
    printf("rseq=%s\n", r < 0 ? ename(errno) : "OK");
    r = syscall(SYS_clone3, NULL, 0);
    printf("clone3=%s\n", r < 0 ? ename(errno) : "OK");
    return 0;
}

/* ---- fill ---- */
static int fill(const char *program)
{
    extern char **environ;
    int p[2];
    if (pipe(p) != 0) return 1;
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    char *argv[] = { (char *)program, "wait", NULL };
    int colocated = 0;
    const char *next = "none";
    for (int i = 0; i < 300; i++) {
        pid_t child;
        int e = posix_spawn(&child, program, &fa, NULL, argv, environ);
        if (e) { next = ename(e); break; }
        if (syscall(SYS_kcmp, getpid(), child, KCMP_VM, 0, 0) != 0) { next = "outside"; break; }
        colocated++;
    }
    close(p[1]);
    while (wait(NULL) > 0) {}
    printf("colocated_children=%d\nnext=%s\n", colocated, next);
    return 0;
}

/* ---- ring ---- */
static volatile sig_atomic_t ring_go;
static void ring_usr1(int sig) { (void)sig; ring_go = 1; }

static int ring(long n)
{
    signal(SIGUSR1, ring_usr1);
    printf("pid=%d\nready\n", getpid());
    while (!ring_go) pause();
    printf("burst\n");
    for (long i = 0; i < n; i++) syscall(SYS_getppid);
    printf("done\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *verb = argc > 1 ? argv[1] : "";
    if (!strcmp(verb, "borrow_signal")) return borrow_signal();
    if (!strcmp(verb, "sigsuspend")) return suspend();
    if (!strcmp(verb, "limits")) return limits();
    if (!strcmp(verb, "fill") && argc > 2) return fill(argv[2]);
    if (!strcmp(verb, "wait")) { char b[64]; while (read(0, b, sizeof b) > 0) {} return 0; }
    if (!strcmp(verb, "ring") && argc > 2) return ring(atol(argv[2]));
    fprintf(stderr, "claims: unknown verb %s\n", verb);
    return 2;
}
