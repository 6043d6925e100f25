/* colo_abi.c - compile-time checks that the shared layouts in colo_abi.h are
 * what every reader of them (runtime, guest code, outside tools) expects. */
#include <stddef.h>
#include "colo_abi.h"

_Static_assert(sizeof(struct colo_table_header) == 4096, "table header is one page");
_Static_assert(sizeof(struct colo_slot) <= 8192, "slot header fits below the start-up stack");
_Static_assert(sizeof(struct colo_proc_entry) % 8 == 0, "table entries stay 8-byte aligned");
_Static_assert((COLO_SLOT_REGION_BASE & (COLO_SLOT_SIZE - 1)) == 0, "slots are aligned");
_Static_assert(COLO_STACK_LIMIT_OFFSET >= COLO_SLOT_HEADER_SIZE, "the stack stays above the slot header");
_Static_assert(COLO_STACK_TOP_OFFSET < COLO_IMAGE_OFFSET, "the stack lies below the program");
_Static_assert(COLO_IMAGE_OFFSET + COLO_BRK_LIMIT + 0x100000000ULL <= COLO_MMAP_LO_OFFSET, "program and brk heap stay below the mmap area");
_Static_assert(COLO_TABLE_ADDR + 0x10000000ULL <= COLO_SLOT_REGION_BASE, "table lies below the slots");
_Static_assert(COLO_SLOT_REGION_END <= 0x7f0000000000ULL, "the slot region fits the 47-bit user address space");
