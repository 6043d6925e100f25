// Reproduction: fork + execv a program that exits 5, the parent waits through a pidfd (pidfd_open + waitid(P_PIDFD)) as GLib's child watch does; prints how many waits were wrong.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
int main(int argc, char **argv) {
    int n = argc > 2 ? atoi(argv[2]) : 100, bad = 0;
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) { char *a[] = { argv[1], NULL }; execv(argv[1], a); _exit(127); }
        int fd = syscall(SYS_pidfd_open, p, 0);
        if (fd < 0) { perror("pidfd_open"); return 2; }
        struct pollfd pfd = { fd, POLLIN, 0 };
        poll(&pfd, 1, -1);
        siginfo_t si = {0};
        if (waitid(P_PIDFD, fd, &si, WEXITED) != 0) { perror("waitid"); return 2; }
        close(fd);
        if (si.si_code != CLD_EXITED || si.si_status != 5) {
            bad++;
            if (bad < 5) fprintf(stderr, "run %d: si_pid %d (child %d) code %d status %d\n", i, si.si_pid, p, si.si_code, si.si_status);
        }
    }
    printf("%d of %d wrong\n", bad, n);
    return bad != 0;
}
