/*
 * overlay/sys/un.h - <sys/un.h> as FreeBSD programs see it: struct
 * sockaddr_un with a sun_len member, which BSD programs set to SUN_LEN().
 * The structure keeps Linux's layout and size (110 bytes, sun_family first,
 * the path from byte 2) and gives the last byte of the path to sun_len:
 * sun_path holds 107 bytes, so paths up to 106 characters.  Linux ignores
 * the byte, because the path ends at its NUL or at the address length
 * passed to bind(2)/connect(2).
 *
 * Installed in the overlay directory that colo.pc puts first on the include
 * path (see overlay/unistd.h).
 */
#ifndef COLO_OVERLAY_SYS_UN_H
#define COLO_OVERLAY_SYS_UN_H

/* The C library's structure under another name; ours takes its place. */
#define sockaddr_un colo_libc_sockaddr_un
#include_next <sys/un.h>
#undef sockaddr_un

struct sockaddr_un {
    sa_family_t   sun_family;
    char          sun_path[sizeof(((struct colo_libc_sockaddr_un *)0)->sun_path) - 1];
    unsigned char sun_len;
};

#ifndef __cplusplus
_Static_assert(sizeof(struct sockaddr_un) == sizeof(struct colo_libc_sockaddr_un),
               "struct sockaddr_un keeps the C library's size");
#endif

#endif
