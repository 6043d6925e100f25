/* space.h - what exec.c and the SIGSYS handler call in space.c: fork children as address spaces. */
#ifndef COLO_SWITCHER_SPACE_H
#define COLO_SWITCHER_SPACE_H

#include "colo_abi.h"

/* What a fork child makes its own of the shared structures, copied by the parent just before
 * the fork: a copy the child made after it raced with the parent's writes to the originals (a
 * brk of the parent between the two left the child's header believing in heap pages its mm
 * does not have).  Private anonymous memory: the fork gives the child its own copy of each,
 * which it moves into place; the parent unmaps them.  0: not copied (the child copies then). */
struct colo_fork_copies {
    uint64_t header;              /* the slot header's runtime part */
    uint64_t caps, caps_len;      /* the capability table's part in use */
    uint64_t scb, scb_block;      /* the calling thread's SCB block, and which block */
};

/* A fork in the SIGSYS handler, plain or onto a new stack (clone.S): the child resumes
 * `child` with `copies` beside it. */
struct colo_fork_start {
    struct colo_resume child;
    struct colo_fork_copies copies;
};

/* The parent, before and after the fork. */
void colo_fork_prepare(struct colo_slot *s, struct colo_fork_copies *c);
void colo_fork_release(const struct colo_fork_copies *c);

/* A fork child, just forked in the SIGSYS handler, is not an address space until it needs one,
 * and stops sharing its parent's address space's structures before it runs guest code: its
 * slot header becomes a private copy, the capability table and the SCB area private and empty
 * (its own thread's block copied), from `c`.  `s` is its slot; colo_fork_child_resumed finds it
 * from the context the child resumes (clone.S), the first member of a struct colo_fork_start. */
void colo_fork_child(struct colo_slot *s, const struct colo_fork_copies *c);
void colo_fork_child_resumed(const struct colo_resume *r);

/* The runtime asks this process (a fork child, owner of slot `index`) to become an address
 * space now: someone coexecve()s into it.  From the SIGSYS handler, asynchronously. */
void colo_space_requested(uint32_t index);

#endif
