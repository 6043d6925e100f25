/*
 * overlay/unistd.h - <unistd.h> as CheriBSD programs see it: the system's
 * <unistd.h>, then the colocation prototypes that CheriBSD's `cocalls`
 * branch declares there (cocall, coaccept, cosetup, coregister, colookup,
 * cogetpid, cocachedpid, coexecve, coexecvec, coexecvpc, capvfetch, capvset,
 * capfromfd, captofd, ...: see <colo.h>), and the capability-sized integer
 * types intcap_t/uintcap_t that CheriBSD's <sys/types.h> provides, and the
 * __unused attribute of FreeBSD's <sys/cdefs.h>; with libbsd's overlay,
 * getopt(3) stops at the first operand, as BSD's does.
 *
 * colo.pc puts this directory in front of the include path, so that
 *     cc prog.c $(pkg-config --cflags --libs colo libbsd-overlay)
 * builds CheriBSD's colocation programs without changes.  It is found before
 * libbsd's overlay (-isystem) and the C library's header, which it reaches
 * with #include_next.  Outside colo.pc's flags nothing changes: programs of
 * this project include <colo.h> instead.
 */
#ifndef COLO_OVERLAY_UNISTD_H
#define COLO_OVERLAY_UNISTD_H

#include_next <unistd.h>

#include <stdint.h>

#if !defined(__CHERI__) && !defined(_COLO_INTCAP_T_DECLARED)
/* A capability is pointer-sized here (see colo_cap.h). */
typedef intptr_t  intcap_t;
typedef uintptr_t uintcap_t;
#define _COLO_INTCAP_T_DECLARED
#endif

/* FreeBSD's <sys/cdefs.h> spelling of the unused attribute (libbsd leaves it
 * out because some Linux uapi headers have members called __unused: a program
 * that includes such a header after this one must #undef __unused first). */
#ifndef __unused
#define __unused __attribute__((__unused__))
#endif

#include <colo.h>

#ifdef LIBBSD_OVERLAY
/* BSD getopt(3) stops at the first operand; libbsd's bsd_getopt() calls
 * glibc's, which permutes (so `clocks capv -c` would take -c for clocks).
 * With libbsd's overlay, getopt is bsd_getopt (optreset works) asked not
 * to permute. */
static inline int colo_bsd_getopt(int argc, char * const argv[], const char *optstr)
{
    static __thread char plus[256];
    static __thread const char *cached;
    if (optstr == 0 || optstr[0] == '+')
        return bsd_getopt(argc, argv, optstr);
    if (cached != optstr) {
        __SIZE_TYPE__ n = __builtin_strlen(optstr);
        if (n + 2 > sizeof plus)
            return bsd_getopt(argc, argv, optstr);
        plus[0] = '+';
        __builtin_memcpy(plus + 1, optstr, n + 1);
        cached = optstr;
    }
    return bsd_getopt(argc, argv, plus);
}
#undef getopt
#define getopt(argc, argv, optstr) colo_bsd_getopt(argc, argv, optstr)
#endif

#endif
