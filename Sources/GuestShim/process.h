/* process.h - a process's descriptors and signal dispositions as exec and start-up leave
 * them (process.c). */
#ifndef COLO_SHIM_PROCESS_H
#define COLO_SHIM_PROCESS_H

#include <stdint.h>
#include "colo_abi.h"

/* Call visit(fd, F_GETFD flags, ctx) for each open descriptor of the
 * process, until it returns nonzero.  0 or -errno. */
long colo_each_fd(int (*visit)(long fd, long flags, void *ctx), void *ctx);

/* Close every descriptor marked close-on-exec (but `keep`).  0 or -errno. */
long colo_close_cloexec_fds(void);
long colo_close_cloexec_fds_except(int keep);

/* The dispositions a new program starts with: every signal default, those
 * of `ignored` (bit sig-1) ignored, SIGSYS the runtime's handler; those of `defaults` are
 * known to be default already (no call for them unless they are to be ignored).  0, or
 * -errno if the SIGSYS handler could not be installed. */
long colo_set_start_dispositions(uint64_t ignored, uint64_t defaults);

/* Set every disposition the caller may change to default (an agent, whose members start
 * from its dispositions). */
void colo_default_dispositions(void);

/* Dispositions as execve leaves them: handled signals back to default,
 * ignored ones kept; the shadowed SIGSYS record of slot `s` too, if given.
 * The thread also leaves the switcher (colo_switch_detach). */
void colo_reset_signals_for_exec(struct colo_slot *s);

#endif
