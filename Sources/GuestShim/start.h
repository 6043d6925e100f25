/* start.h - starting a member (start.c), as the agent does it. */
#ifndef COLO_SHIM_START_H
#define COLO_SHIM_START_H

#include "colo_abi.h"

/* Start the program of `slot` as colo_spawn does, with CLONE_PARENT: the caller's parent
 * is its parent (the agent's members are the runtime's children). */
int colo_spawn_as_sibling(struct colo_slot *slot);

/* Start the program of `slot` as colo_spawn does, and a pidfd of it in *pidfd: it names the
 * process even after an autoreaping parent (a fork child's agent) has reaped it. */
int colo_spawn_with_pidfd(struct colo_slot *slot, int32_t *pidfd);

/* clone3 (CLONE_VM, CLONE_PIDFD, exit signal SIGCHLD) of a process that runs fn(slot) on
 * `slot`'s start-up stack, with PID `pid` if it is not 0 (set_tid); *pidfd names it.  Its
 * PID, or -errno. */
long colo_clone_on_start_stack(struct colo_slot *slot, void (*fn)(void *), int32_t pid, int32_t *pidfd);

#endif
