/* switcher.h - what the runtime calls in the switcher (Sources/Switcher): fast cocall and
 * coaccept on guest threads, and the thread control blocks (SCBs) it keeps. */
#ifndef COLO_SWITCHER_H
#define COLO_SWITCHER_H

#include <stdint.h>
#include "colo_abi.h"

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

/* The slow path's staging (struct colo_scb's stage): take the record of the thread's call
 * with buffers out/outlen and in/inlen, which its library left there; COLO_STAGED_OUT if
 * `stage` holds the output, COLO_STAGED_IN if what the call receives may go into `stage`
 * (when it fits: else into the buffer). */
enum { COLO_STAGED_OUT = 1, COLO_STAGED_IN = 2 };
int colo_scb_take_stage(struct colo_scb *scb, uint64_t out, uint64_t outlen, uint64_t in, uint64_t inlen);
/* The staging area's bytes (COLO_STAGE_SIZE). */
void *colo_scb_stage(struct colo_scb *scb);
/* `n` bytes were put in the staging area for the call's input buffer. */
void colo_scb_stage_got(struct colo_scb *scb, int64_t n);

/* The thread accepts with coaccept_slow: fast callers get EPROTOTYPE. */
void colo_scb_set_slow(struct colo_scb *scb);

/* The PID of the caller a fast coaccept of this thread is serving, or 0 (also when the SCB's
 * caller field, which its process can write, names no SCB block). */
int32_t colo_scb_caller_pid(const struct colo_scb *scb);

/* The thread has exited: calls give ENOLINK, a caller waiting for it is
 * answered 0 (nothing received), a callee whose context it borrowed gets EINTR. */
void colo_scb_retire(struct colo_scb *scb);

#endif
