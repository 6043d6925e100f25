/* forkspace.c - a fork child as an address space of its own, as CheriBSD's cocall tests use it.
 *   forkspace test [slow]   fork a server child (cosetup(COACCEPT), coregister, then answer each
 *                           call with its word + 1), fork a second child that coexecve()s
 *                           "call" into the first, wait for it; prints each step's outcome
 *   forkspace call NAME N fast|slow   (run in the server's address space by coexecve)
 *                           cosetup(COCALL), colookup(NAME), N calls checked; "called PID"
 *   forkspace lazy [N]      the server child makes no colocation call at all (it sleeps); the
 *                           second child coexecve()s "where SERVER [N]" into it
 *   forkspace where PID [N] prints "same_mm=1" if this process shares PID's mm (kcmp); exits N
 *   forkspace hold          the child becomes an address space (cosetup, coregister) and
 *                           waits; the parent prints "ready" and waits too (for colo ps)
 *   forkspace isolation     the child registers a name in its own address space; the parent,
 *                           in the one it was forked from, looks it up (ESRCH), then the child
 *                           looks up a name the parent registered (ESRCH) */
#include <colo.h>
#include <errno.h>
#include <linux/kcmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void serve(const char *name, int slow)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (cosetup(COSETUP_COACCEPT) != 0) { printf("cosetup: %s\n", strerror(errno)); exit(2); }
    clock_gettime(CLOCK_MONOTONIC, &t1);        /* the call that made it an address space */
    printf("become_us=%ld\n", (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000);
    if (coregister(name, NULL) != 0) { printf("coregister: %s\n", strerror(errno)); exit(3); }
    uint64_t buf = 0;
    for (;;) {
        ssize_t r = slow ? coaccept_slow(NULL, &buf, sizeof buf, &buf, sizeof buf)
                         : coaccept(NULL, &buf, sizeof buf, &buf, sizeof buf);
        if (r < 0) { printf("coaccept: %s\n", strerror(errno)); exit(4); }
        buf++;
    }
}

static int call(const char *name, int n, int slow)
{
    void *target;
    if (cosetup(COSETUP_COCALL) != 0) { printf("call cosetup: %s\n", strerror(errno)); return 2; }
    /* The server registers its name right after it became an address space. */
    int tries = 0;
    while (colookup(name, &target) != 0) {
        if (errno != ESRCH || ++tries > 500) { printf("colookup: %s\n", strerror(errno)); return 3; }
        usleep(10000);
    }
    for (int i = 0; i < n; i++) {
        uint64_t buf = (uint64_t)i * 10;
        ssize_t r;
        while ((r = slow ? cocall_slow(target, &buf, sizeof buf, &buf, sizeof buf)
                         : cocall(target, &buf, sizeof buf, &buf, sizeof buf)) < 0 && errno == EAGAIN)
            usleep(1000);                   /* it has not accepted yet */
        if (r != sizeof buf || buf != (uint64_t)i * 10 + 1) {
            printf("cocall %d: %zd %s buf=%llu\n", i, r, strerror(errno), (unsigned long long)buf);
            return 4;
        }
    }
    printf("called %d\n", (int)getpid());
    return 0;
}

/* Fork a second child that coexecve()s `args` into `server`; its exit status. */
static int coexec_from_sibling(pid_t server, char **args)
{
    pid_t caller = fork();
    if (caller == 0) {
        coexecve(server, "/proc/self/exe", args, environ);
        printf("coexecve: %s\n", strerror(errno));
        _exit(9);
    }
    int st;
    waitpid(caller, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void end(pid_t server)
{
    int st;
    kill(server, SIGTERM);
    waitpid(server, &st, 0);
    printf("server %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM ? "terminated" : "ended otherwise");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "call") == 0)
        return call(argv[2], argc > 3 ? atoi(argv[3]) : 1, argc > 4 && strcmp(argv[4], "slow") == 0);
    if (argc >= 3 && strcmp(argv[1], "where") == 0) {
        printf("where_pid=%d\nsame_mm=%d\n", (int)getpid(),
               syscall(SYS_kcmp, getpid(), atoi(argv[2]), KCMP_VM, 0, 0) == 0);
        return argc > 3 ? atoi(argv[3]) : 0;
    }
    char name[64];
    snprintf(name, sizeof name, "forkspace_%d", (int)getpid());
    printf("parent=%d\n", (int)getpid());
    if (argc >= 2 && strcmp(argv[1], "lazy") == 0) {
        pid_t server = fork();
        if (server == 0) { for (;;) pause(); }
        printf("server=%d\n", (int)server);
        char spid[16];
        snprintf(spid, sizeof spid, "%d", (int)server);
        char *args[] = { argv[0], "where", spid, argc > 2 ? argv[2] : NULL, NULL };
        printf("caller status %d\n", coexec_from_sibling(server, args));
        end(server);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "hold") == 0) {
        int up[2];
        if (pipe(up)) return 1;
        pid_t server = fork();
        if (server == 0) {
            if (cosetup(COSETUP_COACCEPT) != 0 || coregister(name, NULL) != 0) _exit(2);
            write(up[1], "r", 1);
            for (;;) pause();
        }
        char c;
        printf("server=%d\n", (int)server);
        if (read(up[0], &c, 1) != 1) return 2;
        printf("ready\n");
        sleep(30);
        end(server);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "isolation") == 0) {
        int up[2], down[2];
        if (pipe(up) || pipe(down)) return 1;
        pid_t server = fork();
        if (server == 0) {
            char c;
            if (cosetup(COSETUP_COACCEPT) != 0 || coregister("forkspace_child_name", NULL) != 0) _exit(2);
            write(up[1], "r", 1);
            read(down[0], &c, 1);                /* the parent registered its name */
            void *t;
            int e = colookup(name, &t) == 0 ? 0 : errno;
            printf("child_lookup=%s\n", e == ESRCH ? "ESRCH" : e == 0 ? "found" : strerror(e));
            _exit(0);
        }
        char c;
        read(up[0], &c, 1);
        void *t;
        if (cosetup(COSETUP_COACCEPT) != 0 || coregister(name, NULL) != 0) return 3;
        int e = colookup("forkspace_child_name", &t) == 0 ? 0 : errno;
        printf("parent_lookup=%s\n", e == ESRCH ? "ESRCH" : e == 0 ? "found" : strerror(e));
        write(down[1], "g", 1);
        int st;
        waitpid(server, &st, 0);
        printf("child status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        return 0;
    }
    int slow = argc > 2 && strcmp(argv[2], "slow") == 0;
    pid_t server = fork();
    if (server == 0) serve(name, slow);
    printf("server=%d\n", (int)server);
    char *args[] = { argv[0], "call", name, "100", slow ? "slow" : "fast", NULL };
    printf("caller status %d\n", coexec_from_sibling(server, args));
    end(server);
    return 0;
}
