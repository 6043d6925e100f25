/*
 * capv.h - message layouts and well-known capability-vector indices of
 * CheriBSD's colocation services (include/capv.h of the `cocalls` branch).
 *
 * From the original: keep the size_t-sized length at the very beginning of
 * every output buffer passed to cocall(2).  You can compare it with the size
 * returned by cocall(2)/coaccept(2) to make sure you actually received all the
 * data.  Integer-sized opcode 0 that follows is reserved for answerback, for
 * both calls and returns; other values are left for application use.
 *
 * Every message is a union with a capability-sized `aligner`, so its size is
 * a multiple of the capability size (8 bytes here), as cocall(2) requires.
 */
#ifndef CAPV_H
#define CAPV_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include "colo.h"

#ifndef __CHERI__
typedef uintptr_t uintcap_t;
#endif

/* SCM_CAPS control messages (array of void * __capability). */
#ifndef SCM_CAPS
#define SCM_CAPS 0x10
#endif

/* Well-known indices: use the even numbers, leaving odd ones for ad-hoc use. */
#define CAPV_CODISCOVER 2   /* comsg */
#define CAPV_COINSERT   4   /* comsg */
#define CAPV_COSELECT   6   /* comsg */
#define CAPV_CLOCKS     8
#define CAPV_BINDS      10
#define CAPV_SYSCALL    12  /* cs(1) */
#define CAPV_PATHS      14  /* paths(1) */

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
    };
} capv_t;

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
        char answerback[1024];
    };
} capv_answerback_t;

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
        int error;
        int errno_;
        struct timespec ts;
    };
} capv_clocks_t;

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
        void * __capability s;
        struct sockaddr_storage addr;
        socklen_t addrlen;
    };
} capv_binds_t;

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
        uintcap_t arg[8];
    };
} capv_syscall_t;

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
        int error;
        int errno_;
    };
} capv_binds_return_t;

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
        int error;
        int errno_;
    };
} capv_clearances_return_t;

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
        int error;
        int errno_;
        uintcap_t fdcap;
    };
} capv_syscall_return_t;

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
        char path[PATH_MAX];
    };
} capv_paths_t;

typedef union {
    void * __capability aligner;
    struct {
        size_t len;
        int op;
        uintcap_t fdcap;
        char path[PATH_MAX];
    };
} capv_paths_return_t;

/*
 * SCM_CAPS over unix(4) sockets.  Linux has no such control message, so send
 * and receive capabilities with these two wrappers of sendmsg(2)/recvmsg(2):
 * they take and give CheriBSD's form (cmsg_level SOL_SOCKET, cmsg_type
 * SCM_CAPS, an array of capabilities; any other control message passes
 * unchanged).  On the wire the capabilities travel in a sealed memfd passed
 * with SCM_RIGHTS, plus one byte of data when the message has none.  The
 * receiver accepts them only if every capability is valid in its own address
 * space: otherwise colo_recvmsg fails with EPROT ("likely not colocated"),
 * as CheriBSD's kernel refuses capabilities across address spaces.
 */
ssize_t colo_sendmsg(int s, const struct msghdr *msg, int flags);
ssize_t colo_recvmsg(int s, struct msghdr *msg, int flags);

#endif
