/*
 * cohelpers.h - what the colocation tools (capv(1), clocks(1), ...) need from
 * C while they run as colocated guests: the vfork + coexecvpc(getppid()) spawn
 * of the service preamble (Swift cannot vfork), the SIGCHLD handler, the
 * <capv.h> message layouts as byte offsets, and libbsd's strvisx(3).
 */
#ifndef COHELPERS_H
#define COHELPERS_H

#include <stddef.h>
#include <sys/types.h>

/* Byte offsets and sizes of <capv.h>'s messages (Swift does not import capv.h). */
struct cotool_layout {
    size_t capv, capv_len, capv_op;             /* sizeof(capv_t), its len and op */
    size_t answerback, answerback_text, answerback_max;
    size_t clocks, clocks_error, clocks_errno, clocks_ts;
    size_t binds, binds_s, binds_addr, binds_addrlen;
    size_t binds_return, binds_return_error, binds_return_errno;
    size_t clearances_return;
    size_t syscall, syscall_arg;
    size_t syscall_return, syscall_return_error, syscall_return_errno, syscall_return_fdcap;
    size_t paths, paths_path;
    size_t paths_return, paths_return_fdcap, paths_return_path;
};
extern const struct cotool_layout cotool_capv_layout;

/* Linux system-call numbers cs(1) serves (Swift cannot read <sys/syscall.h>). */
struct cotool_sysnos {
    int bind, connect, newfstatat, statx, fchmodat, fchownat, utimensat, openat, faccessat2,
        unlinkat, fchdir, mkdir, rmdir, getcwd;
};
extern const struct cotool_sysnos cotool_sysnos;

/* 1 if the calling process is a member of a colocated address space (the
 * colocation calls exist for it), else 0. */
int cotool_colocated(void);

/* Install a SIGCHLD handler that exits the process with status 0 (the
 * service preamble: a service ends when its command does, and the
 * command's status is not passed on).  Like CheriBSD's, the handler calls
 * exit(3), so stdio is flushed. */
void cotool_exit_on_sigchld(void);

/* From now on, exit(0) on SIGCHLD only when child `pid` (the command) has
 * ended; if it already has, exit(0) at once. */
void cotool_exit_with_child(pid_t pid);

/* vfork(); the child runs coexecvpc(getppid(), argv[0], argv, capv, capc)
 * and, if that returns, prints "progname: errname: strerror(errno)" (errname
 * NULL: argv[0]) and _exit(1)s.  Returns the child's PID, or -1 with errno. */
pid_t cotool_spawn(char *const *argv, void *const *capv, int capc, const char *progname, const char *errname);

/* strvisx(dst, src, len, VIS_DQ | VIS_NL | VIS_CSTYLE | VIS_OCTAL) from
 * libbsd, as cotrace(1) dumps buffers; dst must hold 4 * len + 1 bytes. */
int cotool_strvisx(char *dst, const char *src, size_t len);

/* AT_EXECFN of this process's auxv (its own path as it was executed), or NULL. */
const char *cotool_execfn(void);

/* stdio for Swift code (whose Glibc `stdout` is not concurrency-safe):
 * fflush(stdout); setvbuf(stdout, NULL, _IOLBF, 0). */
void cotool_flush_stdout(void);
void cotool_line_buffer_stdout(void);
/* fflush(stdout) if it is a terminal (coping's dots appear one by one);
 * whether it is one is asked once. */
void cotool_flush_if_tty(void);

/* One capability sent with SCM_CAPS and no data (colo_sendmsg, MSG_NOSIGNAL),
 * as coregister(1) -f does.  0, or -1 with errno. */
int cotool_send_cap(int fd, void *cap);

/* What colookup(1) -f received: recvmsg's flags and the first control
 * message (cmsg_len, level, type) for its checks, and the capability. */
struct cotool_received {
    int flags;
    int has_cmsg;
    int len, level, type;
    unsigned long expected_len;     /* CMSG_LEN(sizeof(void *)) */
    void *cap;
};
/* colo_recvmsg(fd, ..., MSG_WAITALL) with room for one SCM_CAPS capability:
 * the bytes received, or -1 with errno (EPROT: from another address space). */
ssize_t cotool_recv_cap(int fd, struct cotool_received *r);

/* A listening (SOMAXCONN) or connected SOCK_STREAM unix(4) socket at `path`;
 * -1 with errno, *stepp telling what failed (0 socket, 1 bind/connect,
 * 2 listen). */
int cotool_listen_unix(const char *path, int *stepp);
int cotool_connect_unix(const char *path, int *stepp);


#endif
