/* A guest for colo trace's switcher tests (built with the guest library).
 *   trace_coguest steps     getpid, open a missing file, start a service (itself,
 *                           colocated with posix_spawn), a fast cocall of 24 bytes
 *                           (op 8, 16 bytes back), a call whose callee makes a
 *                           system call (op 9: an unborrow), then exec itself in
 *                           place with "segv"
 *   trace_coguest segv      die of SIGSEGV
 *   trace_coguest service NAME [slow]   accept calls as NAME (print service_pid=
 *                           and ready), with coaccept_slow if "slow": reply 16 bytes
 *                           with op -op; for op 9 call getpid() first; op 6 crashes
 *   trace_coguest events    start a fast and a slow service; call the slow one (a
 *                           fast cocall falls back to cocall_slow: EPROTOTYPE), then
 *                           make the fast one crash in the call (op 6: ENOLINK)
 *   trace_coguest calls NAME N   N calls of 24 bytes (op 8) to NAME; print calls=N */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <colo.h>

extern char **environ;

struct msg { uint64_t len; int32_t op; int32_t pad; uint64_t arg; };

static int service(const char *name, int slow)
{
    if (cosetup(COSETUP_COACCEPT) != 0) { perror("cosetup"); return 1; }
    if (coregister(name, NULL) != 0) { perror("coregister"); return 1; }
    printf("service_pid=%d\nready\n", getpid());
    fflush(stdout);
    uint64_t in[8] __attribute__((aligned(8))), out[2] = { 16, 0 };
    size_t outlen = 0;
    for (;;) {
        void *cookie = NULL;
        ssize_t n = slow ? coaccept_slow(&cookie, out, outlen, in, sizeof in)
                         : coaccept(&cookie, out, outlen, in, sizeof in);
        if (n < 0) { outlen = 0; continue; }
        struct msg *m = (struct msg *)in;
        int op = n >= 12 ? m->op : 0;
        if (op == 9) out[1] = (uint64_t)getpid();
        if (op == 6) *(volatile int *)8 = 1;
        ((int32_t *)out)[2] = -op;
        outlen = 16;
    }
}

static void *lookup(const char *name)
{
    void *target = NULL;
    for (int i = 0; i < 5000 && colookup(name, &target) != 0; i++) usleep(1000);
    return target;
}

static long call(void *target, int op)
{
    struct msg m = { 24, op, 0, 0 };
    uint64_t reply[2] = { 0, 0 };
    return (long)cocall(target, &m, sizeof m, reply, sizeof reply);
}

int main(int argc, char **argv)
{
    const char *verb = argc > 1 ? argv[1] : "steps";
    if (!strcmp(verb, "service") && argc > 2) return service(argv[2], argc > 3 && !strcmp(argv[3], "slow"));
    if (!strcmp(verb, "segv")) { *(volatile int *)8 = 1; return 2; }
    if (!strcmp(verb, "calls") && argc > 3) {
        if (cosetup(COSETUP_COCALL) != 0) { perror("cosetup"); return 1; }
        void *target = lookup(argv[2]);
        if (!target) { printf("colookup=%d\n", errno); return 1; }
        int n = atoi(argv[3]), ok = 0;
        for (int i = 0; i < n; i++) ok += call(target, 8) == 16;
        printf("calls=%d\n", ok);
        return 0;
    }
    if (!strcmp(verb, "events")) {
        printf("pid=%d\n", getpid());
        char fast[64], slow[64];
        snprintf(fast, sizeof fast, "trace-coguest-fast-%d", getpid());
        snprintf(slow, sizeof slow, "trace-coguest-slow-%d", getpid());
        char *fargs[] = { argv[0], "service", fast, NULL }, *sargs[] = { argv[0], "service", slow, "slow", NULL };
        pid_t f, s;
        if (posix_spawn(&f, argv[0], NULL, NULL, fargs, environ) != 0 ||
            posix_spawn(&s, argv[0], NULL, NULL, sargs, environ) != 0) { perror("posix_spawn"); return 1; }
        printf("fast=%d\nslow=%d\n", f, s);
        fflush(stdout);
        if (cosetup(COSETUP_COCALL) != 0) { perror("cosetup"); return 1; }
        void *tf = lookup(fast), *ts = lookup(slow);
        if (!tf || !ts) { printf("colookup=%d\n", errno); return 1; }
        printf("slowcall=%ld\n", call(ts, 8));
        long r = call(tf, 6);
        printf("crash=%ld\nerrno=%d\n", r, r < 0 ? errno : 0);
        fflush(stdout);
        kill(s, SIGKILL);
        waitpid(s, NULL, 0);
        waitpid(f, NULL, 0);
        return 0;
    }
    if (strcmp(verb, "steps")) return 3;
    printf("pid=%d\n", getpid());
    fflush(stdout);
    int fd = open("/nonexistent/colo-trace-missing", O_RDONLY);
    printf("open=%d\n", fd);
    char name[64];
    snprintf(name, sizeof name, "trace-coguest-%d", getpid());
    char *sargs[] = { argv[0], "service", name, NULL };
    pid_t svc;
    if (posix_spawn(&svc, argv[0], NULL, NULL, sargs, environ) != 0) { perror("posix_spawn"); return 1; }
    printf("service=%d\n", svc);
    fflush(stdout);
    if (cosetup(COSETUP_COCALL) != 0) { perror("cosetup"); return 1; }
    void *target = lookup(name);
    if (!target) { printf("colookup=%d\n", errno); return 1; }
    printf("cocall=%ld\n", call(target, 8));
    printf("cocall_syscall=%ld\n", call(target, 9));
    fflush(stdout);
    kill(svc, SIGKILL);
    waitpid(svc, NULL, 0);
    char *args[] = { argv[0], "segv", NULL };
    execv(argv[0], args);
    perror("execv");
    return 1;
}
