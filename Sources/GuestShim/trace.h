/* trace.h - in-process tracing as the rest of the guest shim uses it (trace.c; the runtime's
 * side is colo_trace.h). */
#ifndef COLO_SHIM_TRACE_H
#define COLO_SHIM_TRACE_H

#include <signal.h>
#include <ucontext.h>
#include "colo_abi.h"

/* If the address space is traced (colo_trace_on), trap the calling thread's system calls
 * from now on. */
void colo_trace_enable_here(void);

/* A traced thread's system call (SIGSYS from Syscall User Dispatch). */
void colo_trace_syscall(struct colo_slot *s, siginfo_t *info, ucontext_t *uc);

/* The end of the thread's call recorded as COLO_TRACE_ENTRY. */
void colo_trace_result(long result);

#endif
