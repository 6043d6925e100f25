/* timing_loops.c - the timed loops of syscall_timing(1) (see timing_loops.h).
 *
 * Each test follows FreeBSD's tools/tools/syscall_timing: set up, start the
 * clock (and the alarm), run the operation until `num` iterations are done
 * or the alarm fires, stop the clock, tear down, return the iterations done.
 * Differences from FreeBSD, for Linux and for colocated processes:
 *   - buffers of the sized tests come from the heap, not the stack (two
 *     8 MB VLAs would overflow an 8 MB stack);
 *   - pipes are one-way on Linux, so the ping-pong tests use two of them;
 *   - fork(2) stands for pdfork(2): the peer dies with SIGKILL (and with its
 *     parent, PR_SET_PDEATHSIG) instead of by closing a process descriptor;
 *   - shm_open(SHM_ANON) is memfd_create(2). */
#define _GNU_SOURCE
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/perf_event.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bsd/stdlib.h>
#include <colo.h>
#include "timing_loops.h"

/* ---- the benchmark frame ---- */

static struct timespec ts_start, ts_end;
static double alarm_seconds = 1;
static volatile sig_atomic_t alarm_fired;
static int trace_fd = -1;
static const char *label = "";
static void *target;

/* -r: samples of the last run. */
static int64_t *raw_numbers;
static int raw_len = 1;
static int raw_fds[16];
static uint64_t raw_prev[16];
static struct timespec raw_prev_ts;

void timing_set_alarm(double seconds) { alarm_seconds = seconds; }
void timing_set_trace(int fd) { trace_fd = fd; }
void timing_set_label(const char *name) { label = name; }
void timing_set_target(void *t) { target = t; }
const int64_t *timing_raw_values(void) { return raw_numbers; }

int timing_raw_setup(uintmax_t iterations, int ncounters, const int *fds)
{
    if (ncounters < 0 || ncounters > 15) {
        errno = EINVAL;
        return -1;
    }
    raw_len = 1 + ncounters;
    for (int j = 0; j < ncounters; j++)
        raw_fds[j + 1] = fds[j];
    raw_numbers = calloc((size_t)iterations + 1, sizeof raw_numbers[0] * (size_t)raw_len);
    return raw_numbers == NULL ? -1 : 0;
}

void timing_elapsed(struct timespec *ts)
{
    ts->tv_sec = ts_end.tv_sec - ts_start.tv_sec;
    ts->tv_nsec = ts_end.tv_nsec - ts_start.tv_nsec;
    if (ts->tv_nsec < 0) {
        ts->tv_sec--;
        ts->tv_nsec += 1000000000;
    }
}

int timing_perf_open(uint32_t type, uint64_t config)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.type = type;
    a.config = config;
    int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0 && errno == EACCES) {
        /* perf_event_paranoid >= 2: user-space counting only. */
        a.exclude_kernel = 1;
        a.exclude_hv = 1;
        fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
    }
    return fd;
}

static uint64_t counter(int fd)
{
    uint64_t v = 0;
    if (read(fd, &v, sizeof v) != sizeof v)
        return 0;
    return v;
}

static void alarm_handler(int signum)
{
    (void)signum;
    alarm_fired = 1;
}

