/* start.h - starting a member (start.c), as the agent does it. */
#ifndef COLO_SHIM_START_H
#define COLO_SHIM_START_H

#include "colo_abi.h"

/* Start the program of `slot` as colo_spawn does, with CLONE_PARENT: the caller's parent
 * is its parent (the agent's members are the runtime's children). */
int colo_spawn_as_sibling(struct colo_slot *slot);

#endif
