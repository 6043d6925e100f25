/*
 * sys/capsicum.h - capability mode (cap_enter(2), cap_getmode(2)) for
 * programs colocated by colo(1), where CheriBSD declares it.
 *
 * Linux has no Capsicum.  Here capability mode is a seccomp filter the
 * process installs on itself: per-process, irrevocable, inherited by every
 * child.  It refuses, with ECAPMODE, the system calls that reach global
 * namespaces: paths (every call taking a path outside an *at form, and *at
 * calls relative to AT_FDCWD), new network addresses (bind, connect, sendto
 * to an address), other processes by PID (kill and friends but for the
 * process itself, ptrace, process_vm_*, pidfd_open), and the colocation calls
 * CheriBSD does not allow there (coexecve, coexecvec, coregister, colookup).
 * See capv(7) for the differences from Capsicum.
 */
#ifndef COLO_SYS_CAPSICUM_H
#define COLO_SYS_CAPSICUM_H

#include <errno.h>
#include <sys/types.h>

/* The errno of a call refused in capability mode ("Operation canceled"): no
 * path or socket operation fails with it otherwise, so libraries such as
 * libpaths can tell a refusal from a real failure. */
#ifndef ECAPMODE
#define ECAPMODE ECANCELED
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Enter capability mode (for good).  0, or -1 with errno. */
int cap_enter(void);

/* *modep = 1 in capability mode, else 0.  Returns 0. */
int cap_getmode(unsigned int *modep);

/* Is capability mode in effect?  (cap_sandboxed(3)) */
int cap_sandboxed(void);

#ifdef __cplusplus
}
#endif

#endif
