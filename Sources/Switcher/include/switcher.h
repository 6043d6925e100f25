/* switcher.h - what the runtime calls in Sources/Switcher: code that runs inside
 * guest processes (start-up trampoline, SIGSYS handler, seccomp filter). */
#ifndef COLO_SWITCHER_H
#define COLO_SWITCHER_H

#include <stdint.h>
#include "../../GuestAPI/include/colo_abi.h"

/* Build the process's seccomp program into slot->filter.  0 or -1 (too long). */
int colo_build_filter(struct colo_slot *slot);

/* Start a colocated process: clone(CLONE_VM) a child that runs the start-up
 * sequence described by the slot (fds, cwd, credentials, signals, seccomp) and
 * jumps to slot->entry with slot->initial_sp.  Returns the child's pid or -errno.
 * Must be called from a thread that lives as long as the address space
 * (the child's parent-death signal is tied to it). */
int colo_spawn(struct colo_slot *slot);

/* Record, in the runtime process, which signals are ignored and blocked now,
 * before anything changes them: a started program inherits these, as after execve. */
void colo_capture_initial_signals(uint64_t *ignored, uint64_t *blocked);

#endif
