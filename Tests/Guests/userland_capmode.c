/* userland_capmode.c - what capability mode (cap_enter) refuses and allows,
 * as key=value lines (OK or the errno's name). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>
#include <colo.h>
#include <sys/capsicum.h>

static const char *ename(int e)
{
    if (e == ECAPMODE) return "ECAPMODE";
    switch (e) {
    case 0: return "OK";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case ENOSYS: return "ENOSYS";
    default: return strerror(e);
    }
}

#define TRY(key, call) do { errno = 0; long r_ = (long)(call); \
    printf("%s=%s\n", key, r_ < 0 ? ename(errno) : "OK"); } while (0)

int main(int argc, char **argv)
{
    unsigned mode = 7;
    cap_getmode(&mode);
    printf("mode_before=%u\n", mode);
    int etc = open("/etc", O_RDONLY | O_DIRECTORY);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    TRY("cap_enter", cap_enter());
    cap_getmode(&mode);
    printf("mode_after=%u sandboxed=%d\n", mode, cap_sandboxed());
    TRY("open_absolute", open("/etc/hostname", O_RDONLY));
    TRY("open_relative", open("hostname", O_RDONLY));
    TRY("openat_cwd", openat(AT_FDCWD, "/etc/hostname", O_RDONLY));
    TRY("openat_dirfd", openat(etc, "hostname", O_RDONLY));
    struct stat st;
    TRY("stat", stat("/etc", &st));
    TRY("fstatat_dirfd", fstatat(etc, "hostname", &st, 0));
    TRY("fstat", fstat(etc, &st));
    TRY("mkdir", mkdir("/tmp/capmode-x", 0700));
    TRY("chdir", chdir("/"));
    TRY("fchdir", fchdir(etc));
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    TRY("bind", bind(s, (struct sockaddr *)&sin, sizeof sin));
    TRY("connect", connect(s, (struct sockaddr *)&sin, sizeof sin));
    TRY("kill_self", kill(getpid(), 0));
    TRY("kill_parent", kill(getppid(), 0));
    void *cap;
    TRY("coregister", coregister(NULL, &cap));
    TRY("colookup", colookup("x", &cap));
    TRY("cap_enter_again", cap_enter());
    fflush(stdout);
    pid_t c = fork();
    if (c == 0) {
        unsigned m = 0;
        cap_getmode(&m);
        printf("child_mode=%u\n", m);
        fflush(stdout);
        _exit(open("/etc/hostname", O_RDONLY) < 0 && errno == ECAPMODE ? 0 : 1);
    }
    int status;
    waitpid(c, &status, 0);
    printf("child_refused=%d\n", WIFEXITED(status) && WEXITSTATUS(status) == 0);
    (void)argc; (void)argv;
    return 0;
}
