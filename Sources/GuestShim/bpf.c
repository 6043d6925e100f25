/* bpf.c - a classic BPF interpreter for the instructions filter.c emits: what the seccomp
 * program returns for a call, as the in-process tracer must decide it (trace.c) and as the
 * filter's tests check it (Tests/Guests/filter_cache.c).  Guest-safe: no libc. */
#include <stddef.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include "guest_shim.h"

uint32_t colo_filter_run(const struct colo_sock_filter *prog, uint32_t len, const struct seccomp_data *d)
{
    uint32_t a = 0, x = 0;
    for (uint32_t pc = 0; pc < len; pc++) {
        const struct colo_sock_filter *i = &prog[pc];
        switch (i->code) {
        case BPF_LD | BPF_W | BPF_ABS:
            a = 0;      /* a word of seccomp_data, copied (it is not an object of its own) */
            if (i->k + 4 <= sizeof *d) __builtin_memcpy(&a, (const char *)d + i->k, 4);
            break;
        case BPF_ALU | BPF_RSH | BPF_K: a >>= i->k; break;
        case BPF_ALU | BPF_AND | BPF_K: a &= i->k; break;
        case BPF_MISC | BPF_TAX: x = a; break;
        case BPF_JMP | BPF_JA: pc += i->k; break;
        case BPF_JMP | BPF_JEQ | BPF_K: pc += a == i->k ? i->jt : i->jf; break;
        case BPF_JMP | BPF_JGE | BPF_K: pc += a >= i->k ? i->jt : i->jf; break;
        case BPF_JMP | BPF_JGT | BPF_K: pc += a > i->k ? i->jt : i->jf; break;
        case BPF_JMP | BPF_JSET | BPF_K: pc += (a & i->k) ? i->jt : i->jf; break;
        case BPF_JMP | BPF_JEQ | BPF_X: pc += a == x ? i->jt : i->jf; break;
        case BPF_RET | BPF_K: return i->k;
        default: return SECCOMP_RET_KILL_PROCESS;
        }
    }
    return SECCOMP_RET_KILL_PROCESS;
}
