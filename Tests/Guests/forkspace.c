/* forkspace.c - a fork child as an address space of its own, as CheriBSD's cocall tests use it.
 *   forkspace serve NAME      cosetup(COACCEPT), coregister(NAME), then answer every fast call
 *                             with its word + 1 (prints "ready PID VMADDR-CHECK" first)
 *   forkspace call NAME N     (run in the server's address space by coexecve) cosetup(COCALL),
 *                             colookup(NAME), N fast calls and N slow ones; prints "called PID"
 *   forkspace test [slow]     fork a server child (the "serve" body, without exec), fork a
 *                             second child that coexecve()s "call" into the first, wait for it;
 *                             prints what each step saw. */
#include <colo.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void serve(const char *name, int slow)
{
    if (cosetup(COSETUP_COACCEPT) != 0) { printf("cosetup: %s\n", strerror(errno)); exit(2); }
    if (coregister(name, NULL) != 0) { printf("coregister: %s\n", strerror(errno)); exit(3); }
    fflush(stdout);
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
    if (colookup(name, &target) != 0) { printf("colookup: %s\n", strerror(errno)); return 3; }
    for (int i = 0; i < n; i++) {
        uint64_t buf = (uint64_t)i * 10;
        ssize_t r = slow ? cocall_slow(target, &buf, sizeof buf, &buf, sizeof buf)
                         : cocall(target, &buf, sizeof buf, &buf, sizeof buf);
        if (r < 0 || buf != (uint64_t)i * 10 + 1) { printf("cocall %d: %zd %s buf=%llu\n", i, r, strerror(errno), (unsigned long long)buf); return 4; }
    }
    printf("called %d\n", (int)getpid());
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "call") == 0)
        return call(argv[2], argc > 3 ? atoi(argv[3]) : 1, argc > 4 && strcmp(argv[4], "slow") == 0);
    int slow = argc > 2 && strcmp(argv[2], "slow") == 0;
    char name[64];
    snprintf(name, sizeof name, "forkspace_%d", (int)getpid());
    pid_t server = fork();
    if (server == 0) serve(name, slow);
    /* Wait until the name is there: colookup from a fork child is in the child's own space, so
     * the parent cannot see it; retry the coexecve instead. */
    pid_t caller = fork();
    if (caller == 0) {
        char *args[] = { argv[0], "call", name, "100", slow ? "slow" : "fast", NULL };
        for (int i = 0; i < 200; i++) {
            coexecve(server, "/proc/self/exe", args, environ);
            usleep(10000);
        }
        printf("coexecve: %s\n", strerror(errno));
        _exit(9);
    }
    int st;
    waitpid(caller, &st, 0);
    printf("caller status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    kill(server, SIGTERM);
    waitpid(server, &st, 0);
    printf("server %s\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM ? "terminated" : "ended otherwise");
    return 0;
}
