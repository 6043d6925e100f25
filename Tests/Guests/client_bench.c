/* client_bench.c - a CheriBSD-style service and client, as a user writes them against
 * libcolo (built with `cc client_bench.c $(pkg-config --cflags --libs colo)`), timed by
 * scripts/bench/client:
 *   client_bench serve NAME          cosetup(COSETUP_COACCEPT), coregister(NAME), then a
 *                                    coaccept loop answering each 24-byte request
 *                                    (sequence, operand, checksum) with its result
 *   client_bench call NAME N ROUNDS  colookup(NAME), cosetup(COSETUP_COCALL), then ROUNDS
 *                                    rounds of N cocalls, each reply checked; prints
 *                                    client_24=NS per call for each round
 *   client_bench getppid N ROUNDS    the reference: getppid(2) through libc, N a round
 * Prints KEY=VALUE lines; a wrong reply ends the client with status 1. */
#include <err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <colo.h>

struct request { uint64_t seq, operand, check; };
struct reply { uint64_t seq, result, check; };

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int serve(const char *name)
{
    struct request req;
    struct reply rep;
    void *target;
    if (cosetup(COSETUP_COACCEPT) != 0) err(1, "cosetup");
    if (coregister(name, &target) != 0) err(1, "coregister");
    printf("pid=%d\nready\n", getpid());
    fflush(stdout);
    ssize_t n = coaccept(NULL, NULL, 0, &req, sizeof req);
    for (;;) {
        if (n != (ssize_t)sizeof req || req.check != (req.seq ^ req.operand)) {
            memset(&rep, 0, sizeof rep);            /* a bad request: a reply that fails its check */
        } else {
            rep.seq = req.seq;
            rep.result = req.operand * 3 + 1;
            rep.check = rep.seq ^ rep.result;
        }
        n = coaccept(NULL, &rep, sizeof rep, &req, sizeof req);
    }
}

static int call(const char *name, long count, int rounds)
{
    void *target;
    struct request req;
    struct reply rep;
    if (colookup(name, &target) != 0) err(1, "colookup %s", name);
    if (cosetup(COSETUP_COCALL) != 0) err(1, "cosetup");
    uint64_t seq = 0;
    for (int r = -1; r < rounds; r++) {             /* round -1: warm-up, not printed */
        uint64_t t0 = now_ns();
        for (long i = 0; i < count; i++) {
            req.seq = ++seq;
            req.operand = seq * 7;
            req.check = req.seq ^ req.operand;
            if (cocall(target, &req, sizeof req, &rep, sizeof rep) != (ssize_t)sizeof rep)
                err(1, "cocall");
            if (rep.seq != seq || rep.result != req.operand * 3 + 1 || rep.check != (rep.seq ^ rep.result))
                errx(1, "call %llu: a wrong reply", (unsigned long long)seq);
        }
        if (r >= 0) printf("client_24=%.1f\n", (double)(now_ns() - t0) / (double)count);
    }
    return 0;
}

static int ppid(long count, int rounds)
{
    for (int r = -1; r < rounds; r++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < count; i++) getppid();
        if (r >= 0) printf("getppid=%.1f\n", (double)(now_ns() - t0) / (double)count);
    }
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "serve") == 0) return serve(argv[2]);
    if (argc == 5 && strcmp(argv[1], "call") == 0) return call(argv[2], atol(argv[3]), atoi(argv[4]));
    if (argc == 4 && strcmp(argv[1], "getppid") == 0) return ppid(atol(argv[2]), atoi(argv[3]));
    fprintf(stderr, "usage: client_bench serve NAME | call NAME N ROUNDS | getppid N ROUNDS\n");
    return 2;
}
