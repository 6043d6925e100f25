/* colo_switch_log.h - what the runtime and the tools (colo trace, colo
 * switcher-log) use of the switcher's event log (Sources/Switcher/events.c;
 * layout and protocol: colo_abi.h, struct colo_switch_event). */
#ifndef COLO_SWITCH_LOG_H
#define COLO_SWITCH_LOG_H

#include <stdint.h>
#include "colo_abi.h"

/* Add `delta` to the table's switch_log word (a tracer: +/-COLO_SWITCH_LOG_TRACER). */
void colo_switch_log_adjust(struct colo_table_header *h, int32_t delta);

/* Set or clear bit 0 of switch_log (debug.colocation_debug). */
void colo_switch_log_knob(struct colo_table_header *h, int on);

/* The switch_log word, and the number of the next event to be written. */
uint32_t colo_switch_log_flags(const struct colo_table_header *h);
uint64_t colo_switch_log_head(const struct colo_table_header *h);

/* offsetof(struct colo_scb, borrowing), for a tracer that reads a thread's SCB. */
uint64_t colo_scb_borrowing_offset(void);

/* The time stamp counter, as the switcher reads it. */
uint64_t colo_rdtsc(void);

#endif
