/* space.h - what exec.c and the SIGSYS handler call in space.c: fork children as address spaces. */
#ifndef COLO_SWITCHER_SPACE_H
#define COLO_SWITCHER_SPACE_H

#include <ucontext.h>
#include "switcher.h"

/* In a fork child, just forked in the SIGSYS handler: mark it as not an address space yet and
 * make its colocation calls that need one trap to the handler (a filter of its own). */
void colo_space_forked(struct colo_slot *s);

/* A colocation call served by the runtime that reached the handler (the fork child's filter):
 * make the caller an address space first if it is a fork child that is none yet, then make the
 * call, from the handler's code, to the runtime that serves it. */
long colo_space_forward(struct colo_slot *s, ucontext_t *uc, int nr);

/* The runtime asks this process (a fork child, owner of slot `index`) to become an address
 * space now: someone coexecve()s into it.  From the SIGSYS handler, asynchronously. */
void colo_space_requested(uint32_t index);

#endif
