/* coservice.c - a service and its client written as CheriBSD's colocation
 * tutorial writes them: the service gets its target with coregister(NULL),
 * puts it into the capability vector with capvset(), starts the client with
 * vfork() + coexecvpc(getppid(), ...), and serves in a coaccept() loop; the
 * client finds the target in its vector (capvfetch) and cocalls it.
 *   coservice serve PROGRAM [ARGS...]     serve, running PROGRAM as the client;
 *                                          exits with the client's status when it exits
 *   coservice ask N                        the client: answerback, then N-1 checksummed calls
 * Build like every guest of the kernel tests (<colo.h>, <capv.h>, the library). */
#include <sys/types.h>
#include <sys/wait.h>
#include <capv.h>
#include <err.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CAPV_COSERVICE 3    /* odd: ad hoc */
#define OP_SUM 1

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
        int pad;
        uint64_t seq;
        uint64_t words[32];
    };
} sum_t;

static uint64_t sum(const sum_t *m)
{
    uint64_t s = m->seq;
    for (int i = 0; i < 32; i++) s = s * 31 + m->words[i];
    return s;
}

static void sigchld(int sig)
{
    (void)sig;      /* interrupts coaccept(2) */
}

static int serve(char **argv)
{
    void * __capability target;
    void * __capability *capv;
    int capc, error;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = sigchld;
    sigaction(SIGCHLD, &sa, NULL);

    error = cosetup(COSETUP_COACCEPT);
    if (error != 0)
        err(1, "cosetup");
    error = coregister(NULL, &target);
    if (error != 0)
        err(1, "coregister");
    capvfetch(&capc, &capv);
    error = capvset(&capc, &capv, CAPV_COSERVICE, target);
    if (error != 0)
        err(1, "capvset");

    pid_t pid = vfork();
    if (pid < 0)
        err(1, "vfork");
    if (pid == 0) {
        coexecvpc(getppid(), argv[0], argv, capv, capc);
        _exit(127);
    }

    union { capv_answerback_t ab; sum_t s; } in, out;
    ssize_t received, outlen = 0;
    void * __capability cookie;
    int status;
    for (;;) {
        received = coaccept(&cookie, &out, outlen, &in, sizeof(in));
        if (received < 0) {
            if (errno != EINTR) {
                warn("coaccept");
                outlen = 0;
            } else if (waitpid(pid, &status, WNOHANG) == pid) {
                break;
            }
            continue;      /* after EINTR, offer the same reply again */
        }
        pid_t caller = -1;
        if (cocachedpid(&caller, cookie) != 0)
            warn("cocachedpid");
        if (in.ab.op == 0) {
            memset(&out.ab, 0, sizeof(out.ab));
            out.ab.len = sizeof(out.ab);
            snprintf(out.ab.answerback, sizeof(out.ab.answerback),
                "coservice, pid %d, serving pid %d (slow)", getpid(), caller);
            outlen = out.ab.len;
        } else {
            if ((size_t)received != in.s.len || in.s.len != sizeof(in.s))
                warnx("size mismatch: received %zd, len %zu", received, in.s.len);
            out.s = in.s;
            out.s.op = -OP_SUM;
            out.s.words[0] = sum(&in.s);
            outlen = sizeof(out.s);
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int ask(int calls)
{
    void * __capability *capv;
    int capc;
    capv_t in;
    capv_answerback_t out;
    ssize_t received;

    capvfetch(&capc, &capv);
    if (capc <= CAPV_COSERVICE || capv[CAPV_COSERVICE] == NULL)
        errx(1, "no coservice capability in the vector (capc %d)", capc);
    if (cosetup(COSETUP_COCALL) != 0)
        err(1, "cosetup");
    in.len = sizeof(in);
    in.op = 0;
    /* The service may not have called coaccept yet (EAGAIN): ask again. */
    while ((received = cocall_slow(capv[CAPV_COSERVICE], &in, sizeof(in), &out, sizeof(out))) < 0 &&
        errno == EAGAIN)
        usleep(1000);
    if (received < 0)
        err(1, "cocall_slow");
    if ((size_t)received != out.len || out.len != sizeof(out))
        errx(1, "size mismatch: received %zd, len %zu", received, out.len);
    printf("capc=%d\nanswerback=%s\n", capc, out.answerback);

    int good = 0;
    for (int i = 1; i < calls; i++) {
        sum_t req, rep;
        memset(&req, 0, sizeof(req));
        req.len = sizeof(req);
        req.op = OP_SUM;
        req.seq = (uint64_t)i;
        for (int j = 0; j < 32; j++) req.words[j] = (uint64_t)(i * 1000 + j);
        received = cocall(capv[CAPV_COSERVICE], &req, sizeof(req), &rep, sizeof(rep));
        if (received == (ssize_t)sizeof(rep) && rep.op == -OP_SUM && rep.seq == req.seq &&
            rep.words[0] == sum(&req))
            good++;
    }
    printf("good=%d\n", good);
    return good == calls - 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc > 2 && strcmp(argv[1], "serve") == 0)
        return serve(argv + 2);
    if (argc > 2 && strcmp(argv[1], "ask") == 0)
        return ask(atoi(argv[2]));
    fprintf(stderr, "usage: coservice serve PROGRAM [ARGS...] | coservice ask N\n");
    return 2;
}
