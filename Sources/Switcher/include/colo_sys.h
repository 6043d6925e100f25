/* sys.h - raw Linux system calls for code that runs on guest threads, where
 * neither errno nor any libc function may be touched.  Return -errno on error. */
#ifndef COLO_SYS_H
#define COLO_SYS_H

#include <stdint.h>
#include <stddef.h>

#include "colo_raw_syscall.h"

#define sys6 colo_raw_syscall6
#define sys0(n)                sys6((n), 0, 0, 0, 0, 0, 0)
#define sys1(n, a)             sys6((n), (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b)          sys6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c)       sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d)    sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)
#define sys5(n, a, b, c, d, e) sys6((n), (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), 0)

/* Byte helpers: -fno-builtin keeps the compiler from turning them into libc calls. */
static inline void colo_memset(void *d, int c, size_t n)
{
    unsigned char *p = d;
    while (n--) *p++ = (unsigned char)c;
}
static inline void colo_memcpy(void *d, const void *s, size_t n)
{
    unsigned char *p = d;
    const unsigned char *q = s;
    while (n--) *p++ = *q++;
}

#endif
