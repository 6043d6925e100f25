/* events.h - the switcher's event log (colo_abi.h: struct colo_switch_event).
 *
 * The fast path pays for the log only this: colo_log_on(), one load of the
 * table header's switch_log word and a branch that is predicted not taken
 * while logging is off.  Everything else is out of line, in events.c. */
#ifndef COLO_SWITCHER_EVENTS_H
#define COLO_SWITCHER_EVENTS_H

#include <stdint.h>
#include "colo_abi.h"

/* Is the event log on? */
static inline int colo_log_on(void)
{
    const struct colo_table_header *h = (const struct colo_table_header *)COLO_TABLE_ADDR;
    return __builtin_expect(__atomic_load_n(&h->switch_log, __ATOMIC_RELAXED) != 0, 0);
}

/* At the start of a fast cocall that holds its callee (buffers checked):
 * the time and the op of the request (`out`, `outlen`: the caller's), kept
 * in the caller's SCB. */
void colo_log_call_begin(struct colo_scb *caller, uint64_t out, uint64_t outlen);

/* At its end: `delivered` bytes went to the callee (or -errno), the call
 * returns `r` (bytes received or -errno).  Nothing if its start was not
 * logged (the log was turned on meanwhile). */
void colo_log_call_end(struct colo_scb *caller, const struct colo_scb *callee, long delivered, long r);

/* Any other event (enum colo_switch_event_kind) of borrower `who` and callee `peer`. */
void colo_log_event(uint32_t kind, const struct colo_scb *who, const struct colo_scb *peer, int64_t result, uint64_t arg);

#endif
