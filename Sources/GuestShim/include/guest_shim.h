/* guest_shim.h - what the runtime calls in the guest shim (Sources/GuestShim): the code that
 * runs inside an address space for it: seccomp filter, start-up, SIGSYS handler, agent. */
#ifndef COLO_GUEST_SHIM_H
#define COLO_GUEST_SHIM_H

#include <stdint.h>
#include "colo_abi.h"

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

/* The runtime of a fork child that becomes an address space (space.c) serves it now: the
 * child, waiting in its SIGSYS handler, goes on (`slot` may be the runtime's view of its header). */
void colo_space_ready(struct colo_slot *slot);

/* What the seccomp program `prog` (`len` instructions, as colo_build_filter makes it) returns
 * for the call described by `d` (bpf.c). */
struct seccomp_data;
uint32_t colo_filter_run(const struct colo_sock_filter *prog, uint32_t len, const struct seccomp_data *d);

/* Let the switcher report signals to the in-process tracer (trace.c).  The runtime calls it
 * before the address space has processes; they share the setting with the runtime's image. */
void colo_trace_install(void);

#endif
