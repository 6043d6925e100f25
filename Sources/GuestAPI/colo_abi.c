/* colo_abi.c - compile-time checks that the shared layouts in colo_abi.h are
 * what every reader of them (runtime, guest code, outside tools) expects. */
#include <stddef.h>
#include "colo_abi.h"

_Static_assert(sizeof(struct colo_table_header) == 4096, "table header is one page");
_Static_assert(sizeof(struct colo_slot) <= 8192, "slot header fits below the start-up stack");
_Static_assert(sizeof(struct colo_proc_entry) % 8 == 0, "table entries stay 8-byte aligned");
_Static_assert((COLO_SLOT_REGION_BASE & (COLO_SLOT_SIZE - 1)) == 0, "slots are aligned");
_Static_assert(COLO_MMAP_HI_OFFSET < COLO_STACK_TOP_OFFSET - 0x40000000ULL, "mmap area stays below the stack");
_Static_assert(COLO_TABLE_ADDR + 0x10000000ULL <= COLO_SLOT_REGION_BASE, "table lies below the slots");
_Static_assert(COLO_SLOT_REGION_END <= 0x7f0000000000ULL, "the slot region fits the 47-bit user address space");
