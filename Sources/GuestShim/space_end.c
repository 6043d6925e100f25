/* space_end.c - no member outlives its runtime.
 *
 * Members do not die with their parent (a background job outlives its shell, as
 * natively), so the runtime's own death must take them: when the runtime's end of
 * the agent's socket closes (killed, or ended after its last member), the agent
 * kills every process that shares the address space (kcmp KCMP_VM: the mm itself,
 * whatever a guest wrote into the tables), until there is none, and exits.  Raw
 * system calls only: it runs in the mm without a libc of its own. */
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
#include "space_end.h"


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

void colo_kill_address_space_and_exit(void)
{
    long self = sys0(SYS_getpid);
    for (int round = 0; round < 100 && kill_address_space(self) > 0; round++) {
        struct timespec ms = { 0, 1000000 };
        sys2(SYS_nanosleep, &ms, 0);
    }
    for (;;) sys1(SYS_exit_group, 0);
}
