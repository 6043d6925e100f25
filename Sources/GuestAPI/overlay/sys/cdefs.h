/*
 * overlay/sys/cdefs.h - <sys/cdefs.h> as FreeBSD programs see it: the system's
 * header (libbsd's overlay, which adds __FBSDID and __unused, when it is in
 * use) plus the branch-prediction hints __predict_true and __predict_false;
 * with GCC, __thread is C11's _Thread_local, which may follow `static` as
 * with clang, CheriBSD's compiler (GCC's own __thread must come first, and
 * CheriBSD's libbinds writes `__thread static`).
 *
 * Installed in the overlay directory that colo.pc puts first on the include
 * path (see overlay/unistd.h).
 */
#ifndef COLO_OVERLAY_SYS_CDEFS_H
#define COLO_OVERLAY_SYS_CDEFS_H

#include_next <sys/cdefs.h>

#ifndef __predict_true
#define __predict_true(exp)  __builtin_expect((exp), 1)
#endif
#ifndef __predict_false
#define __predict_false(exp) __builtin_expect((exp), 0)
#endif

#if defined(__GNUC__) && !defined(__clang__) && !defined(__cplusplus) && __STDC_VERSION__ >= 201112L
#define __thread _Thread_local
#endif

#endif
