/* fork.h - what exec.c (and the SIGSYS handler) call in fork.c. */
#ifndef COLO_SWITCHER_FORK_H
#define COLO_SWITCHER_FORK_H

#include <ucontext.h>
#include "colo_abi.h"

/* Start the re-colocation helper thread of the calling process (owner of
 * slot `s`) unless it runs already. */
void colo_recolo_ensure_helper(struct colo_slot *s);

/* Stop the calling process's helper (before exec in place). */
void colo_recolo_stop_helper(struct colo_slot *s);

/* Forget the re-colocation state copied from a parent (a fork child becoming an address
 * space: its own helper, its own hand-overs). */
void colo_recolo_reset(struct colo_slot *s);

/* A forked child's execve that the runtime planned as a re-colocation:
 * returns only on failure (after trying a real execve). */
long colo_recolocate(ucontext_t *uc, long dirfd, long path, long argv, long envp, long flags);

/* wait4 or waitid trapped in slot `s`. */
long colo_do_wait(struct colo_slot *s, ucontext_t *uc, int nr);

#endif
