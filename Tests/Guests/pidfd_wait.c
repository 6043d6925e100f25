/* pidfd_wait.c - fork + exec children and wait for each through a pidfd opened right after the fork, as GLib's child watch does. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define REPORT_FD 10

/* pidfd_wait ITERATIONS [glib]: each iteration runs one child that exits
 * with 5 and one that SIGKILLs itself, waits through poll + waitid(P_PIDFD),
 * and prints the totals: lines "wrong=N" and "recolocated=M" (M: children
 * whose program ran in the parent's address space).  The pidfd is opened
 * right after fork; with "glib", as GLib 2.74 does: once the child's exec is
 * done (a close-on-exec pipe reaches its end), and the poll's POLLIN is taken
 * for the exit (waitid with WNOHANG).  pidfd_wait child 5|kill: the child's
 * program. */
static int run(const char *self, const char *what, int glib)
{
    int exec_done[2];
    if (pipe2(exec_done, O_CLOEXEC) != 0) { perror("pipe2"); exit(2); }
    pid_t p = fork();
    if (p < 0) { perror("fork"); exit(2); }
    if (p == 0) {
        char *argv[] = { (char *)self, "child", (char *)what, NULL };
        execv(self, argv);
        _exit(127);
    }
    close(exec_done[1]);
    char c;
    while (glib && read(exec_done[0], &c, 1) != 0 && errno == EINTR) {}
    close(exec_done[0]);
    int fd = (int)syscall(SYS_pidfd_open, p, 0);
    if (fd < 0) {
        fprintf(stderr, "%s child %d: pidfd_open: %s\n", what, p, strerror(errno));
        waitpid(p, 0, 0);
        return 1;
    }
    struct pollfd pfd = { fd, POLLIN, 0 };
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {}
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid(P_PIDFD, fd, &si, WEXITED | (glib ? WNOHANG : 0));
    int e = errno;
    close(fd);
    int kill = strcmp(what, "kill") == 0;
    int right = r == 0 && si.si_pid == p && si.si_code == (kill ? CLD_KILLED : CLD_EXITED) &&
                si.si_status == (kill ? SIGKILL : 5);
    if (!right)
        fprintf(stderr, "%s child %d: waitid %d (%s) si_pid %d code %d status %d\n", what, p, r,
                r ? strerror(e) : "ok", si.si_pid, si.si_code, si.si_status);
    if (r != 0) waitpid(p, 0, 0);
    return !right;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0) {
        /* Tell the parent whether this program shares its address space. */
        if (syscall(SYS_kcmp, getpid(), getppid(), KCMP_VM, 0, 0) == 0) {
            char c = 'r';
            (void)!write(REPORT_FD, &c, 1);
        }
        if (strcmp(argv[2], "kill") == 0) raise(SIGKILL);
        return atoi(argv[2]);
    }
    int n = argc > 1 ? atoi(argv[1]) : 50, glib = argc > 2 && strcmp(argv[2], "glib") == 0;
    int wrong = 0, recolocated = 0;
    int pipefd[2];
    /* REPORT_FD is the children's report pipe (kept across exec). */
    if (pipe(pipefd) != 0 || dup2(pipefd[1], REPORT_FD) != REPORT_FD) { perror("pipe"); return 2; }
    close(pipefd[1]);
    for (int i = 0; i < n; i++) {
        wrong += run("/proc/self/exe", "5", glib);
        wrong += run("/proc/self/exe", "kill", glib);
    }
    close(REPORT_FD);
    char c;
    while (read(pipefd[0], &c, 1) == 1) recolocated++;
    printf("wrong=%d\nrecolocated=%d\n", wrong, recolocated);
    return wrong != 0;
}
