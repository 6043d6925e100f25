/*
 * overlay/pthread_np.h - FreeBSD's non-portable pthread functions that
 * CheriBSD's colocation programs use: pthread_getthreadid_np(3), the
 * thread's id (from the colo library; it is cogettid(2): for callee code
 * running on a caller's thread during a cocall, the callee thread's id, as
 * on CheriBSD).
 *
 * Installed in the overlay directory that colo.pc puts first on the include
 * path (see overlay/unistd.h).
 */
#ifndef COLO_OVERLAY_PTHREAD_NP_H
#define COLO_OVERLAY_PTHREAD_NP_H

#include <pthread.h>
#include <colo.h>

#endif
