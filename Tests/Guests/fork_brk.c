/* fork_brk.c - a parent that moves its heap right after each fork, and a child that grows its
 * own heap: the child's copy of the slot header must be the one of the fork's time, not one
 * taken later, when the parent's brk has moved it (the child then believed in heap pages its
 * mm did not have, and died of SIGSEGV).  Both run on one CPU, so that the parent goes on
 * first after each fork.  Prints forks=N and children_ok=N.
 *   fork_brk ROUNDS */
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20, ok = 0;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    sched_setaffinity(0, sizeof one, &one);
    for (int i = 0; i < rounds; i++) {
        int p[2];
        if (pipe(p) != 0) return 1;
        pid_t pid = fork();
        if (pid == 0) {
            char c;
            close(p[1]);
            if (read(p[0], &c, 1) != 1) _exit(2);   /* the parent has moved its heap */
            char *mine = sbrk(256 * 1024);
            if (mine == (char *)-1) _exit(3);
            memset(mine, 7, 256 * 1024);             /* pages of its own heap */
            _exit(0);
        }
        char *theirs = sbrk(128 * 1024);             /* the parent's heap moves first */
        if (theirs == (char *)-1) return 1;
        memset(theirs, 1, 128 * 1024);
        close(p[0]);
        if (write(p[1], "x", 1) != 1) return 1;
        close(p[1]);
        int status;
        if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) ok++;
        else fprintf(stderr, "fork %d: child status %#x\n", i, status);
    }
    printf("forks=%d\nchildren_ok=%d\n", rounds, ok);
    return 0;
}
