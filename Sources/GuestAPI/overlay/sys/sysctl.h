/*
 * overlay/sys/sysctl.h - FreeBSD's <sys/sysctl.h> for colocated programs:
 * glibc has no such header (Linux dropped sysctl(2)), so this one declares
 * sysctl(3) from the colo library and the MIB numbers of the node CheriBSD's
 * colocation programs and tests ask, {CTL_KERN, KERN_PROC,
 * KERN_PROC_PATHNAME, pid}: the path of the program that process pid (-1:
 * the caller) runs.  For a colocated process that is its own program, not
 * the runtime that /proc/self/exe names.  Other nodes answer ENOENT.  The
 * numbers are FreeBSD's (see <colo.h>).
 *
 * Installed in the overlay directory that colo.pc puts first on the include
 * path (see overlay/unistd.h).
 */
#ifndef COLO_OVERLAY_SYS_SYSCTL_H
#define COLO_OVERLAY_SYS_SYSCTL_H

#include <sys/types.h>
#include <colo.h>

#define CTL_KERN            COLO_CTL_KERN
#define KERN_PROC           COLO_KERN_PROC
#define KERN_PROC_PATHNAME  COLO_KERN_PROC_PATHNAME

#endif