static void marker(const char *what)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "syscall_timing: %s %s\n", what, label);
    if (n > 0)
        (void)write(trace_fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void benchmark_start(void)
{
    alarm_fired = 0;
    if (alarm_seconds > 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = alarm_handler;
        sa.sa_flags = SA_RESTART;       /* signal(3)'s BSD semantics, as FreeBSD */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = { { 0, 0 }, { (time_t)alarm_seconds,
            (suseconds_t)((alarm_seconds - (double)(time_t)alarm_seconds) * 1e6) } };
        if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
            it.it_value.tv_usec = 1;
        setitimer(ITIMER_REAL, &it, NULL);
    }
    if (trace_fd >= 0)
        marker("start");
    clock_gettime(CLOCK_REALTIME, &ts_start);
}

static void benchmark_stop(void)
{
    clock_gettime(CLOCK_REALTIME, &ts_end);
    if (trace_fd >= 0)
        marker("stop");
    /* Disarm, so that a pending alarm does not interrupt the teardown. */
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
}

/* Called before each iteration and once after the last (i == num): with -r,
 * record the time and counter deltas of iteration i. */
static inline void benchmark_iteration(uintmax_t i)
{
    if (__builtin_expect(raw_numbers == NULL, 1))
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (i == 0) {
        raw_prev_ts = now;
        for (int j = 1; j < raw_len; j++)
            raw_prev[j] = counter(raw_fds[j]);
        return;
    }
    int64_t *row = &raw_numbers[i * (uintmax_t)raw_len];
    row[0] = (int64_t)(now.tv_sec - raw_prev_ts.tv_sec) * 1000000000 + (now.tv_nsec - raw_prev_ts.tv_nsec);
    raw_prev_ts = now;
    for (int j = 1; j < raw_len; j++) {
        uint64_t v = counter(raw_fds[j]);
        row[j] = (int64_t)(v - raw_prev[j]);
        raw_prev[j] = v;
    }
}

#define BENCHMARK_FOREACH(I, NUM) \
    for (I = 0; benchmark_iteration(I), I < (NUM) && alarm_fired == 0; I++)

/* Keep the compiler from dropping copies nobody reads. */
#define CLOBBER() __asm__ __volatile__("" ::: "memory")

static void *xalloc(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, size < 64 ? 64 : size) != 0)
        err(1, "malloc");
    memset(p, 0, size);
    return p;
}

/* ---- plain system calls and library calls ---- */

