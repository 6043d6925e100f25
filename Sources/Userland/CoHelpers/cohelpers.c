/* cohelpers.c - C helpers of the colocation tools (see cohelpers.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#define LIBBSD_NETBSD_VIS 1    /* FreeBSD's strnvis() argument order */
#include <bsd/vis.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <colo.h>
#include <capv.h>
#include "cohelpers.h"

#define SIZE(t) sizeof(t)
#define OFF(t, f) offsetof(t, f)

const struct cotool_layout cotool_capv_layout = {
    .capv = SIZE(capv_t), .capv_len = OFF(capv_t, len), .capv_op = OFF(capv_t, op),
    .answerback = SIZE(capv_answerback_t), .answerback_text = OFF(capv_answerback_t, answerback),
    .answerback_max = sizeof(((capv_answerback_t *)0)->answerback),
    .clocks = SIZE(capv_clocks_t), .clocks_error = OFF(capv_clocks_t, error),
    .clocks_errno = OFF(capv_clocks_t, errno_), .clocks_ts = OFF(capv_clocks_t, ts),
    .binds = SIZE(capv_binds_t), .binds_s = OFF(capv_binds_t, s), .binds_addr = OFF(capv_binds_t, addr),
    .binds_addrlen = OFF(capv_binds_t, addrlen),
    .binds_return = SIZE(capv_binds_return_t), .binds_return_error = OFF(capv_binds_return_t, error),
    .binds_return_errno = OFF(capv_binds_return_t, errno_),
    .clearances_return = SIZE(capv_clearances_return_t),
    .syscall = SIZE(capv_syscall_t), .syscall_arg = OFF(capv_syscall_t, arg),
    .syscall_return = SIZE(capv_syscall_return_t), .syscall_return_error = OFF(capv_syscall_return_t, error),
    .syscall_return_errno = OFF(capv_syscall_return_t, errno_),
    .syscall_return_fdcap = OFF(capv_syscall_return_t, fdcap),
    .paths = SIZE(capv_paths_t), .paths_path = OFF(capv_paths_t, path),
    .paths_return = SIZE(capv_paths_return_t), .paths_return_fdcap = OFF(capv_paths_return_t, fdcap),
    .paths_return_path = OFF(capv_paths_return_t, path),
};

const struct cotool_sysnos cotool_sysnos = {
    .bind = SYS_bind, .connect = SYS_connect, .newfstatat = SYS_newfstatat, .statx = SYS_statx,
    .fchmodat = SYS_fchmodat, .fchownat = SYS_fchownat, .utimensat = SYS_utimensat,
    .openat = SYS_openat, .faccessat2 = SYS_faccessat2, .unlinkat = SYS_unlinkat,
    .fchdir = SYS_fchdir, .mkdir = SYS_mkdir, .rmdir = SYS_rmdir, .getcwd = SYS_getcwd,
};

int cotool_colocated(void)
{
    /* cogetpid(2) without a call being served: ESRCH (or EFAULT) for a
     * member of an address space, ENOSYS for anybody else. */
    long r = colo_syscall(COLO_SYS_cogetpid, 0, 0, 0, 0, 0, 0);
    return r != -ENOSYS;
}

static volatile pid_t watched = -1;

/* As CheriBSD's services: exit(0) from the handler (stdio is flushed); once
 * the command is known, only when it is the child that ended (a service's
 * own popen(3) children do not end the service). */
static void exit_zero(int sig)
{
    (void)sig;
    pid_t w = watched;
    if (w > 0) {
        int e = errno;
        pid_t r = waitpid(w, NULL, WNOHANG);
        if (r != w && !(r < 0 && errno == ECHILD)) {
            errno = e;
            return;
        }
    }
    exit(0);
}

void cotool_exit_with_child(pid_t pid)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    watched = pid;
    pid_t r = waitpid(pid, NULL, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD))
        exit(0);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

void cotool_exit_on_sigchld(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = exit_zero;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
}

pid_t cotool_spawn(char *const *argv, void *const *capv, int capc, const char *progname, const char *errname)
{
    pid_t pid = vfork();
    if (pid != 0)
        return pid;
    coexecvpc(getppid(), argv[0], argv, capv, capc);
    int e = errno;
    dprintf(2, "%s: %s: %s\n", progname, errname != NULL ? errname : argv[0], strerror(e));
    _exit(1);
}

int cotool_strvisx(char *dst, const char *src, size_t len)
{
    return strvisx(dst, src, len, VIS_DQ | VIS_NL | VIS_CSTYLE | VIS_OCTAL);
}


const char *cotool_execfn(void)
{
    return (const char *)getauxval(AT_EXECFN);
}

void cotool_flush_stdout(void)
{
    fflush(stdout);
}

void cotool_line_buffer_stdout(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
}

void cotool_flush_if_tty(void)
{
    static int tty = -1;    /* isatty(3) once: coping calls this after every ping */
    if (tty < 0)
        tty = isatty(1);
    if (tty)
        fflush(stdout);
}

int cotool_send_cap(int fd, void *cap)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(void *))];
    } control;
    struct msghdr msg;
    struct cmsghdr *c;

    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CAPS;
    c->cmsg_len = CMSG_LEN(sizeof cap);
    memcpy(CMSG_DATA(c), &cap, sizeof cap);
    return colo_sendmsg(fd, &msg, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

ssize_t cotool_recv_cap(int fd, struct cotool_received *r)
{
    union {
        struct cmsghdr hdr;
        char buf[CMSG_SPACE(sizeof(void *))];
    } control;
    struct msghdr msg;
    struct cmsghdr *c;
    ssize_t received;

    memset(r, 0, sizeof *r);
    memset(&msg, 0, sizeof msg);
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    received = colo_recvmsg(fd, &msg, MSG_WAITALL);
    if (received < 0)
        return -1;
    r->flags = msg.msg_flags;
    r->expected_len = CMSG_LEN(sizeof(void *));
    c = CMSG_FIRSTHDR(&msg);
    if (c != NULL) {
        r->has_cmsg = 1;
        r->len = (int)c->cmsg_len;
        r->level = c->cmsg_level;
        r->type = c->cmsg_type;
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CAPS && c->cmsg_len == CMSG_LEN(sizeof(void *)))
            memcpy(&r->cap, CMSG_DATA(c), sizeof r->cap);
    }
    return received;
}

static int unix_address(const char *path, struct sockaddr_un *sun)
{
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun->sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun->sun_path, path);
    return 0;
}

int cotool_listen_unix(const char *path, int *stepp)
{
    struct sockaddr_un sun;
    int s;

    *stepp = 0;
    s = socket(PF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    *stepp = 1;
    if (unix_address(path, &sun) != 0 || bind(s, (struct sockaddr *)&sun, sizeof sun) != 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    *stepp = 2;
    if (listen(s, SOMAXCONN) != 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}

int cotool_connect_unix(const char *path, int *stepp)
{
    struct sockaddr_un sun;
    int s;

    *stepp = 0;
    s = socket(PF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    *stepp = 1;
    if (unix_address(path, &sun) != 0 || connect(s, (struct sockaddr *)&sun, sizeof sun) != 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}
