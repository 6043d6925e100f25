/*
 * overlay/errno.h - <errno.h> as CheriBSD programs see it: the C library's
 * header plus the FreeBSD error numbers they use that Linux does not have,
 * each spelt as the Linux errno that stands for it here:
 *   EPROT     (capability from another address space)  EPROTO, as <colo.h>
 *   ECAPMODE  (not permitted in capability mode)       ECANCELED, as <sys/capsicum.h>
 *   EDOOFUS   (programming error)                      EINVAL
 *
 * Installed in the overlay directory that colo.pc puts first on the include
 * path (see overlay/unistd.h).
 */
#ifndef COLO_OVERLAY_ERRNO_H
#define COLO_OVERLAY_ERRNO_H

#include_next <errno.h>

#ifndef EPROT
#define EPROT EPROTO
#endif
#ifndef ECAPMODE
#define ECAPMODE ECANCELED
#endif
#ifndef EDOOFUS
#define EDOOFUS EINVAL
#endif

#endif
