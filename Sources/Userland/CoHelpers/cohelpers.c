/* cohelpers.c - C helpers of the colocation tools (see cohelpers.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <bsd/vis.h>
#include <colo.h>
#include <capv.h>
#include "cohelpers.h"

#define SIZE(t) sizeof(t)
#define OFF(t, f) offsetof(t, f)

const struct cotool_layout cotool_capv_layout = {
    .capv = SIZE(capv_t),
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

int cotool_colocated(void)
{
    /* cogetpid(2) without a call being served: ESRCH (or EFAULT) for a
     * member of an address space, ENOSYS for anybody else. */
    long r = colo_syscall(COLO_SYS_cogetpid, 0, 0, 0, 0, 0, 0);
    return r != -ENOSYS;
}

/* As CheriBSD's services: exit(0) from the handler (stdio is flushed). */
static void exit_zero(int sig)
{
    (void)sig;
    exit(0);
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

int cotool_cap_getmode(unsigned *modep)
{
    *modep = 0;
    return 0;
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
    if (isatty(1))
        fflush(stdout);
}
