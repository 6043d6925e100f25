/* syscall.c - the raw system-call entry of the guest API: the colocation calls
 * (COLO_SYS_*) go through it, and Swift code uses it for Linux calls that the
 * Glibc module cannot express (variadic syscall(2)). */
#include "colo_abi.h"
#include "colo_raw_syscall.h"

long colo_syscall(long n, long a, long b, long c, long d, long e, long f)
{
    return colo_raw_syscall6(n, a, b, c, d, e, f);
}
