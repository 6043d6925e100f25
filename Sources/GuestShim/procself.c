/* procself.c - a process's /proc exe link names its own program, not the runtime.
 *
 * Linux keeps /proc/PID/exe per mm, so for every member of an address space it
 * names the runtime's executable.  readlink and readlinkat of /proc/self/exe,
 * /proc/thread-self/exe, /proc/PID/exe and /proc/PID/task/TID/exe (for a PID of
 * this address space) are trapped and answered from the slot header, where the
 * runtime records the file it mapped; exec of such a path, or of a descriptor
 * opened on one (it refers to the runtime's executable), runs the process's own
 * program.  Guest memory is read and written with process_vm_readv/writev on the
 * process itself, so a bad pointer is EFAULT, never a fault in the handler. */
#define _GNU_SOURCE
#include <stddef.h>
#include <fcntl.h>
#include <signal.h>
#include <ucontext.h>
#include <linux/errno.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include "colo_sys.h"
#include "colo_layout.h"
#include "procself.h"

/* Longest /proc exe path we recognise: "/proc/" + 10 digits + "/task/" + 10 digits + "/exe". */
#define PROC_EXE_MAX 40

static long vm_copy(int write, void *local, uint64_t remote, uint64_t n)
{
    struct iovec l = { local, n }, r = { (void *)remote, n };
    return sys6(write ? SYS_process_vm_writev : SYS_process_vm_readv, sys0(SYS_getpid), (long)&l, 1, (long)&r, 1, 0);
}

/* The string at guest address `a` if it is shorter than `size`: its length, -EFAULT, or
 * -ENAMETOOLONG if it is longer (then it is no /proc exe path). */
static long read_path(char *out, uint64_t a, uint64_t size)
{
    uint64_t got = 0;
    while (got < size) {
        uint64_t n = 4096 - ((a + got) & 4095);
        if (n > size - got) n = size - got;
        if (vm_copy(0, out + got, a + got, n) != (long)n) return got ? -ENAMETOOLONG : -EFAULT;
        for (uint64_t i = got; i < got + n; i++)
            if (out[i] == 0) return (long)i;
        got += n;
    }
    return -ENAMETOOLONG;
}

/* A decimal number at *p (advanced past it), or -1. */
static long number(const char **p)
{
    long v = 0;
    int digits = 0;
    while (**p >= '0' && **p <= '9' && digits < 10) { v = v * 10 + (**p - '0'); (*p)++; digits++; }
    return digits && v > 0 ? v : -1;
}

static int prefix(const char **p, const char *s)
{
    const char *q = *p;
    while (*s) if (*q++ != *s++) return 0;
    *p = q;
    return 1;
}

/* The slot of the member of this address space with PID `pid` (the caller's own for
 * its own PID), or 0. */
static struct colo_slot *member_slot(struct colo_slot *own, long pid)
{
    if (pid == sys0(SYS_getpid)) return own;
    const struct colo_table_header *h = (const struct colo_table_header *)COLO_TABLE_ADDR;
    if (h->magic != COLO_TABLE_MAGIC) return 0;
    uint32_t n = h->max_slots < COLO_MAX_SLOTS ? h->max_slots : COLO_MAX_SLOTS;
    for (uint32_t i = 0; i < n; i++) {
        const struct colo_proc_entry *e = colo_proc_entry_at(i);
        if (e->state == COLO_PROC_RUNNING && e->pid == pid && e->slot < COLO_MAX_SLOTS)
            return colo_slot_of((uint64_t)colo_slot_at(e->slot));
    }
    return 0;
}

/* If `path` is a /proc exe link of a process of this address space, that process's slot. */
static struct colo_slot *exe_link_owner(struct colo_slot *own, const char *path)
{
    const char *p = path;
    if (!prefix(&p, "/proc/")) return 0;
    long pid;
    if (prefix(&p, "self/") || prefix(&p, "thread-self/")) {
        pid = sys0(SYS_getpid);
    } else {
        pid = number(&p);
        if (pid < 0 || !prefix(&p, "/")) return 0;
        if (prefix(&p, "task/")) {
            if (number(&p) < 0 || !prefix(&p, "/")) return 0;
        }
    }
    if (!prefix(&p, "exe") || *p) return 0;
    struct colo_slot *s = member_slot(own, pid);
    return s && s->exe_len ? s : 0;
}

long colo_do_readlink(struct colo_slot *s, long dirfd, uint64_t path, uint64_t buf, long size)
{
    char p[PROC_EXE_MAX + 1];
    long n = read_path(p, path, sizeof p);
    if (n == -EFAULT) return -EFAULT;
    struct colo_slot *owner = n > 0 && p[0] == '/' ? exe_link_owner(s, p) : 0;
    if (!owner) return sys4(SYS_readlinkat, dirfd, path, buf, size);
    if (size <= 0) return -EINVAL;
    uint64_t len = owner->exe_len < (uint64_t)size ? owner->exe_len : (uint64_t)size;
    if (vm_copy(1, owner->exe, buf, len) != (long)len) return -EFAULT;
    return (long)len;
}

const char *colo_exec_own_program(struct colo_slot *s, long dirfd, uint64_t path, long flags)
{
    char p[PROC_EXE_MAX + 1];
    long n = read_path(p, path, sizeof p);
    if (n > 0 && p[0] == '/') {
        struct colo_slot *owner = exe_link_owner(s, p);
        return owner ? owner->exe : 0;
    }
    /* execveat(fd, "", AT_EMPTY_PATH), as fexecve does: a descriptor of the runtime's
     * executable was opened on a /proc exe link. */
    if (n == 0 && (flags & AT_EMPTY_PATH) && s->exe_len && s->runtime_exe_ino) {
        struct stat st;
        if (sys2(SYS_fstat, dirfd, &st) == 0 && st.st_ino == s->runtime_exe_ino && st.st_dev == s->runtime_exe_dev)
            return s->exe;
    }
    return 0;
}
