/* syscall_bench.c - benchmark guest of scripts/bench/syscalls: median ns of one
 * getppid, read (1 byte of /dev/zero), write (1 byte to /dev/null) and futex
 * (FUTEX_WAKE, no waiters), each an inline `syscall` instruction in a tight
 * loop, and getppid through libc's wrapper (a call, the instruction and a
 * return, as syscall_timing times it), over `reps` repetitions of `n` calls; and the process's own seccomp
 * mode and filter count from /proc/self/status.  With `threads` > 0 it first
 * starts that many idle threads (an mm shared by several threads, as a
 * colocated process's is: since Linux 6.16 its private futexes use a hash of
 * their own).  Prints "NAME_ns=X" lines, then "seccomp=M" and
 * "seccomp_filters=F". */
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "bench_timing.h"

static long raw3(long nr, long a, long b, long c)
{
    long r;
    __asm__ volatile ("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static void *idle(void *arg)
{
    (void)arg;
    for (;;) pause();
}

/* Print the median of the `reps` times per call in r. */
static void report(const char *name, double *r, int reps)
{
    qsort(r, reps, sizeof(double), bench_cmp_double);
    printf("%s_ns=%.1f\n", name, r[reps / 2]);
}

/* The `key:` line of /proc/self/status, or "?" */
static void status_field(const char *key, char *out, size_t size)
{
    char line[256];
    size_t k = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    snprintf(out, size, "?");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, k) == 0 && line[k] == ':') {
            char *v = line + k + 1;
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = 0;
            snprintf(out, size, "%s", v);
        }
    }
    if (f) fclose(f);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int reps = argc > 2 ? atoi(argv[2]) : 11;
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    for (int t = 0; t < threads; t++) {
        pthread_t id;
        if (pthread_create(&id, NULL, idle, NULL) != 0) { fprintf(stderr, "syscall_bench: pthread_create failed\n"); return 1; }
    }
    int zero = open("/dev/zero", O_RDONLY), null = open("/dev/null", O_WRONLY);
    static int word;
    char byte = 0;
    if (zero < 0 || null < 0 || n < 10 || reps < 1) { fprintf(stderr, "syscall_bench: setup failed\n"); return 1; }
    struct { const char *name; long nr, a, b, c, expect; } calls[] = {
        { "getppid", SYS_getppid, 0, 0, 0, getppid() },
        { "read", SYS_read, zero, (long)&byte, 1, 1 },
        { "write", SYS_write, null, (long)&byte, 1, 1 },
        { "futex", SYS_futex, (long)&word, FUTEX_WAKE_PRIVATE, 1, 0 },
    };
    double *r = malloc(sizeof(double) * reps);
    for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
        long nr = calls[c].nr, a = calls[c].a, b = calls[c].b, x = calls[c].c;
        if (raw3(nr, a, b, x) != calls[c].expect) { fprintf(stderr, "syscall_bench: %s failed\n", calls[c].name); return 1; }
        for (long i = 0; i < n / 10; i++) raw3(nr, a, b, x);          /* warm-up */
        for (int k = 0; k < reps; k++) {
            double t = bench_now();
            for (long i = 0; i < n; i++) raw3(nr, a, b, x);
            r[k] = (bench_now() - t) / n;
        }
        report(calls[c].name, r, reps);
    }
    for (long i = 0; i < n / 10; i++) getppid();
    for (int k = 0; k < reps; k++) {
        double t = bench_now();
        for (long i = 0; i < n; i++) getppid();
        r[k] = (bench_now() - t) / n;
    }
    report("getppid_libc", r, reps);
    char mode[64], filters[64];
    status_field("Seccomp", mode, sizeof mode);
    status_field("Seccomp_filters", filters, sizeof filters);
    printf("seccomp=%s\nseccomp_filters=%s\n", mode, filters);
    return 0;
}
