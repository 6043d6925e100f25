/*
 * timing_loops.h - the timed loops of syscall_timing(1) and the answering
 * loop of syscall_timing_pong, in C.
 *
 * Why C: the loops time operations of 1 to 200 ns (memcpy_8, getppid,
 * clock_gettime), so the loop itself must cost what FreeBSD's costs: a
 * volatile flag set by the SIGALRM handler, read once per iteration, and no
 * retain/release, exclusivity or bounds checks around the measured call.  The
 * peers of the ping-pong tests run in fork(2)ed children or in a second
 * thread, where only async-signal-safe code may run after fork in a process
 * that has a runtime; vfork(2) cannot be called from Swift at all.  Everything
 * else (options, the test table, -n resolution, counters, output) is Swift.
 *
 * Every test has FreeBSD's signature: run `num` iterations (or until the
 * alarm fires) with the test's integer argument and path, return how many
 * iterations ran; timing_elapsed() then gives the time they took.
 */
#ifndef TIMING_LOOPS_H
#define TIMING_LOOPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

typedef uintmax_t (*timing_fn)(uintmax_t num, uintmax_t int_arg, const char *path);

/* The alarm of each run (-s): seconds, fractions allowed; 0: none. */
void timing_set_alarm(double seconds);
/* -t: a descriptor of the ftrace marker file, or -1; the label is the test name. */
void timing_set_trace(int fd);
void timing_set_label(const char *name);
/* The target of the coping tests (resolved from -n by the caller). */
void timing_set_target(void *target);
/* -r: per-iteration samples of the last run: (iterations + 1) rows of
 * 1 + ncounters columns (nanoseconds, then the delta of each counter read
 * from the perf_event descriptors fds).  Returns 0, or -1 (ENOMEM). */
int timing_raw_setup(uintmax_t iterations, int ncounters, const int *fds);
const int64_t *timing_raw_values(void);
/* The duration of the last run (end - start, CLOCK_REALTIME). */
void timing_elapsed(struct timespec *ts);

/* perf_event_open(2) of a counter of this thread: type and config of
 * struct perf_event_attr.  A descriptor, or -1 with errno. */
int timing_perf_open(uint32_t type, uint64_t config);

/* One cocall of `size` bytes each way whose first word is `word`; the
 * first word of the reply in *reply.  What cocall returned. */
ssize_t timing_cocall_once(void *target, size_t size, uint64_t word, uint64_t *reply);

/* The answering loop of syscall_timing_pong: echo every call (as many
 * bytes as came in) from a buffer of `size` bytes; with `syscall`, make one
 * getppid(2) per call and answer with the first word complemented.
 * Never returns. */
void timing_pong(size_t size, int slow, int syscall);

/* The tests (FreeBSD's names, plus the Linux comparisons). */
uintmax_t timing_access(uintmax_t, uintmax_t, const char *);
uintmax_t timing_bad_open(uintmax_t, uintmax_t, const char *);
uintmax_t timing_chroot(uintmax_t, uintmax_t, const char *);
uintmax_t timing_clock_gettime(uintmax_t, uintmax_t, const char *);
uintmax_t timing_coping(uintmax_t, uintmax_t, const char *);
uintmax_t timing_coping_slow(uintmax_t, uintmax_t, const char *);
uintmax_t timing_create_unlink(uintmax_t, uintmax_t, const char *);
uintmax_t timing_dup(uintmax_t, uintmax_t, const char *);
uintmax_t timing_fork(uintmax_t, uintmax_t, const char *);
uintmax_t timing_fork_exec(uintmax_t, uintmax_t, const char *);
uintmax_t timing_fstat_shmfd(uintmax_t, uintmax_t, const char *);
uintmax_t timing_futexping(uintmax_t, uintmax_t, const char *);
uintmax_t timing_getpid(uintmax_t, uintmax_t, const char *);
uintmax_t timing_getppid(uintmax_t, uintmax_t, const char *);
uintmax_t timing_getpriority(uintmax_t, uintmax_t, const char *);
uintmax_t timing_getprogname(uintmax_t, uintmax_t, const char *);
uintmax_t timing_getresuid(uintmax_t, uintmax_t, const char *);
uintmax_t timing_gettimeofday(uintmax_t, uintmax_t, const char *);
uintmax_t timing_getuid(uintmax_t, uintmax_t, const char *);
uintmax_t timing_lstat(uintmax_t, uintmax_t, const char *);
uintmax_t timing_memcpy(uintmax_t, uintmax_t, const char *);
uintmax_t timing_open_close(uintmax_t, uintmax_t, const char *);
uintmax_t timing_open_read_close(uintmax_t, uintmax_t, const char *);
uintmax_t timing_pipe(uintmax_t, uintmax_t, const char *);
uintmax_t timing_pipeping(uintmax_t, uintmax_t, const char *);
uintmax_t timing_pipepingtd(uintmax_t, uintmax_t, const char *);
uintmax_t timing_read(uintmax_t, uintmax_t, const char *);
uintmax_t timing_readlink(uintmax_t, uintmax_t, const char *);
uintmax_t timing_select(uintmax_t, uintmax_t, const char *);
uintmax_t timing_semaping(uintmax_t, uintmax_t, const char *);
uintmax_t timing_setuid(uintmax_t, uintmax_t, const char *);
uintmax_t timing_shmfd(uintmax_t, uintmax_t, const char *);
uintmax_t timing_socket_stream(uintmax_t, uintmax_t, const char *);
uintmax_t timing_socket_dgram(uintmax_t, uintmax_t, const char *);
uintmax_t timing_socketpair_stream(uintmax_t, uintmax_t, const char *);
uintmax_t timing_socketpair_dgram(uintmax_t, uintmax_t, const char *);
uintmax_t timing_unixping(uintmax_t, uintmax_t, const char *);
uintmax_t timing_vfork(uintmax_t, uintmax_t, const char *);
uintmax_t timing_vfork_exec(uintmax_t, uintmax_t, const char *);

#endif
