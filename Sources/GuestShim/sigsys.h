/* sigsys.h - the SIGSYS handler's dispatch (sigsys.c). */
#ifndef COLO_SHIM_SIGSYS_H
#define COLO_SHIM_SIGSYS_H

#include <ucontext.h>
#include "colo_abi.h"

/* A system call the seccomp filter traps to the handler, made for slot `s`: its result, or
 * no return (exec, vfork). */
long colo_serve_trap(struct colo_slot *s, ucontext_t *uc, int nr);

#endif