uintmax_t timing_getppid(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        getppid();
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_getpid(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        getpid();
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_getuid(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        getuid();
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_getresuid(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uid_t r, e, s;
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        (void)getresuid(&r, &e, &s);
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_getpriority(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        (void)getpriority(PRIO_PROCESS, 0);
    }
    benchmark_stop();
    return i;
}

/* The cost of a call into a shared library (libbsd) and back. */
uintmax_t timing_getprogname(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        (void)getprogname();
        CLOBBER();
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_clock_gettime(uintmax_t num, uintmax_t int_arg, const char *path)
{
    struct timespec ts;
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        if (clock_gettime(CLOCK_REALTIME, &ts) == -1)
            err(-1, "test_clock_gettime: clock_gettime");
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_gettimeofday(uintmax_t num, uintmax_t int_arg, const char *path)
{
    struct timeval tv;
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        (void)gettimeofday(&tv, NULL);
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_select(uintmax_t num, uintmax_t int_arg, const char *path)
{
    fd_set r, w, x;
    struct timeval tv = { 0, 0 };
    uintmax_t i;
    (void)int_arg; (void)path;
    FD_ZERO(&r); FD_ZERO(&w); FD_ZERO(&x);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        (void)select(0, &r, &w, &x, &tv);
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_setuid(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uid_t uid = getuid();
    uintmax_t i;
    (void)int_arg; (void)path;
    if (setuid(uid) < 0)
        err(-1, "test_setuid: setuid");
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        if (setuid(uid) < 0)
            err(-1, "test_setuid: setuid");
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_chroot(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    (void)int_arg; (void)path;
    if (chroot("/") < 0)
        err(-1, "test_chroot: chroot");
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        if (chroot("/") < 0)
            err(-1, "test_chroot: chroot");
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_memcpy(uintmax_t num, uintmax_t int_arg, const char *path)
{
    char *buf = xalloc(int_arg), *buf2 = xalloc(int_arg);
    uintmax_t i;
    (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        /* There and back, as much as pipeping/pipepingtd move. */
        memcpy(buf2, buf, int_arg);
        memcpy(buf, buf2, int_arg);
        CLOBBER();
    }
    benchmark_stop();
    free(buf);
    free(buf2);
    return i;
}

/* ---- descriptors and files ---- */

uintmax_t timing_pipe(uintmax_t num, uintmax_t int_arg, const char *path)
{
    int fd[2];
    uintmax_t i;
    (void)int_arg; (void)path;
    if (pipe(fd) < 0)
        err(-1, "test_pipe: pipe");
    close(fd[0]);
    close(fd[1]);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        if (pipe(fd) == -1)
            err(-1, "test_pipe: pipe");
        close(fd[0]);
        close(fd[1]);
    }
    benchmark_stop();
    return i;
}

static int shm_anon(const char *who)
{
    int fd = memfd_create("syscall_timing", MFD_CLOEXEC);
    if (fd < 0)
        err(-1, "%s: shm_open", who);
    return fd;
}

uintmax_t timing_shmfd(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    (void)int_arg; (void)path;
    close(shm_anon("test_shmfd"));
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        close(shm_anon("test_shmfd"));
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_dup(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    int fd, shmfd = shm_anon("test_dup");
    (void)int_arg; (void)path;
    fd = dup(shmfd);
    if (fd >= 0)
        close(fd);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        fd = dup(shmfd);
        if (fd >= 0)
            close(fd);
    }
    benchmark_stop();
    close(shmfd);
    return i;
}

uintmax_t timing_fstat_shmfd(uintmax_t num, uintmax_t int_arg, const char *path)
{
    struct stat sb;
    uintmax_t i;
    int shmfd = shm_anon("test_fstat_shmfd");
    (void)int_arg; (void)path;
    if (fstat(shmfd, &sb) < 0)
        err(-1, "test_fstat_shmfd: fstat");
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        (void)fstat(shmfd, &sb);
    }
    benchmark_stop();
    close(shmfd);
    return i;
}

static uintmax_t socket_loop(uintmax_t num, int domain, int type, const char *who)
{
    uintmax_t i;
    int so = socket(domain, type, 0);
    if (so < 0)
        err(-1, "%s: socket", who);
    close(so);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        so = socket(domain, type, 0);
        if (so == -1)
            err(-1, "%s: socket", who);
        close(so);
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_socket_stream(uintmax_t num, uintmax_t int_arg, const char *path)
{
    (void)path;
    return socket_loop(num, (int)int_arg, SOCK_STREAM, "test_socket_stream");
}

uintmax_t timing_socket_dgram(uintmax_t num, uintmax_t int_arg, const char *path)
{
    (void)path;
    return socket_loop(num, (int)int_arg, SOCK_DGRAM, "test_socket_dgram");
}

static uintmax_t socketpair_loop(uintmax_t num, int type, const char *who)
{
    uintmax_t i;
    int so[2];
    if (socketpair(PF_LOCAL, type, 0, so) == -1)
        err(-1, "%s: socketpair", who);
    close(so[0]);
    close(so[1]);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        if (socketpair(PF_LOCAL, type, 0, so) == -1)
            err(-1, "%s: socketpair", who);
        close(so[0]);
        close(so[1]);
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_socketpair_stream(uintmax_t num, uintmax_t int_arg, const char *path)
{
    (void)int_arg; (void)path;
    return socketpair_loop(num, SOCK_STREAM, "test_socketpair_stream");
}

uintmax_t timing_socketpair_dgram(uintmax_t num, uintmax_t int_arg, const char *path)
{
    (void)int_arg; (void)path;
    return socketpair_loop(num, SOCK_DGRAM, "test_socketpair_dgram");
}

uintmax_t timing_access(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    (void)int_arg;
    if (access(path, R_OK) < 0)
        err(-1, "test_access: %s", path);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        access(path, R_OK);
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_bad_open(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        open("", O_RDONLY);
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_create_unlink(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    int fd;
    (void)int_arg;
    (void)unlink(path);
    fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        err(-1, "test_create_unlink: create: %s", path);
    close(fd);
    if (unlink(path) < 0)
        err(-1, "test_create_unlink: unlink: %s", path);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        fd = open(path, O_RDWR | O_CREAT, 0600);
        if (fd < 0)
            err(-1, "test_create_unlink: create: %s", path);
        close(fd);
        if (unlink(path) < 0)
            err(-1, "test_create_unlink: unlink: %s", path);
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_open_close(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    int fd;
    (void)int_arg;
    fd = open(path, O_RDONLY);
    if (fd < 0)
        err(-1, "test_open_close: %s", path);
    close(fd);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        fd = open(path, O_RDONLY);
        if (fd < 0)
            err(-1, "test_open_close: %s", path);
        close(fd);
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_open_read_close(uintmax_t num, uintmax_t int_arg, const char *path)
{
    char *buf = xalloc(int_arg);
    uintmax_t i;
    int fd;
    fd = open(path, O_RDONLY);
    if (fd < 0)
        err(-1, "test_open_read_close: %s", path);
    (void)read(fd, buf, int_arg);
    close(fd);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        fd = open(path, O_RDONLY);
        if (fd < 0)
            err(-1, "test_open_read_close: %s", path);
        (void)read(fd, buf, int_arg);
        close(fd);
    }
    benchmark_stop();
    free(buf);
    return i;
}

uintmax_t timing_read(uintmax_t num, uintmax_t int_arg, const char *path)
{
    char *buf = xalloc(int_arg);
    uintmax_t i;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        err(-1, "test_open_read: %s", path);
    (void)pread(fd, buf, int_arg, 0);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        (void)pread(fd, buf, int_arg, 0);
    }
    benchmark_stop();
    close(fd);
    free(buf);
    return i;
}

uintmax_t timing_lstat(uintmax_t num, uintmax_t int_arg, const char *path)
{
    struct stat sb;
    uintmax_t i;
    (void)int_arg;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        if (lstat(path, &sb) != 0)
            err(-1, "lstat");
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_readlink(uintmax_t num, uintmax_t int_arg, const char *path)
{
    char buf[PATH_MAX];
    uintmax_t i;
    (void)int_arg;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        if (readlink(path, buf, sizeof buf) < 0 && errno != EINVAL)
            err(-1, "readlink");
    }
    benchmark_stop();
    return i;
}

/* ---- processes ---- */

static char *execve_args[] = { "/usr/bin/true", NULL };

uintmax_t timing_fork(uintmax_t num, uintmax_t int_arg, const char *path)
{
    pid_t pid;
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        pid = fork();
        if (pid < 0)
            err(-1, "test_fork: fork");
        if (pid == 0)
            _exit(0);
        if (waitpid(pid, NULL, 0) < 0)
            err(-1, "test_fork: waitpid");
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_fork_exec(uintmax_t num, uintmax_t int_arg, const char *path)
{
    pid_t pid;
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        pid = fork();
        if (pid < 0)
            err(-1, "test_fork_exec: fork");
        if (pid == 0) {
            (void)execve(execve_args[0], execve_args, environ);
            _exit(127);
        }
        if (waitpid(pid, NULL, 0) < 0)
            err(-1, "test_fork_exec: waitpid");
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_vfork(uintmax_t num, uintmax_t int_arg, const char *path)
{
    pid_t pid;
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        pid = vfork();
        if (pid < 0)
            err(-1, "test_vfork: vfork");
        if (pid == 0)
            _exit(0);
        if (waitpid(pid, NULL, 0) < 0)
            err(-1, "test_vfork: waitpid");
    }
    benchmark_stop();
    return i;
}

uintmax_t timing_vfork_exec(uintmax_t num, uintmax_t int_arg, const char *path)
{
    pid_t pid;
    uintmax_t i;
    (void)int_arg; (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        pid = vfork();
        if (pid < 0)
            err(-1, "test_vfork_exec: vfork");
        if (pid == 0) {
            (void)execve(execve_args[0], execve_args, environ);
            _exit(127);
        }
        if (waitpid(pid, NULL, 0) < 0)
            err(-1, "test_vfork_exec: waitpid");
    }
    benchmark_stop();
    return i;
}

/* ---- ping-pong between two processes or threads ---- */

/* A peer process: dies with its parent; stdio is not touched after fork. */
static pid_t peer(void)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        err(1, "fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
    }
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* 0 at end of file (the other side is gone), else 1; errors end the process
 * (_exit in a peer, where stdio belongs to the parent). */
static int readx(int fd, char *buf, size_t size, int child)
{
    while (size > 0) {
        ssize_t r = read(fd, buf, size);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            if (child)
                _exit(1);
            err(1, "read");
        }
        if (r == 0) {
            if (child)
                _exit(0);
            return 0;
        }
        size -= (size_t)r;
        buf += r;
    }
    return 1;
}

static void writex(int fd, const char *buf, size_t size, int child)
{
    while (size > 0) {
        ssize_t r = write(fd, buf, size);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            if (child)
                _exit(errno == EPIPE ? 0 : 1);
            err(1, "write");
        }
        size -= (size_t)r;
        buf += r;
    }
}

/* Round trips of `size` bytes each way over a pair of one-way channels
 * (to[1] -> peer, from[0] <- peer), the peer echoing. */
static uintmax_t pingpong(uintmax_t num, size_t size, int tx, int rx)
{
    char *buf = xalloc(size);
    uintmax_t i;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        writex(tx, buf, size, 0);
        if (!readx(rx, buf, size, 0))
            errx(1, "read: the other side has gone");
    }
    benchmark_stop();
    free(buf);
    return i;
}

static void echo(int rx, int tx, size_t size, int child)
{
    char *buf = malloc(size < 8 ? 8 : size);
    if (buf == NULL) {
        if (child)
            _exit(1);
        err(1, "malloc");
    }
    for (;;) {
        if (!readx(rx, buf, size, child))
            break;
        writex(tx, buf, size, child);
    }
    free(buf);
}

uintmax_t timing_pipeping(uintmax_t num, uintmax_t int_arg, const char *path)
{
    int to[2], from[2];
    (void)path;
    if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
        err(-1, "pipe");
    pid_t pid = peer();
    if (pid == 0) {
        close(to[1]);
        close(from[0]);
        echo(to[0], from[1], int_arg, 1);
        _exit(0);
    }
    close(to[0]);
    close(from[1]);
    uintmax_t i = pingpong(num, int_arg, to[1], from[0]);
    close(to[1]);
    close(from[0]);
    reap(pid);
    return i;
}

struct pipepingtd_ctx {
    int rx, tx;
    size_t size;
};

static void *pipepingtd_proc(void *arg)
{
    struct pipepingtd_ctx *c = arg;
    echo(c->rx, c->tx, c->size, 0);
    return NULL;
}

uintmax_t timing_pipepingtd(uintmax_t num, uintmax_t int_arg, const char *path)
{
    int to[2], from[2];
    pthread_t td;
    (void)path;
    if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
        err(-1, "pipe");
    struct pipepingtd_ctx ctx = { to[0], from[1], int_arg };
    int error = pthread_create(&td, NULL, pipepingtd_proc, &ctx);
    if (error != 0) {
        errno = error;
        err(1, "pthread_create");
    }
    uintmax_t i = pingpong(num, int_arg, to[1], from[0]);
    close(to[1]);               /* the echoing thread reads end of file */
    pthread_join(td, NULL);
    close(to[0]);
    close(from[0]);
    close(from[1]);
    return i;
}

/* unix(4) stream socket pair; unixping (int_arg 0) moves one byte. */
uintmax_t timing_unixping(uintmax_t num, uintmax_t int_arg, const char *path)
{
    int so[2];
    size_t size = int_arg == 0 ? 1 : int_arg;
    (void)path;
    if (socketpair(PF_LOCAL, SOCK_STREAM | SOCK_CLOEXEC, 0, so) < 0)
        err(-1, "socketpair");
    pid_t pid = peer();
    if (pid == 0) {
        close(so[0]);
        echo(so[1], so[1], size, 1);
        _exit(0);
    }
    close(so[1]);
    uintmax_t i = pingpong(num, size, so[0], so[0]);
    close(so[0]);
    reap(pid);
    return i;
}

uintmax_t timing_semaping(uintmax_t num, uintmax_t int_arg, const char *path)
{
    uintmax_t i;
    sem_t *buf;
    (void)int_arg; (void)path;
    buf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_SHARED, -1, 0);
    if (buf == MAP_FAILED)
        err(1, "mmap");
    for (int j = 0; j < 2; j++)
        if (sem_init(&buf[j], 1, 0) != 0)
            err(1, "sem_init");
    pid_t pid = peer();
    if (pid == 0) {
        for (;;) {
            while (sem_wait(&buf[0]) != 0)
                if (errno != EINTR)
                    _exit(1);
            if (sem_post(&buf[1]) != 0)
                _exit(1);
        }
    }
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        if (sem_post(&buf[0]) != 0)
            err(1, "sem_post");
        while (sem_wait(&buf[1]) != 0)
            if (errno != EINTR)
                err(1, "sem_wait");
    }
    benchmark_stop();
    reap(pid);
    for (int j = 0; j < 2; j++)
        if (sem_destroy(&buf[j]) != 0)
            err(1, "sem_destroy");
    if (munmap(buf, 4096) != 0)
        err(1, "munmap");
    return i;
}

/* Two processes sharing memory, handing the turn over with futexes and
 * copying the payload in and out on each side, as a pipe or a cocall
 * moves it from one private buffer to another (as scripts/bench/kernel's
 * futex ping-pong).  futexping (int_arg 0) moves no payload. */
struct futexpage {
    _Atomic uint32_t turn;      /* 0: the timing side's, 1: the peer's */
    uint32_t pad[15];
    unsigned char data[];
};

static void futex_wait(_Atomic uint32_t *w, uint32_t v)
{
    syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void hop(struct futexpage *p, uint32_t me, unsigned char *local, size_t size)
{
    while (atomic_load(&p->turn) != me)
        futex_wait(&p->turn, !me);
    if (size > 0) {
        memcpy(local, p->data, size);
        memcpy(p->data, local, size);
    }
    atomic_store(&p->turn, !me);
    futex_wake(&p->turn);
}

uintmax_t timing_futexping(uintmax_t num, uintmax_t int_arg, const char *path)
{
    size_t len = sizeof(struct futexpage) + int_arg;
    uintmax_t i;
    (void)path;
    struct futexpage *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_SHARED, -1, 0);
    if (p == MAP_FAILED)
        err(1, "mmap");
    unsigned char *local = xalloc(int_arg);
    pid_t pid = peer();
    if (pid == 0)
        for (;;)
            hop(p, 1, local, int_arg);
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        /* One round trip: out to the peer and back. */
        if (int_arg > 0)
            memcpy(p->data, local, int_arg);
        atomic_store(&p->turn, 1);
        futex_wake(&p->turn);
        while (atomic_load(&p->turn) != 0)
            futex_wait(&p->turn, 1);
        if (int_arg > 0)
            memcpy(local, p->data, int_arg);
    }
    benchmark_stop();
    reap(pid);
    free(local);
    munmap(p, len);
    return i;
}

/* ---- cocalls ---- */

uintmax_t timing_coping(uintmax_t num, uintmax_t int_arg, const char *path)
{
    char *buf = xalloc(int_arg);
    uintmax_t i;
    (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        if (cocall(target, buf, int_arg, buf, int_arg) < 0)
            err(1, "cocall");
    }
    benchmark_stop();
    free(buf);
    return i;
}

uintmax_t timing_coping_slow(uintmax_t num, uintmax_t int_arg, const char *path)
{
    char *buf = xalloc(int_arg);
    uintmax_t i;
    (void)path;
    benchmark_start();
    BENCHMARK_FOREACH(i, num) {
        if (cocall_slow(target, buf, int_arg, buf, int_arg) < 0)
            err(1, "cocall");
    }
    benchmark_stop();
    free(buf);
    return i;
}

ssize_t timing_cocall_once(void *t, size_t size, uint64_t word, uint64_t *reply)
{
    uint64_t *buf = xalloc(size < 8 ? 8 : size);
    buf[0] = word;
    ssize_t r = cocall(t, buf, size, buf, size);
    *reply = buf[0];
    free(buf);
    return r;
}

/* ---- the responder ---- */

void timing_pong(size_t size, int slow, int syscall_per_call)
{
    uint64_t *buf = xalloc(size < 8 ? 8 : size);
    void *cookie = NULL;
    size_t outlen = 0;
    for (;;) {
        ssize_t n = slow ? coaccept_slow(&cookie, buf, outlen, buf, size)
                         : coaccept(&cookie, buf, outlen, buf, size);
        if (n < 0) {
            warn(slow ? "coaccept_slow" : "coaccept");
            outlen = 0;
            continue;
        }
        if (syscall_per_call) {
            (void)getppid();
            if (n >= 8)
                buf[0] = ~buf[0];
        }
        outlen = (size_t)n;     /* echo what came in */
    }
}
