/*
 * overlay/sys/socket.h - <sys/socket.h> as CheriBSD programs see it: the
 * system's header plus the SCM_CAPS control message, which carries
 * capabilities over unix(4) sockets.  Linux has no such message, so here
 * sendmsg(2) and recvmsg(2) are the colo library's colo_sendmsg(3) and
 * colo_recvmsg(3): they take and give SCM_CAPS in CheriBSD's form and pass
 * every other message, and every call without SCM_CAPS, unchanged.  The
 * receiver refuses capabilities of another address space with EPROT, as
 * CheriBSD's kernel does.  (A program that defines a function called sendmsg
 * or recvmsg itself must #undef the name first.)
 *
 * Installed in the overlay directory that colo.pc puts first on the include
 * path (see overlay/unistd.h).
 */
#ifndef COLO_OVERLAY_SYS_SOCKET_H
#define COLO_OVERLAY_SYS_SOCKET_H

#include_next <sys/socket.h>

#ifndef SCM_CAPS
#define SCM_CAPS 0x10       /* as <capv.h> */
#endif

#ifdef __cplusplus
extern "C" {
#endif
ssize_t colo_sendmsg(int s, const struct msghdr *msg, int flags);
ssize_t colo_recvmsg(int s, struct msghdr *msg, int flags);
#ifdef __cplusplus
}
#endif

#define sendmsg(s, msg, flags) colo_sendmsg(s, msg, flags)
#define recvmsg(s, msg, flags) colo_recvmsg(s, msg, flags)

#endif
