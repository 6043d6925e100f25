/* space.h - what exec.c and the SIGSYS handler call in space.c: fork children as address spaces. */
#ifndef COLO_SWITCHER_SPACE_H
#define COLO_SWITCHER_SPACE_H

#include "colo_abi.h"

/* A fork child, just forked in the SIGSYS handler, is not an address space until it needs one,
 * and stops sharing its parent's address space's structures before it runs guest code: its
 * slot header becomes a private copy, the capability table and the SCB area private and empty
 * (its own thread's block copied).  `s` is its slot; colo_fork_child_resumed finds it from the
 * context the child resumes (clone.S). */
void colo_fork_child(struct colo_slot *s);
void colo_fork_child_resumed(const struct colo_resume *r);

/* The runtime asks this process (a fork child, owner of slot `index`) to become an address
 * space now: someone coexecve()s into it.  From the SIGSYS handler, asynchronously. */
void colo_space_requested(uint32_t index);

#endif
