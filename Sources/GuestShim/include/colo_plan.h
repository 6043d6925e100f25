/* colo_plan.h - a mapping plan: what the Swift loader decided for one program, as data that
 * C code in the mm that is to hold it applies (colo_plan_apply, plan.c).  The runtime applies
 * plans in its own mm; a fork child that becomes an address space applies the plan of the
 * runtime that will serve it (space.c). */
#ifndef COLO_PLAN_H
#define COLO_PLAN_H

#include <stdint.h>

#define COLO_PLAN_MAGIC 0x4e414c504f4c4f43ULL   /* "COLOPLAN" */

enum colo_plan_op_kind {
    COLO_PLAN_RESERVE = 1,  /* anonymous at exactly [addr, addr+len), replacing nothing (else ENOMEM):
                             * `prot`, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE|`flags`;
                             * undone if a later operation fails */
    COLO_PLAN_FILE = 2,     /* `fd`'s pages from `offset` at addr: `prot`, MAP_PRIVATE|MAP_FIXED */
    COLO_PLAN_ANON = 3,     /* anonymous pages at addr: `prot`, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS */
    COLO_PLAN_ZERO = 4,     /* zero [addr, addr+len) as binfmt_elf's padzero does (reading /dev/zero,
                             * which fails instead of faulting); a failure counts only if `flags` is 1 */
    COLO_PLAN_COPY = 5,     /* copy len bytes of the plan's data, from `offset`, to addr */
};

struct colo_plan_op {
    uint32_t kind;          /* enum colo_plan_op_kind */
    int32_t  fd;
    int32_t  prot;
    int32_t  flags;
    uint64_t addr, len, offset;
};

/* A plan: the header, `nops` operations, then `data_len` bytes of data (`size` in all). */
struct colo_plan {
    uint64_t magic;
    uint32_t nops;
    uint32_t size;
    uint64_t data_len;
    uint64_t entry;         /* where the program starts (the interpreter's entry if it has one) */
    uint64_t sp;            /* its initial stack pointer */
    struct colo_plan_op ops[];
};

/* Apply `plan` (`size` bytes, which are checked) in the calling process's mm.  0, or -errno
 * with *failed the index of the operation that failed (nops: the plan itself is malformed);
 * on failure every range a RESERVE mapped is unmapped again.  Raw system calls only. */
long colo_plan_apply(const struct colo_plan *plan, uint64_t size, uint32_t *failed);

#endif
