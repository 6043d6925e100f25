/* space.h - what exec.c and the SIGSYS handler call in space.c: fork children as address spaces. */
#ifndef COLO_SWITCHER_SPACE_H
#define COLO_SWITCHER_SPACE_H

#include "switcher.h"

/* In a fork child, just forked in the SIGSYS handler: not an address space until it needs one. */
void colo_space_forked(struct colo_slot *s);

/* The runtime asks this process (a fork child, owner of slot `index`) to become an address
 * space now: someone coexecve()s into it.  From the SIGSYS handler, asynchronously. */
void colo_space_requested(uint32_t index);

#endif
