/* colo_trace.h - what the runtime and `colo trace` use of in-process system-call
 * tracing (Sources/GuestShim/trace.c; layout and protocol: colo_abi.h, struct
 * colo_trace_ring and struct colo_trace_record). */
#ifndef COLO_TRACE_H
#define COLO_TRACE_H

#include <stdint.h>
#include "colo_abi.h"

/* Which argument of system call `nr` is a path (a NUL-terminated string), or -1. */
int colo_trace_path_arg(int nr);

/* Which argument of `nr` is an argument vector (execve's argv), or -1. */
int colo_trace_argv_arg(int nr);

/* Record the runtime's text, which traced threads run exempt from Syscall
 * User Dispatch, in the table header. */
void colo_trace_publish(struct colo_table_header *h);

/* The runtime's child `pid` exited, was killed or stopped (wait status
 * `status`): a record of it, if the address space is traced.  Runs in the
 * address space. */
void colo_trace_wait_status(int32_t pid, int32_t status);

/* Offsets into struct colo_scb, for a tracer that sets a thread's selectors. */
uint64_t colo_scb_selector_offset(void);
uint64_t colo_scb_idle_selector_offset(void);

/* ---- the tracer's side, on its own mapping of the ring ---- */

/* The number of the next record to be claimed. */
uint64_t colo_trace_head(const struct colo_trace_ring *ring);

/* Copy record n into `out`: 1, or 0 while it is not complete. */
int colo_trace_read(const struct colo_trace_ring *ring, uint64_t n, struct colo_trace_record *out);

/* Records before n are read: their writers' room is free (wakes writers). */
void colo_trace_consumed(struct colo_trace_ring *ring, uint64_t n);

/* The tracer has mapped the ring (wakes the runtime waiting for it). */
void colo_trace_reader_ready(struct colo_trace_ring *ring);

/* The runtime, started by `colo trace -- COMMAND`: wait (at most `seconds`)
 * until its reader has mapped the ring.  1 if it has, 0 if it died or took
 * too long. */
int colo_trace_wait_for_reader(struct colo_trace_ring *ring, int seconds);

/* Start (1) or stop (0) trapping the calls of traced threads. */
void colo_trace_set(struct colo_table_header *h, int on);

#endif
