/* kernel_bench.c - round-trip costs for scripts/bench/kernel.
 *   service NAME                 colocated: cosetup, coregister(NAME), echo with coaccept_slow
 *   cocall NAME SIZE N ROUNDS    colocated: ROUNDS x N cocall_slow round trips of SIZE bytes each way
 *   futex SIZE N ROUNDS          native: two processes ping-pong SIZE bytes each way through
 *                                shared memory, waking each other with futexes
 *   relay N ROUNDS               native: the floor of a runtime-served call: a minimal C
 *                                supervisor relaying a caller's and a callee's system
 *                                calls by seccomp user notification (no data copied)
 * Each round prints one line KEY=nanoseconds per round trip.
 * Build: cc -O2 -static-pie -I Sources/GuestAPI/include -I Sources/ABI/include kernel_bench.c
 *        Sources/GuestAPI/colo.c Sources/GuestAPI/syscall.c */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include "colo_linux_newer.h"      /* Sources/ABI/include */
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <colo.h>

#define MAXSIZE (64 * 1024)

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int service(const char *name)
{
    void *target;
    static uint64_t buf[MAXSIZE / 8];
    if (cosetup(COSETUP_COACCEPT) != 0 || coregister(name, &target) != 0) { perror("service"); return 1; }
    printf("pid=%d\nready\n", getpid());
    size_t outlen = 0;
    for (;;) {
        ssize_t n = coaccept_slow(NULL, buf, outlen, buf, sizeof buf);
        outlen = n < 0 ? 0 : (size_t)n;        /* echo what came in */
    }
}

static int cocall_bench(const char *name, size_t size, long n, int rounds)
{
    void *target;
    static uint64_t out[MAXSIZE / 8], in[MAXSIZE / 8];
    if (colookup(name, &target) != 0 || cosetup(COSETUP_COCALL) != 0) { perror("client"); return 1; }
    memset(out, 0x5a, size);
    for (long i = 0; i < 1000; i++) cocall(target, out, size, in, size);
    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < n; i++)
            if (cocall_slow(target, out, size, in, size) != (ssize_t)size) { perror("cocall_slow"); return 1; }
        printf("kernel.cocall_slow_%zu_ns=%.0f\n", size, (double)(now_ns() - t0) / (double)n);
    }
    return 0;
}

/* Shared page of the futex ping-pong: whose turn it is, and the payload. */
struct pingpong {
    _Atomic uint32_t turn;      /* 0: ping's, 1: pong's */
    uint8_t data[MAXSIZE];
};

static void futex_wait(_Atomic uint32_t *w, uint32_t v)
{
    syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Wait for my turn, copy the payload in and out as a cocall does, hand over. */
static void hop(struct pingpong *p, uint32_t me, uint8_t *local, size_t size)
{
    while (atomic_load(&p->turn) != me) futex_wait(&p->turn, !me);
    memcpy(local, p->data, size);
    memcpy(p->data, local, size);
    atomic_store(&p->turn, !me);
    futex_wake(&p->turn);
}

static int futex_bench(size_t size, long n, int rounds)
{
    struct pingpong *p = mmap(NULL, sizeof *p, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    static uint8_t local[MAXSIZE];
    long total = 1000 + n * rounds;
    pid_t child = fork();
    if (child == 0) {
        for (long i = 0; i < total; i++) hop(p, 1, local, size);
        _exit(0);
    }
    for (long i = 0; i < 1000; i++) hop(p, 0, local, size);
    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < n; i++) hop(p, 0, local, size);
        printf("kernel.futex_%zu_ns=%.0f\n", size, (double)(now_ns() - t0) / (double)n);
    }
    while (atomic_load(&p->turn) != 0) futex_wait(&p->turn, 1);
    waitpid(child, NULL, 0);
    return 0;
}

/* The caller and callee of the relay: system calls 1500 and 1501 go to the
 * supervisor; the callee's answers the caller's previous call. */
static int relay_bench(long n, int rounds)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 1500, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { 4, f };
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (fd < 0) { perror("seccomp"); return 1; }
    /* Synchronous wake-ups (Linux 6.6), as the runtime's listener has them: the woken side
     * runs on the waker's CPU.  Older kernels refuse (EINVAL) and wake as before. */
    ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    pid_t callee = fork();
    if (callee == 0)
        for (;;) syscall(1501);
    pid_t caller = fork();
    if (caller == 0) {
        for (long i = 0; i < 1000; i++) syscall(1500);
        for (int r = 0; r < rounds; r++) {
            uint64_t t0 = now_ns();
            for (long i = 0; i < n; i++) syscall(1500);
            printf("kernel.relay_floor_ns=%.0f\n", (double)(now_ns() - t0) / (double)n);
        }
        _exit(0);
    }
    uint64_t waiting_call = 0, waiting_accept = 0;
    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 100) <= 0) {
            if (waitpid(caller, NULL, WNOHANG) == caller) break;
            continue;
        }
        struct seccomp_notif req;
        memset(&req, 0, sizeof req);
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) continue;
        struct seccomp_notif_resp resp = { 0 };
        uint64_t *mine = req.data.nr == 1500 ? &waiting_call : &waiting_accept;
        uint64_t *other = req.data.nr == 1500 ? &waiting_accept : &waiting_call;
        *mine = req.id;
        if (*other != 0) {      /* hand over: answer the side that was waiting */
            resp.id = *other;
            *other = 0;
            ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
        }
    }
    kill(callee, SIGKILL);
    waitpid(callee, NULL, 0);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *verb = argc > 1 ? argv[1] : "";
    if (!strcmp(verb, "service") && argc > 2) return service(argv[2]);
    if (!strcmp(verb, "cocall") && argc > 5)
        return cocall_bench(argv[2], (size_t)atol(argv[3]), atol(argv[4]), atoi(argv[5]));
    if (!strcmp(verb, "futex") && argc > 4) return futex_bench((size_t)atol(argv[2]), atol(argv[3]), atoi(argv[4]));
    if (!strcmp(verb, "relay") && argc > 3) return relay_bench(atol(argv[2]), atoi(argv[3]));
    fprintf(stderr, "usage: kernel_bench service NAME | cocall NAME SIZE N ROUNDS | futex SIZE N ROUNDS | relay N ROUNDS\n");
    return 2;
}
