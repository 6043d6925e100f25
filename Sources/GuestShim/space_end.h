/* space_end.h - ending an address space's processes (space_end.c). */
#ifndef COLO_SHIM_SPACE_END_H
#define COLO_SHIM_SPACE_END_H

/* Kill every other process of the caller's mm until there is none, then exit. */
void colo_kill_address_space_and_exit(void) __attribute__((noreturn));

#endif
