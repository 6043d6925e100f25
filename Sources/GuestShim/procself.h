/* procself.h - a process sees itself: /proc exe links of the address space (procself.c). */
#ifndef COLO_SHIM_PROCSELF_H
#define COLO_SHIM_PROCSELF_H

#include <stdint.h>
#include "colo_abi.h"

/* readlinkat(dirfd, path, buf, size) trapped in slot `s`: a /proc exe link of a process of
 * this address space names that process's program. */
long colo_do_readlink(struct colo_slot *s, long dirfd, uint64_t path, uint64_t buf, long size);

/* The program an exec of (dirfd, path, flags) by slot `s`'s process means when the path
 * is a /proc exe link of the address space (or, with AT_EMPTY_PATH, a descriptor opened
 * on one), else 0. */
const char *colo_exec_own_program(struct colo_slot *s, long dirfd, uint64_t path, long flags);

#endif
