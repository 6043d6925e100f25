/* switcher.h - what the runtime calls in Sources/Switcher: code that runs inside
 * guest processes (start-up trampoline, SIGSYS handler, seccomp filter). */
#ifndef COLO_SWITCHER_H
#define COLO_SWITCHER_H

#include <stdint.h>
#include "../../GuestAPI/include/colo_abi.h"

/* Build the address space's seccomp program into out[0..max).  Returns its
 * length, or -1 if it does not fit. */
int colo_build_filter(struct colo_sock_filter *out, uint32_t max);

/* Install `len` instructions of `prog` on the calling thread (with
 * PR_SET_NO_NEW_PRIVS if it lacks CAP_SYS_ADMIN) and return the user
 * notification listener fd, or -errno. */
int colo_install_filter(const struct colo_sock_filter *prog, uint32_t len);

/* Start a colocated process: clone(CLONE_VM) a child that runs the start-up
 * sequence described by the slot (fds, cwd, credentials, signals) and
 * jumps to slot->entry with slot->initial_sp.  Returns the child's pid or -errno.
 * Must be called from a thread that lives as long as the address space
 * (the child's parent-death signal is tied to it). */
int colo_spawn(struct colo_slot *slot);

/* Record, in the runtime process, which signals are ignored and blocked now,
 * before anything changes them: a started program inherits these, as after execve. */
void colo_capture_initial_signals(uint64_t *ignored, uint64_t *blocked);

#endif
