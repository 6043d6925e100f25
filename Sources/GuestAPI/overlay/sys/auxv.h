/*
 * overlay/sys/auxv.h - <sys/auxv.h> as CheriBSD programs see it: the C
 * library's header (getauxval), then FreeBSD's elf_aux_info(3) and the
 * capability-vector entries AT_CAPC (37) and AT_CAPV (38) of CheriBSD's
 * `cocalls` branch (declared in <colo.h> and <colo_abi.h>).
 *
 * Installed in the overlay directory that colo.pc puts first on the include
 * path (see overlay/unistd.h).
 */
#ifndef COLO_OVERLAY_SYS_AUXV_H
#define COLO_OVERLAY_SYS_AUXV_H

#include_next <sys/auxv.h>
#include <colo.h>

#endif
