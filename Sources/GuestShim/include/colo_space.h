/* colo_space.h - how a fork child becomes an address space served from outside its mm: the
 * plan the new address space's runtime writes into the child's slot header (space.c applies it). */
#ifndef COLO_SPACE_H
#define COLO_SPACE_H

#include <stdint.h>

#define COLO_SPACE_PLAN_MAGIC 0x4e414c5053434f43ULL   /* "COSPLAN" */
#define COLO_SPACE_MAX_MAPS 8

/* Map `len` bytes of descriptor `fd` from `offset` at `addr`, shared (MAP_FIXED: it replaces the
 * copy the fork made); the bytes [addr + keep_from, addr + keep_from + keep_len) the child has
 * there now carry over (resident pages only: the others read as the file's). */
struct colo_space_map {
    int32_t  fd;
    uint32_t pad;
    uint64_t addr, len, offset;
    uint64_t keep_from, keep_len;
};

/* COLO_SYS_space(plan, size, slot, own SCB block)'s answer, in the child's buffer. */
struct colo_space_plan {
    uint64_t magic;
    uint32_t nmaps;
    int32_t  agent;         /* the agent's end of its socket to the runtime */
    struct colo_space_map maps[COLO_SPACE_MAX_MAPS];
};

#endif
