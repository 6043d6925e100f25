/* selfexe: what a process sees of itself through /proc/self/exe, and re-running itself
 * through it (execve, execveat, fexecve), printed as key=value lines. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

static void link_of(const char *key, const char *path)
{
    char buf[PATH_MAX];
    ssize_t n = readlink(path, buf, sizeof buf - 1);
    if (n < 0) { printf("%s=ERR%d\n", key, errno); return; }
    buf[n] = 0;
    printf("%s=%s\n", key, buf);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "show";
    printf("pid=%d\n", getpid());
    if (!strcmp(mode, "show")) {
        char path[64], real[PATH_MAX];
        link_of("exe", "/proc/self/exe");
        link_of("thread", "/proc/thread-self/exe");
        snprintf(path, sizeof path, "/proc/%d/exe", getpid());
        link_of("pidexe", path);
        snprintf(path, sizeof path, "/proc/%d/task/%d/exe", getpid(), gettid());
        link_of("taskexe", path);
        printf("real=%s\n", realpath("/proc/self/exe", real) ? real : "ERR");
        char small[4];
        printf("short=%zd\n", readlink("/proc/self/exe", small, sizeof small));
        char *volatile bad = (char *)8;
        printf("efault=%zd\n", readlink("/proc/self/exe", bad, 16));
        return 0;
    }
    if (!strcmp(mode, "other") && argc > 2) {            /* other PID: another process's exe link */
        char path[64];
        snprintf(path, sizeof path, "/proc/%s/exe", argv[2]);
        link_of("otherexe", path);
        return 0;
    }
    fflush(stdout);
    char *again[] = { argv[0], "show", NULL };
    if (!strcmp(mode, "execve")) execve("/proc/self/exe", again, environ);
    if (!strcmp(mode, "execveat")) syscall(SYS_execveat, AT_FDCWD, "/proc/self/exe", again, environ, 0);
    if (!strcmp(mode, "fexecve")) {
        int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        fexecve(fd, again, environ);
    }
    printf("exec=ERR%d\n", errno);
    return 1;
}
