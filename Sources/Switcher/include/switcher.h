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

/* Start the address space's watchdog (watchdog.c): when `read_fd` (the read end of a
 * pipe whose write end only the runtime holds) reports the runtime's end, it kills
 * every process of the mm.  Its PID, or -errno. */
int colo_watchdog_start(int read_fd);

/* The runtime of a fork child that became an address space (space.c) serves it now: the
 * child, waiting in its SIGSYS handler, goes on. */
void colo_space_ready(struct colo_slot *slot);

/* What the seccomp program `prog` (`len` instructions, as colo_build_filter makes it) returns
 * for the call described by `d` (bpf.c). */
struct seccomp_data;
uint32_t colo_filter_run(const struct colo_sock_filter *prog, uint32_t len, const struct seccomp_data *d);

/* ---- the switcher (switch.c), as the runtime sees it ---- */

/* 1 if user code may read and write the FS and GS bases (rdfsbase etc.:
 * CPUID FSGSBASE and the auxv's HWCAP2_FSGSBASE, which Linux sets when it
 * enabled them), which the switcher needs. */
int colo_switcher_supported(void);

/* The switcher's entry points, for colo_table_header.switcher. */
void colo_switcher_entries(uint64_t out[8]);

/* Set up the SCB of thread `tid` of process `pid` (slot header at `slot`,
 * WCHAN field of its table entry at `wchan`): state NEW. */
void colo_scb_init(struct colo_scb *scb, int32_t pid, int32_t tid, uint64_t cookie, uint64_t slot, char *wchan);

/* enum colo_scb_state of an SCB. */
uint32_t colo_scb_state(const struct colo_scb *scb);

/* The thread accepts with coaccept_slow: fast callers get EPROTOTYPE. */
void colo_scb_set_slow(struct colo_scb *scb);

/* The PID of the caller a fast coaccept of this thread is serving, or 0 (also when the SCB's
 * caller field, which its process can write, names no SCB block). */
int32_t colo_scb_caller_pid(const struct colo_scb *scb);

/* The thread has exited: calls give ENOLINK, a caller waiting for it is
 * answered 0 (nothing received), a callee whose context it borrowed gets EINTR. */
void colo_scb_retire(struct colo_scb *scb);

#endif
