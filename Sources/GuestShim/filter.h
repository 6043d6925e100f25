/* filter.h - the seccomp program colo_build_filter built last (filter.c). */
#ifndef COLO_SHIM_FILTER_H
#define COLO_SHIM_FILTER_H

#include <stdint.h>
#include "colo_abi.h"

extern struct colo_sock_filter colo_filter_program[];
extern uint32_t colo_filter_length;

#endif
