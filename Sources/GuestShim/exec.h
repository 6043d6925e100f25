/* exec.h - exec in place, coexecve and vfork, trapped in a slot (exec.c). */
#ifndef COLO_SHIM_EXEC_H
#define COLO_SHIM_EXEC_H

#include <ucontext.h>
#include "colo_abi.h"

/* execve (at = 0) or execveat (at = 1) trapped in slot `s`. */
long colo_do_execve(struct colo_slot *s, ucontext_t *uc, int at);

/* coexecve(pid, path, argv, envp) and coexecvec(..., capv, capc) trapped in slot `s`: the
 * handlers of the calls colo_syscalls.def serves in the guest (colo_do_<id>). */
long colo_do_coexecve(struct colo_slot *s, ucontext_t *uc);
long colo_do_coexecvec(struct colo_slot *s, ucontext_t *uc);

/* vfork or clone(CLONE_VFORK) trapped in slot `s`; the parent returns only
 * through a resumed context, never to the caller. */
long colo_do_vfork(struct colo_slot *s, ucontext_t *uc, int nr);

#endif
