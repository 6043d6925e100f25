/* probe.c - a guest program for the runtime's integration tests.  Each verb
 * does one thing a colocated process might do and prints key=value lines the
 * tests check.  Build: cc [-static-pie] probe.c -o probe */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <time.h>
#include <spawn.h>

#define SLOT(p) ((uintptr_t)(p) >> 36)

static const char *ename(int e)
{
    switch (e) {
    case 0: return "OK";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case EPERM: return "EPERM";
    case EFAULT: return "EFAULT";
    case ESRCH: return "ESRCH";
    case ENOENT: return "ENOENT";
    case ENOEXEC: return "ENOEXEC";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case E2BIG: return "E2BIG";
    case ENOSYS: return "ENOSYS";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EPROTO: return "EPROTO";
    case ECHILD: return "ECHILD";
    default: return "E?";
    }
}

static void report(const char *what, long r)
{
    printf("%s=%s\n", what, r == -1 || r == (long)MAP_FAILED ? ename(errno) : "OK");
}

/* The parent-death signal (natively 0: nothing sets one). */
static int prctl_pdeathsig(void)
{
    int sig = -1;
    prctl(PR_GET_PDEATHSIG, &sig);
    return sig;
}

static volatile sig_atomic_t got;
static void on_usr1(int s) { (void)s; got = 1; }

/* State that execve must handle, for "state" in the next program to show: a
 * descriptor to keep (KEEP_FD) and a close-on-exec one (DROP_FD), SIGUSR1
 * handled, SIGUSR2 ignored, SIGHUP blocked. */
