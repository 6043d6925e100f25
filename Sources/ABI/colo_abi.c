/* colo_abi.c - compile-time checks that the shared layouts in colo_abi.h are
 * what every reader of them (runtime, guest code, outside tools) expects. */
#include <stddef.h>
#include "colo_abi.h"

/* colo_syscalls.def's calls lie in the colocation range with at most six arguments (their
 * ascending order, which the filter's decision tree relies on, is checked when it is built). */
#define COLO_SYSCALL(id, name, number, served, nargs, a0, a1, a2, a3, a4, a5) \
    _Static_assert(number >= 1000 && number <= 1999, #id " lies in the colocation range"); \
    _Static_assert(nargs >= 0 && nargs <= 6, #id " takes at most six arguments");
#include "colo_syscalls.def"
#undef COLO_SYSCALL

_Static_assert(sizeof(struct colo_table_header) == 4096, "table header is one page");
_Static_assert(sizeof(struct colo_slot) <= 8192, "slot header fits below the start-up stack");
_Static_assert(sizeof(struct colo_slot) <= COLO_SLOT_HEADER_RUNTIME_PART, "the runtime sees the whole struct");
_Static_assert(sizeof(struct colo_proc_entry) % 8 == 0, "table entries stay 8-byte aligned");
_Static_assert((COLO_SLOT_REGION_BASE & (COLO_SLOT_SIZE - 1)) == 0, "slots are aligned");
_Static_assert(COLO_STACK_LIMIT_OFFSET >= COLO_SLOT_HEADER_SIZE, "the stack stays above the slot header");
_Static_assert(COLO_STACK_TOP_OFFSET < COLO_IMAGE_OFFSET, "the stack lies below the program");
_Static_assert(COLO_IMAGE_OFFSET % 0x200000ULL == 0 && COLO_IMAGE_PACK_OFFSET + COLO_IMAGE_OFFSET - COLO_STACK_TOP_OFFSET <= 0x200000ULL,
               "a packed program's image and stack top lie in one 2 MiB page-table page");
_Static_assert(COLO_IMAGE_OFFSET + COLO_BRK_LIMIT + 0x100000000ULL <= COLO_MMAP_LO_OFFSET, "program and brk heap stay below the mmap area");
_Static_assert(COLO_TABLE_ADDR + 0x10000000ULL <= COLO_SLOT_REGION_BASE, "table lies below the slots");
_Static_assert(COLO_SLOT_REGION_END <= 0x7f0000000000ULL, "the slot region fits the 47-bit user address space");
_Static_assert(sizeof(struct colo_vfork_area) <= COLO_VFORK_AREA_SIZE - 0x1000, "a vfork area leaves room for its wait stack");
_Static_assert(COLO_VFORK_AREAS + COLO_VFORK_AREA_COUNT * COLO_VFORK_AREA_SIZE <= COLO_SLOT_HEADER_SIZE, "vfork areas fit the header");
_Static_assert(COLO_STACK_LIMIT_OFFSET > COLO_SLOT_HEADER_SIZE, "a guard gap separates the header from the stack");
_Static_assert(offsetof(struct colo_resume, mask) == 184 && offsetof(struct colo_resume, iret) == 192 &&
               offsetof(struct colo_resume, xsave) == 256, "colo_resume layout used by clone.S");
