/* syscall.c - the raw system-call entry of the guest API: the colocation calls
 * (COLO_SYS_*) go through it, and Swift code uses it for Linux calls that the
 * Glibc module cannot express (variadic syscall(2)). */
#include "colo_abi.h"

long colo_syscall(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile ("syscall"
                      : "=a"(ret)
                      : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                      : "rcx", "r11", "memory");
    return ret;
}
