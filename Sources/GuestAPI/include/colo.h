/*
 * colo.h - CheriBSD's colocation API (include/unistd.h of the `cocalls`
 * branch, generation 3: ssize_t-returning cocall/coaccept) for programs
 * colocated by colo(1) on Linux.  Link with the colo library
 * (`cc prog.c $(pkg-config --cflags --libs colo)`).
 *
 * Capabilities are pointer-sized opaque values (see colo_cap.h):
 * `__capability` compiles away, `void * __capability` is `void *`.
 *
 * Outside a colocated address space every call fails with ENOSYS.
 *
 * Signals: cocall(), cocall_slow(), coaccept() and coaccept_slow() fail with
 * EINTR when a signal interrupts them, as in CheriBSD.  An interrupted
 * coaccept may or may not have delivered its output buffer to the previous
 * caller: call coaccept again with the same output buffer (it is delivered
 * at most once).  The other calls never fail with EINTR (the library retries).
 *
 * Alignment rule (checked by the runtime, EINVAL otherwise): for cocall(),
 * cocall_slow(), coaccept() and coaccept_slow(), every non-NULL buffer must be
 * 8-byte aligned (COLO_CAP_ALIGN, the size of a capability here) and every
 * length a multiple of 8.  A NULL buffer is allowed only with length 0.
 */
#ifndef COLO_H
#define COLO_H

#include <errno.h>
#include <sys/types.h>
#include <unistd.h>
#include "colo_abi.h"
#include "colo_cap.h"

#ifndef __capability
#define __capability
#endif

#ifndef _LWPID_T_DECLARED
typedef pid_t lwpid_t;
#define _LWPID_T_DECLARED
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* cosetup(2) */
#define COSETUP_COCALL    0
#define COSETUP_COACCEPT  1
#define COSETUP_TAKEOVER  2
#define COSETUP_COGETPID  3
#define COSETUP_COGETTID  4

/* CheriBSD's EPROT ("capability from another address space", coexecvec(2),
 * SCM_CAPS) does not exist on Linux: it is reported as EPROTO. */
#ifndef EPROT
#define EPROT EPROTO
#endif

/* Buffers and lengths of cocall/coaccept are multiples of this. */
#define COLO_CAP_ALIGN    8

#define COACCEPT_RETURNS_SSIZE_T 1

int     coexecve(pid_t, const char *, char * const *, char * const *);
int     coexecvec(pid_t, const char *, char * const *, char * const *, void * const *, int);
int     coexecvpc(pid_t, const char *, char * const *, void * const *, int);
int     coexecvp(pid_t, const char *, char * const *);
ssize_t coaccept(void * __capability * __capability,
            const void * __capability, size_t, void * __capability, size_t);
ssize_t cocall(void * __capability,
            const void * __capability, size_t, void * __capability, size_t);
int     cosetup(int);
int     coregister(const char *, void * __capability *);
int     colookup(const char *, void * __capability *);
int     cogetpid(pid_t *);
int     cocachedpid(pid_t *, void * __capability);
int     capvset(int *, void * __capability **, int, void * __capability);
/* A client library's first step: the target at capv[index], after
 * cosetup(COSETUP_COCALL).  NULL with a warning (prefixed with `who` if not
 * NULL) and errno ENOLINK if the vector has no such entry, or cosetup's error. */
void * __capability colo_capv_target(int index, const char *who);
void    capvfetch(int *, void * __capability **);
/* libc <-> switcher interface */
ssize_t _coaccept(void * __capability, void * __capability, void * __capability * __capability,
            const void * __capability, size_t, void * __capability, size_t);
ssize_t _cocall(void * __capability, void * __capability, const void * __capability,
            const void * __capability, size_t, void * __capability, size_t);
int     _cosetup(int, void * __capability *, void * __capability *);
pid_t   _cogetpid2(void * __capability, void * __capability);
lwpid_t _cogettid(void * __capability, void * __capability);
ssize_t coaccept_slow(void * __capability * __capability,
            const void * __capability, size_t, void * __capability, size_t);
ssize_t cocall_slow(void * __capability,
            const void * __capability, size_t, void * __capability, size_t);
pid_t   cogetpid2(void);
lwpid_t cogettid(void);
/* capfromfd: as in CheriBSD ("we never free that fp"), the runtime keeps
 * the open file for the life of the address space. */
int     capfromfd(void * __capability *capp, int fd);
int     captofd(void * __capability cap, int *fdp);

/* FreeBSD's elf_aux_info(3): copy auxv entry `aux` into buf (buflen must be
 * sizeof(int) or sizeof(long)/sizeof(void *)).  Returns 0 or an errno value.
 * AT_CAPC and AT_CAPV read as 0 / NULL (no vector) when the process has none. */
int     elf_aux_info(int aux, void *buf, int buflen);

/* FreeBSD's pthread_getthreadid_np(3) (<pthread_np.h> in the overlay): the
 * thread id of the running code's subject, as cogettid(). */
int     pthread_getthreadid_np(void);

/* FreeBSD's sysctl(3) (<sys/sysctl.h> in the overlay names the numbers
 * CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME), for the node colocated programs
 * ask: {CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, pid}, the path of the
 * program process pid (-1: the caller) runs.  FreeBSD's MIB numbers: */
#define COLO_CTL_KERN               1
#define COLO_KERN_PROC              14
#define COLO_KERN_PROC_PATHNAME     12
int     sysctl(const int *name, unsigned int namelen, void *oldp, size_t *oldlenp,
               const void *newp, size_t newlen);

#ifdef __cplusplus
}
#endif

#endif
