/*
 * overlay/sys/param.h - <sys/param.h> as FreeBSD programs see it: the system's
 * header (reached with #include_next, through libbsd's overlay if it is in
 * use) plus FreeBSD's MAXBSIZE, the largest file-system block, which
 * CheriBSD's colocation tools use to size their message buffers, and
 * nitems(), the number of elements of an array.
 *
 * Installed in the overlay directory that colo.pc puts first on the include
 * path (see overlay/unistd.h).
 */
#ifndef COLO_OVERLAY_SYS_PARAM_H
#define COLO_OVERLAY_SYS_PARAM_H

#include_next <sys/param.h>

#ifndef MAXBSIZE
#define MAXBSIZE 65536      /* FreeBSD's value */
#endif

#ifndef nitems
#define nitems(x) (sizeof((x)) / sizeof((x)[0]))
#endif

#endif
