/* switch_costs.c - what the instructions a fast cocall cannot do without cost on this CPU, each
 * in a loop of its own (throughput, not latency in the switch's sequence), for
 * scripts/bench/profile: the switch of a round trip writes the FS base twice (wrfsbase: the
 * callee's TLS, then the caller's back), saves the MXCSR and x87 control word twice
 * (stmxcsr, fnstcw: compared with the other side's, loaded only where they differ), takes the
 * callee with one compare-and-swap, and copies the request and the reply (rep movsb, or words
 * for 64 bytes and less).  Prints one Markdown table row per instruction: name, ns. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static char a[4096] __attribute__((aligned(64))), b[4096] __attribute__((aligned(64)));

#define N 10000000
#define TIME(name, ...) do {                                              \
        double best = 1e30;                                                \
        for (int r = 0; r < 5; r++) {                                      \
            double t0 = now();                                             \
            for (int i = 0; i < N; i++) { __VA_ARGS__; }                          \
            double t = (now() - t0) / N;                                   \
            if (t < best) best = t;                                        \
        }                                                                  \
        printf("| %s | %.1f |\n", name, best);                             \
    } while (0)

int main(void)
{
    uint64_t fs;
    __asm__ volatile("rdfsbase %0" : "=r"(fs));
    uint32_t word = 0;
    TIME("empty loop", __asm__ volatile("" ::: "memory"));
    TIME("rdfsbase", { uint64_t v; __asm__ volatile("rdfsbase %0" : "=r"(v)); });
    TIME("wrfsbase (the same value)", __asm__ volatile("wrfsbase %0" :: "r"(fs) : "memory"));
    TIME("stmxcsr", { uint32_t m; __asm__ volatile("stmxcsr %0" : "=m"(m)); });
    TIME("fnstcw", { uint16_t m; __asm__ volatile("fnstcw %0" : "=m"(m)); });
    TIME("lock cmpxchg (uncontended)", { uint32_t e = word; __atomic_compare_exchange_n(&word, &e, e + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED); });
    TIME("rep movsb, 8 bytes", { void *d = a, *s = b; size_t n = 8; __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) :: "memory"); });
    TIME("rep movsb, 4096 bytes", { void *d = a, *s = b; size_t n = 4096; __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) :: "memory"); });
    TIME("memcpy, 4096 bytes", { memcpy(a, b, 4096); __asm__ volatile("" :: "r"(a) : "memory"); });
    return 0;
}
