/* colo_linux_newer.h - Linux UAPI values newer than the build machine's kernel headers may be
 * (Debian 12 ships Linux 6.1's), named and valued as the kernel's own headers have them; a
 * newer header's definitions win.  Include after <linux/seccomp.h>. */
#ifndef COLO_LINUX_NEWER_H
#define COLO_LINUX_NEWER_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Linux 6.6: synchronous wake-ups for a seccomp listener (the woken side runs on the waker's CPU). */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#endif
