/* cheribsd_compat.c - what CheriBSD's own tests and tools rely on, written the way their sources are (FreeBSD headers from the colo.pc overlay): one mode per behaviour, printing key=value lines.
 *
 *   sysctl     kern.proc.pathname of itself (also in a fork child), its length
 *              query, a short buffer, another node
 *   registry   coregister/colookup in one process; from a colocated helper
 *              started with vfork + coexecve: colookup finds the name,
 *              coregister of it gives EEXIST
 *   coexec     coexecve(99) gives ESRCH after fork and after vfork;
 *              vfork + coexecve(getppid(), /usr/bin/true); coexecvec after
 *              fork gives EPROT; vfork + coexecvec hands a vector to a helper;
 *              coexecvp finds `true` in PATH
 *   scmcaps    a target sent with plain sendmsg(SCM_CAPS) over a unix socket
 *              bound by a path with sun_len, received with plain recvmsg
 *   misc       pthread_getthreadid_np, nitems, PATH_MAX from <sys/syslimits.h>,
 *              the numbers SYS_bind and SYS_connect (binds(1)'s ops)
 *   connect    a TCP listener on 127.0.0.1 and a connection to it: under
 *              binds(1), both calls go through the service
 */
#include <sys/param.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/sysctl.h>
#include <sys/syslimits.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/auxv.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread_np.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int own_path(char *buf, size_t size)
{
    int mib[] = { CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, -1 };
    size_t len = size;
    return sysctl(mib, nitems(mib), buf, &len, NULL, 0);
}

/* Run this program again as `mode arg`, colocated with `pid`, in a vfork
 * child; its exit status. */
static int helper(pid_t pid, const char *mode, const char *arg)
{
    static char path[PATH_MAX];
    if (own_path(path, sizeof path) != 0)
        return -1;
    char *argv[] = { path, (char *)mode, (char *)arg, NULL };
    pid_t child = vfork();
    if (child == 0) {
        coexecve(pid, path, argv, environ);
        _exit(127);
    }
    int status;
    if (child < 0 || waitpid(child, &status, 0) != child)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void mode_sysctl(void)
{
    char path[PATH_MAX];
    int mib[] = { CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, -1 };
    printf("self=%s\n", own_path(path, sizeof path) == 0 ? path : strerror(errno));
    mib[3] = getpid();
    size_t len = 0;
    printf("length=%s\n", sysctl(mib, nitems(mib), NULL, &len, NULL, 0) == 0 && len == strlen(path) + 1 ? "ok" : "wrong");
    char shortbuf[4];
    len = sizeof shortbuf;
    int r = sysctl(mib, nitems(mib), shortbuf, &len, NULL, 0);
    printf("short=%s\n", r == -1 && errno == ENOMEM ? "ENOMEM" : "wrong");
    int other[] = { CTL_KERN, 1 };
    len = sizeof path;
    r = sysctl(other, nitems(other), path, &len, NULL, 0);
    printf("other_node=%s\n", r == -1 && errno == ENOENT ? "ENOENT" : "wrong");
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        char p[PATH_MAX];
        printf("fork_child=%s\n", own_path(p, sizeof p) == 0 ? p : strerror(errno));
        fflush(stdout);
        _exit(0);
    }
    waitpid(child, NULL, 0);
}

static void mode_registry(void)
{
    char name[64];
    void * __capability registered;
    void * __capability lookedup;
    snprintf(name, sizeof name, "compat-%d", (int)getpid());
    if (coregister(name, &registered) != 0 || colookup(name, &lookedup) != 0) {
        printf("registry=%s\n", strerror(errno));
        return;
    }
    printf("same=%d\n", registered == lookedup);
    printf("helper_lookup=%d\n", helper(getpid(), "lookup", name));
    printf("helper_reregister=%d\n", helper(getpid(), "reregister", name));
}

static void mode_coexec(void)
{
    char *argv[] = { "/usr/bin/true", NULL };
    char *empty[] = { NULL };
    int status;
    pid_t child = fork();
    if (child == 0)
        _exit(coexecve(99, "/usr/bin/true", argv, empty) == -1 && errno == ESRCH ? 0 : 1);
    waitpid(child, &status, 0);
    printf("fork_wrong_pid=%d\n", WEXITSTATUS(status));
    child = vfork();
    if (child == 0)
        _exit(coexecve(99, "/usr/bin/true", argv, empty) == -1 && errno == ESRCH ? 0 : 1);
    waitpid(child, &status, 0);
    printf("vfork_wrong_pid=%d\n", WEXITSTATUS(status));
    child = vfork();
    if (child == 0) {
        coexecve(getppid(), "/usr/bin/true", argv, empty);
        _exit(1);
    }
    waitpid(child, &status, 0);
    printf("vfork_right_pid=%d\n", status);

    static int cookie = 42;
    void *capv[] = { &cookie };
    char path[PATH_MAX];
    own_path(path, sizeof path);
    char *hargv[] = { path, "capv", NULL };
    child = fork();
    if (child == 0)
        _exit(coexecvec(getppid(), path, hargv, environ, capv, 1) == -1 && errno == EPROT ? 0 : 1);
    waitpid(child, &status, 0);
    printf("fork_coexecvec_eprot=%d\n", WEXITSTATUS(status));
    child = vfork();
    if (child == 0) {
        coexecvec(getppid(), path, hargv, environ, capv, 1);
        _exit(127);
    }
    waitpid(child, &status, 0);
    printf("vfork_coexecvec=%d\n", WEXITSTATUS(status));
    child = vfork();
    if (child == 0) {
        coexecvp(getppid(), "true", argv);
        _exit(127);
    }
    waitpid(child, &status, 0);
    printf("coexecvp=%d\n", WEXITSTATUS(status));
}

