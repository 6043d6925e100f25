/* colo_raw_syscall.h - one raw Linux system call, inline: no errno, no libc,
 * usable on guest threads.  Returns the result or -errno. */
#ifndef COLO_RAW_SYSCALL_H
#define COLO_RAW_SYSCALL_H

static inline long colo_raw_syscall6(long n, long a, long b, long c, long d, long e, long f)
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

#endif
