/* colo_layout.h - where the shared structures of an address space are, as addresses
 * (colo_abi.h gives the layout; these name its parts). */
#ifndef COLO_LAYOUT_H
#define COLO_LAYOUT_H

#include <stdint.h>
#include "colo_abi.h"

/* The header of slot `index` (< COLO_MAX_SLOTS: callers check). */
static inline struct colo_slot *colo_slot_at(uint64_t index)
{
    return (struct colo_slot *)(COLO_SLOT_REGION_BASE + (index << COLO_SLOT_SHIFT));
}

/* Row `index` (< COLO_MAX_SLOTS) of the process table. */
static inline struct colo_proc_entry *colo_proc_entry_at(uint64_t index)
{
    return (struct colo_proc_entry *)(COLO_TABLE_ADDR + 4096 + index * sizeof(struct colo_proc_entry));
}

/* Is `a` the start of an SCB block of the SCB area (the event log's excepted)?  What the
 * runtime's side checks before it follows an SCB address a guest could have written. */
static inline int colo_is_scb_block(uint64_t a)
{
    return a >= COLO_SCB_AREA_ADDR && a < COLO_SWITCH_LOG_ADDR && (a - COLO_SCB_AREA_ADDR) % COLO_SCB_SIZE == 0;
}

/* The slot whose region holds address `a` (a calling instruction), or 0. */
static inline struct colo_slot *colo_slot_of(uint64_t a)
{
    if (a < COLO_SLOT_REGION_BASE || a >= COLO_SLOT_REGION_END) return 0;
    struct colo_slot *s = (struct colo_slot *)(COLO_SLOT_REGION_BASE +
        (((a - COLO_SLOT_REGION_BASE) >> COLO_SLOT_SHIFT) << COLO_SLOT_SHIFT));
    return s->magic == COLO_SLOT_MAGIC ? s : 0;
}

#endif
