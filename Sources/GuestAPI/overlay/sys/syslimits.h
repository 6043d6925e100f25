/*
 * overlay/sys/syslimits.h - FreeBSD's <sys/syslimits.h> (PATH_MAX, NAME_MAX,
 * ARG_MAX, PIPE_BUF, ...): on Linux the C library's <limits.h> has them.
 *
 * Installed in the overlay directory that colo.pc puts first on the include
 * path (see overlay/unistd.h).
 */
#ifndef COLO_OVERLAY_SYS_SYSLIMITS_H
#define COLO_OVERLAY_SYS_SYSLIMITS_H

#include <limits.h>

#endif