static void mode_scmcaps(void)
{
    void * __capability target;
    if (cosetup(COSETUP_COACCEPT) != 0 || coregister(NULL, &target) != 0) {
        printf("scmcaps=%s\n", strerror(errno));
        return;
    }
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof sun.sun_path, "/tmp/compat-%d.sock", (int)getpid());
    sun.sun_len = SUN_LEN(&sun);
    unlink(sun.sun_path);
    int server = socket(PF_UNIX, SOCK_STREAM, 0), client = socket(PF_UNIX, SOCK_STREAM, 0);
    if (bind(server, (struct sockaddr *)&sun, sizeof sun) != 0 || listen(server, 1) != 0 ||
        connect(client, (struct sockaddr *)&sun, sun.sun_len) != 0) {
        printf("scmcaps=%s\n", strerror(errno));
        return;
    }
    int conn = accept(server, NULL, NULL);
    unlink(sun.sun_path);

    /* As CheriBSD's coregister(1) sends: one capability, no data. */
    union { struct cmsghdr hdr; unsigned char buf[CMSG_SPACE(sizeof target)]; } out, in;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_control = out.buf;
    msg.msg_controllen = sizeof out.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_len = CMSG_LEN(sizeof target);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_CAPS;
    memcpy(CMSG_DATA(c), &target, sizeof target);
    printf("sent=%zd\n", sendmsg(conn, &msg, MSG_NOSIGNAL));

    memset(&msg, 0, sizeof msg);
    msg.msg_control = in.buf;
    msg.msg_controllen = sizeof in.buf;
    ssize_t received = recvmsg(client, &msg, MSG_WAITALL);
    c = CMSG_FIRSTHDR(&msg);
    void * __capability got = NULL;
    if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CAPS && c->cmsg_len == CMSG_LEN(sizeof got))
        memcpy(&got, CMSG_DATA(c), sizeof got);
    printf("received=%zd truncated=%d same=%d\n", received, (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0,
           got == target);
}

static void mode_misc(void)
{
    printf("threadid=%s\n", pthread_getthreadid_np() == (int)syscall(SYS_gettid) ? "gettid" : "wrong");
    char buf[PATH_MAX];
    printf("path_max=%zu nitems=%zu\n", sizeof buf, nitems(buf));
    if (__predict_true(buf != NULL))
        printf("predict=ok\n");
    printf("sys_bind=%d sys_connect=%d\n", SYS_bind, SYS_connect);
}

static void mode_connect(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int listener = socket(AF_INET, SOCK_STREAM, 0), s = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(listener, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(listener, 1) != 0 ||
        getsockname(listener, (struct sockaddr *)&sin, &len) != 0) {
        printf("listen=%s\n", strerror(errno));
        return;
    }
    printf("connect=%s\n", connect(s, (struct sockaddr *)&sin, sizeof sin) == 0 ? "OK" : strerror(errno));
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "sysctl") == 0)
        mode_sysctl();
    else if (strcmp(mode, "registry") == 0)
        mode_registry();
    else if (strcmp(mode, "coexec") == 0)
        mode_coexec();
    else if (strcmp(mode, "scmcaps") == 0)
        mode_scmcaps();
    else if (strcmp(mode, "misc") == 0)
        mode_misc();
    else if (strcmp(mode, "connect") == 0)
        mode_connect();
    else if (strcmp(mode, "lookup") == 0 && argc > 2) {
        void * __capability found;
        return colookup(argv[2], &found) == 0 ? 0 : 1;
    } else if (strcmp(mode, "reregister") == 0 && argc > 2)
        return coregister(argv[2], NULL) == -1 && errno == EEXIST ? 0 : 1;
    else if (strcmp(mode, "capv") == 0) {
        void **capv;
        int capc;
        capvfetch(&capc, &capv);
        return capc == 1 && capv[0] != NULL && *(int *)capv[0] == 42 ? 0 : 1;
    } else {
        fprintf(stderr, "usage: cheribsd_compat sysctl|registry|coexec|scmcaps|misc|connect\n");
        return 2;
    }
    return 0;
}