static void set_exec_state(void)
{
    int keep = open("/dev/null", O_RDONLY), drop = open("/dev/null", O_RDONLY | O_CLOEXEC);
    char k[16], d[16];
    snprintf(k, sizeof k, "%d", keep);
    snprintf(d, sizeof d, "%d", drop);
    setenv("KEEP_FD", k, 1);
    setenv("DROP_FD", d, 1);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, SIG_IGN);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGHUP);
    sigprocmask(SIG_BLOCK, &m, NULL);
}
static volatile sig_atomic_t chld_count;
static volatile pid_t chld_pid;
static void on_chld(int s, siginfo_t *si, void *u) { (void)s; (void)u; chld_count++; chld_pid = si->si_pid; }

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *verb = argc > 1 ? argv[1] : "info";
    uintptr_t own = SLOT(&argc);

    if (!strcmp(verb, "info")) {
        char *heap = malloc(100);
        void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("pid=%d\nppid=%d\nslot=%lx\ncode_slot=%lx\nheap_slot=%lx\nmmap_slot=%lx\n", getpid(), getppid(),
               (unsigned long)own, (unsigned long)SLOT(main), (unsigned long)SLOT(heap), (unsigned long)SLOT(m));
        for (int i = 2; i < argc; i++) printf("arg%d=%s\n", i, argv[i]);
        printf("AT_BASE=%lx\nAT_CAPC=%lu\nAT_CAPV=%lx\n", getauxval(AT_BASE), getauxval(37), getauxval(38));
        unsigned char *rnd = (unsigned char *)getauxval(AT_RANDOM);
        printf("AT_RANDOM=");
        for (int i = 0; i < 16; i++) printf("%02x", rnd[i]);
        printf("\nAT_EXECFN=%s\nAT_PAGESZ=%lu\n", (char *)getauxval(AT_EXECFN), getauxval(AT_PAGESZ));
        return 0;
    }
    if (!strcmp(verb, "exit")) return atoi(argv[2]);
    if (!strcmp(verb, "exit_group")) { syscall(SYS_exit_group, atoi(argv[2])); }
    if (!strcmp(verb, "heap")) {
        /* many small (brk) and large (mmap) allocations, all inside the slot */
        int n = argc > 2 ? atoi(argv[2]) : 1000, bad = 0;
        void *start = sbrk(0);
        for (int i = 0; i < n; i++) {
            size_t sz = (i % 10 == 0) ? 300000 + i : 24 + i % 200;
            char *p = malloc(sz);
            if (!p || SLOT(p) != own) bad++;
            memset(p, i & 0xff, sz);
            if (i % 3) free(p);
        }
        void *big = realloc(malloc(1 << 20), 64 << 20);   /* mremap(MAYMOVE) */
        if (!big || SLOT(big) != own) bad++;
        printf("brk_slot=%lx\nbrk_grew=%d\nbad=%d\n", (unsigned long)SLOT(start), sbrk(0) > start, bad);
        return bad != 0;
    }
    if (!strcmp(verb, "foreign")) {           /* another process's (or the runtime's) memory */
        void *a = (void *)strtoull(argv[2], NULL, 16);
        report("munmap", munmap(a, 4096));
        report("mprotect", mprotect(a, 4096, PROT_NONE));
        report("madvise", madvise(a, 4096, MADV_DONTNEED));
        report("mremap", (long)mremap(a, 4096, 8192, MREMAP_MAYMOVE));
        report("mmap_fixed", (long)mmap(a, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
        report("mmap_noreplace", (long)mmap(a, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
        return 0;
    }
    if (!strcmp(verb, "own")) {               /* the same calls on its own memory work */
        char *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        report("mprotect", mprotect(p, 4096, PROT_READ));
        report("madvise", madvise(p, 4096, MADV_DONTNEED));
        report("mmap_fixed", (long)mmap(p, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
        report("munmap", munmap(p, 8192));
        return 0;
    }
    if (!strcmp(verb, "hold")) {              /* map a page, print it, wait for SIGUSR1, check it */
        char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        strcpy(p, "intact");
        signal(SIGUSR1, on_usr1);
        printf("pid=%d\naddr=%lx\nready\n", getpid(), (unsigned long)p);
        while (!got) pause();
        printf("content=%s\n", p);
        return 0;
    }
    if (!strcmp(verb, "handler")) {           /* a SIGUSR1 handler of its own */
        signal(SIGUSR1, on_usr1);
        printf("pid=%d\nready\n", getpid());
        while (!got) pause();
        printf("handled=1\n");
        return 0;
    }
    if (!strcmp(verb, "segv")) {
        struct rlimit rl = { 0, 0 };
        if (argc > 2 && !strcmp(argv[2], "core")) {
            rl.rlim_cur = rl.rlim_max = RLIM_INFINITY;
            if (chdir("/tmp") != 0) return 3;             /* the core file lands in the cwd */
        }
        setrlimit(RLIMIT_CORE, &rl);
        *(volatile int *)8 = 1;
        return 0;
    }
    if (!strcmp(verb, "setuid")) {
        report("setuid", setuid(atoi(argv[2])));
        printf("uid=%d\n", getuid());
        pause();
        return 0;
    }
    if (!strcmp(verb, "close1")) { close(1); fprintf(stderr, "closed\n"); pause(); return 0; }
    if (!strcmp(verb, "chdir")) {
        report("chdir", chdir(argv[2]));
        char buf[4096];
        printf("cwd=%s\n", getcwd(buf, sizeof buf));
        pause();
        return 0;
    }
    if (!strcmp(verb, "cwd")) { char buf[4096]; printf("cwd=%s\nuid=%d\n", getcwd(buf, sizeof buf), getuid()); return 0; }
    if (!strcmp(verb, "sigmask")) {           /* blocking everything must not block SIGSYS */
        sigset_t all, cur;
        sigfillset(&all);
        sigprocmask(SIG_BLOCK, &all, NULL);
        sigprocmask(SIG_BLOCK, NULL, &cur);
        void *m = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        printf("sigsys_blocked=%d\nusr1_blocked=%d\nmmap_slot_ok=%d\n", sigismember(&cur, SIGSYS),
               sigismember(&cur, SIGUSR1), m != MAP_FAILED && SLOT(m) == own);
        struct sigaction sa = { .sa_handler = on_usr1 };
        sigfillset(&sa.sa_mask);
        sigaction(SIGUSR2, &sa, NULL);
        struct sigaction back;
        sigaction(SIGUSR2, NULL, &back);
        printf("handler_mask_sigsys=%d\n", sigismember(&back.sa_mask, SIGSYS));
        struct sigaction sys = { .sa_handler = on_usr1 }, sysback;
        report("sigaction_sigsys", sigaction(SIGSYS, &sys, NULL));
        sigaction(SIGSYS, NULL, &sysback);
        printf("sigsys_handler_recorded=%d\n", sysback.sa_handler == on_usr1);
        void *m2 = malloc(1 << 20);
        printf("malloc_after=%d\n", m2 != NULL && SLOT(m2) == own);
        return 0;
    }
    if (!strcmp(verb, "seccomp")) {           /* a guest filter of its own: getppid -> EPERM */
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = { 4, f };
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        report("seccomp", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog));
        report("getppid", syscall(SYS_getppid));
        void *m = malloc(1 << 20);
        printf("malloc_ok=%d\n", m != NULL && SLOT(m) == own);
        return 0;
    }
    if (!strcmp(verb, "execstate")) {         /* exec PROGRAM ARGS... with state execve must handle */
        set_exec_state();
        printf("pid=%d\n", getpid());
        fflush(stdout);
        execv(argv[2], argv + 2);
        return 1;
    }
    if (!strcmp(verb, "state")) {             /* what the previous program left us */
        struct sigaction a;
        sigaction(SIGUSR1, NULL, &a);
        printf("usr1_default=%d\n", a.sa_handler == SIG_DFL);
        sigaction(SIGUSR2, NULL, &a);
        printf("usr2_ignored=%d\n", a.sa_handler == SIG_IGN);
        sigset_t m;
        sigprocmask(SIG_BLOCK, NULL, &m);
        printf("hup_blocked=%d\n", sigismember(&m, SIGHUP));
        const char *k = getenv("KEEP_FD"), *d = getenv("DROP_FD");
        printf("keep_open=%d\ndrop_open=%d\n", k && fcntl(atoi(k), F_GETFD) >= 0, d && fcntl(atoi(d), F_GETFD) >= 0);
        printf("pid=%d\nslot=%lx\n", getpid(), (unsigned long)own);
        char cwd[4096];
        mode_t um = umask(0);
        struct rlimit rl;
        getrlimit(RLIMIT_NOFILE, &rl);
        printf("cwd=%s\numask=%03o\nnofile=%lu/%lu\npgid_is_pid=%d\nuid=%d\neuid=%d\nppid=%d\n", getcwd(cwd, sizeof cwd),
               (unsigned)um, (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max, getpgid(0) == getpid(),
               getuid(), geteuid(), getppid());
        return 0;
    }
    if (!strcmp(verb, "coexec") || !strcmp(verb, "coexecvec")) {
        /* coexec PID PROGRAM ARGS... / coexecvec CAPC PID PROGRAM ARGS...: coexecve(2), coexecvec(2) */
        extern char **environ;
        int vec = !strcmp(verb, "coexecvec");
        long capc = vec ? atol(argv[2]) : 0;
        char **rest = argv + 2 + vec;
        void *capv[64] = { 0 };
        for (long i = 0; i < capc && i < 64; i++) capv[i] = (void *)(0x1000 + i);
        if (getenv("COEXEC_UID") && setuid(atoi(getenv("COEXEC_UID"))) != 0) return 3;
        printf("pid=%d\n", getpid());
        fflush(stdout);
        long r = vec ? syscall(1152, atoi(rest[0]), rest[1], rest + 1, environ, capv, capc)
                     : syscall(1151, atoi(rest[0]), rest[1], rest + 1, environ);
        printf("coexec=%s\n", r == 0 ? "OK" : ename(errno));
        return 1;
    }
    if (!strcmp(verb, "exec")) {              /* exec PROGRAM ARGS...: same PID afterwards */
        printf("pid=%d\n", getpid());
        fflush(stdout);
        execv(argv[2], argv + 2);
        printf("exec=%s\n", ename(errno));
        return 1;
    }
    if (!strcmp(verb, "detach")) {            /* detach STATUS PROGRAM ARGS...: start it in a session of its own (output to /dev/null), exit STATUS */
        extern char **environ;
        pid_t child;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        posix_spawnattr_t attr;                /* a session of its own, as a daemon has */
        posix_spawnattr_init(&attr);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
        int e = posix_spawn(&child, argv[3], &fa, &attr, argv + 3, environ);
        if (e) { printf("spawn=%s\n", ename(e)); return 1; }
        printf("pid=%d\nchild=%d\npdeathsig=%d\n", getpid(), child, prctl_pdeathsig());
        return atoi(argv[2]);
    }
    if (!strcmp(verb, "vfork") || !strcmp(verb, "spawn")) {   /* start PROGRAM ARGS..., wait for it */
        extern char **environ;
        pid_t child;
        if (!strcmp(verb, "vfork")) {
            child = vfork();
            if (child == 0) { execv(argv[2], argv + 2); _exit(127); }
        } else {
            int e = posix_spawn(&child, argv[2], NULL, NULL, argv + 2, environ);
            if (e) { printf("spawn=%s\n", ename(e)); return 1; }
        }
        printf("parent=%d\nchild=%d\n", getpid(), child);
        int st;
        if (waitpid(child, &st, 0) != child) { printf("wait=%s\n", ename(errno)); return 1; }
        printf("child_status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        return 0;
    }
    if (!strcmp(verb, "fork")) {              /* fork, the child execs PROGRAM ARGS...; count SIGCHLDs */
        /* FORK_SETUP=1: the child changes what execve keeps first (see "state");
         * FORK_UID=n: and becomes user n; FORK_BLOCK=1: the parent blocks SIGCHLD
         * until it has reaped the child; FORK_WAITID: see below. */
        struct sigaction sa = { .sa_sigaction = on_chld, .sa_flags = SA_SIGINFO | SA_RESTART };
        sigaction(SIGCHLD, &sa, NULL);
        sigset_t chld, old;
        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        int block = getenv("FORK_BLOCK") != NULL;
        if (block) sigprocmask(SIG_BLOCK, &chld, &old);
        pid_t child = fork();
        if (child == 0) {
            if (getenv("FORK_SETUP")) {
                set_exec_state();
                if (chdir("/tmp") != 0) _exit(3);
                umask(027);
                struct rlimit rl = { 200, 300 };
                setrlimit(RLIMIT_NOFILE, &rl);
                setpgid(0, 0);
            }
            if (getenv("FORK_UID") && setresuid(atoi(getenv("FORK_UID")), atoi(getenv("FORK_UID")), atoi(getenv("FORK_UID"))) != 0) _exit(4);
            if (getenv("FORK_COEXEC")) {       /* coexecve(getppid() or, with "self", getpid(), ...) from the fork child */
                extern char **environ;
                long capv[2] = { 1, 2 };
                if (!strcmp(getenv("FORK_COEXEC"), "vec")) syscall(1152, getppid(), argv[2], argv + 2, environ, capv, 2L);
                else if (!strcmp(getenv("FORK_COEXEC"), "self")) syscall(1151, getpid(), argv[2], argv + 2, environ);
                else syscall(1151, getppid(), argv[2], argv + 2, environ);
            } else {
                execv(argv[2], argv + 2);
            }
            printf("exec=%s\n", ename(errno));
            _exit(1);
        }
        printf("parent=%d\nchild=%d\n", getpid(), child);
        int st;
        pid_t w;
        if (getenv("FORK_WAITID")) {       /* FORK_WAITID=pid|all: waitid(P_PID|P_ALL) instead of waitpid */
            siginfo_t si;
            memset(&si, 0, sizeof si);
            int all = !strcmp(getenv("FORK_WAITID"), "all");
            w = waitid(all ? P_ALL : P_PID, all ? 0 : (id_t)child, &si, WEXITED) == 0 ? si.si_pid : -1;
            st = si.si_code == CLD_EXITED ? (si.si_status & 0xff) << 8 : si.si_status & 0x7f;
        } else {
            w = waitpid(child, &st, 0);
        }
        if (w != child) { printf("wait=%s\n", ename(errno)); return 1; }
        if (block) sigprocmask(SIG_SETMASK, &old, NULL);
        struct timespec ts = { 0, 200000000 };
        while (nanosleep(&ts, &ts) != 0) {}
        printf("child_status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        printf("sigchld=%d\nsigchld_pid=%d\n", chld_count, (int)chld_pid);
        printf("after=%s\n", waitpid(-1, &st, WNOHANG) == -1 ? ename(errno) : "child");
        return 0;
    }
    if (!strcmp(verb, "sleep")) { printf("pid=%d\nready\n", getpid()); sleep(atoi(argv[2])); return 0; }
    fprintf(stderr, "probe: unknown verb %s\n", verb);
    return 2;
}
