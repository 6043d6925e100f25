/* samevm.c - test guest: for each PID argument, print "samevm PID=1" if the process shares this one's mm (kcmp KCMP_VM), "=0" if not, "=error" if kcmp failed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/kcmp.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        long r = syscall(SYS_kcmp, getpid(), atoi(argv[i]), KCMP_VM, 0, 0);
        printf("samevm %s=%s\n", argv[i], r == 0 ? "1" : r > 0 ? "0" : "error");
    }
    return 0;
}
