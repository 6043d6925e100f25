/* watchdog.c - no member outlives its runtime.
 *
 * Members do not die with their parent (a background job outlives its shell, as
 * natively), so the runtime's own death must take them: the watchdog, a small
 * process in the address space started by the runtime, waits for the end of a
 * pipe that only the runtime can write to.  When the runtime is gone (killed, or
 * ended after its last member), it kills every process that shares the address
 * space (kcmp KCMP_VM: the mm itself, whatever a guest wrote into the tables),
 * until there is none, and exits.  Raw system calls only: it runs in the mm
 * without a libc of its own. */
#define _GNU_SOURCE
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/kcmp.h>
#include <linux/sched.h>
#include <linux/prctl.h>
#include <time.h>
#include "colo_sys.h"
#include "guest_shim.h"
#include "clone.h"
#include "watchdog.h"


#define WATCHDOG_STACK (64 * 1024)

struct dirent64_head { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; };

/* Kill every other process of this mm; the number found. */
static int kill_address_space(long self)
{
    int found = 0;
    long dir = sys4(SYS_openat, AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (dir < 0) return 0;
    char buf[4096];
    long n;
    while ((n = sys3(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
        for (long at = 0; at < n; ) {
            const struct dirent64_head *d = (const struct dirent64_head *)(buf + at);
            at += d->reclen;
            long pid = 0;
            const char *c = d->name;
            for (; *c >= '0' && *c <= '9'; c++) pid = pid * 10 + (*c - '0');
            if (*c || pid <= 0 || pid == self) continue;
            if (sys5(SYS_kcmp, self, pid, KCMP_VM, 0, 0) == 0) {
                sys2(SYS_kill, pid, SIGKILL);
                found++;
            }
        }
    }
    sys1(SYS_close, dir);
    return found;
}

static void watchdog(void *arg)
{
    long fd = (long)arg;
    uint64_t all = ~0ULL;
    sys4(SYS_rt_sigprocmask, SIG_SETMASK, &all, 0, 8);
    /* Only the pipe: no copy of the listener or of the write end may keep them open. */
    if (fd > 0) sys3(SYS_close_range, 0, fd - 1, 0);
    sys3(SYS_close_range, fd + 1, ~0U, 0);
    sys5(SYS_prctl, PR_SET_NAME, (long)"colo watchdog", 0, 0, 0);
    /* Nothing is ever written: the read ends (0) when the runtime's end is closed.
     * Every signal is blocked, so it is not interrupted. */
    char b;
    while (sys3(SYS_read, fd, &b, 1) > 0) {}
    colo_kill_address_space_and_exit();
}

void colo_kill_address_space_and_exit(void)
{
    long self = sys0(SYS_getpid);
    for (int round = 0; round < 100 && kill_address_space(self) > 0; round++) {
        struct timespec ms = { 0, 1000000 };
        sys2(SYS_nanosleep, &ms, 0);
    }
    for (;;) sys1(SYS_exit_group, 0);
}

int colo_watchdog_start(int read_fd)
{
    void *stack = (void *)sys6(SYS_mmap, 0, WATCHDOG_STACK, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if ((long)stack < 0 && (long)stack > -4096) return (int)(long)stack;
    /* CLONE_PARENT: the runtime's parent's child, so that the runtime, which serves
     * until it has no children left, does not wait for its own watchdog. */
    long pid = colo_clone_start(CLONE_VM | CLONE_PARENT, (char *)stack + WATCHDOG_STACK, 0,
                                watchdog, (void *)(long)read_fd);
    return (int)pid;
}
