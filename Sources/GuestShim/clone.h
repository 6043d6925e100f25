/* clone.h - clones and program entry without libc (clone.S). */
#ifndef COLO_SHIM_CLONE_H
#define COLO_SHIM_CLONE_H

#include <stdint.h>
#include "colo_abi.h"

/* clone(2): the child starts on `stack` and calls fn(arg); if fn returns, the child exits. */
long colo_clone_start(unsigned long flags, void *stack, int32_t *ctid, void (*fn)(void *), void *arg);

/* clone3(2) whose child pops fn and arg from the top of its new stack. */
long colo_clone3_start(void *args, unsigned long size);

/* clone(2) whose child continues the guest context `child` (a fork child first leaves its
 * parent's shared structures, colo_fork_child_resumed). */
long colo_clone_resume(unsigned long flags, uint32_t *ctid, const struct colo_resume *child);

/* clone(2) of a traced thread: the child turns tracing on and continues `child`. */
long colo_clone_thread(unsigned long flags, void *sp, uint64_t ptid, uint64_t ctid, uint64_t tls,
                       const struct colo_resume *child);

/* Enter a program the way the kernel does after execve. */
void colo_jump(uint64_t entry, uint64_t sp) __attribute__((noreturn));

#endif
