/* plan.c - applies a mapping plan (colo_plan.h) in the calling process's mm, with raw system
 * calls only: the runtime uses it for every program it loads, and a fork child becoming an
 * address space uses it, in its SIGSYS handler, to map the runtime that will serve it. */
#include <stddef.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/errno.h>
#include "colo_plan.h"
#include "colo_sys.h"

static long map(uint64_t addr, uint64_t len, long prot, long flags, long fd, uint64_t off)
{
    return sys6(SYS_mmap, addr, len, prot, flags, fd, off);
}

/* Is the plan whole: its operations and data inside `size` bytes? */
static int well_formed(const struct colo_plan *p, uint64_t size)
{
    if (size < sizeof *p || p->magic != COLO_PLAN_MAGIC || p->size != size) return 0;
    uint64_t ops_end = sizeof *p + (uint64_t)p->nops * sizeof(struct colo_plan_op);
    if (p->nops > 4096 || ops_end > size || p->data_len != size - ops_end) return 0;
    for (uint32_t i = 0; i < p->nops; i++) {
        const struct colo_plan_op *o = &p->ops[i];
        if (o->kind == COLO_PLAN_COPY && (o->offset > p->data_len || o->len > p->data_len - o->offset)) return 0;
    }
    return 1;
}

static void undo(const struct colo_plan *p, uint32_t upto)
{
    for (uint32_t i = 0; i < upto; i++)
        if (p->ops[i].kind == COLO_PLAN_RESERVE) sys2(SYS_munmap, p->ops[i].addr, p->ops[i].len);
}

long colo_plan_apply(const struct colo_plan *p, uint64_t size, uint32_t *failed)
{
    if (!well_formed(p, size)) { *failed = p->nops; return -EINVAL; }
    const uint8_t *data = (const uint8_t *)&p->ops[p->nops];
    long zero = -1, r = 0;
    uint32_t i;
    for (i = 0; i < p->nops && r >= 0; i++) {
        const struct colo_plan_op *o = &p->ops[i];
        switch (o->kind) {
        case COLO_PLAN_RESERVE:
            r = map(o->addr, o->len, o->prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | o->flags, -1, 0);
            if (r >= 0 && (uint64_t)r != o->addr) {     /* a kernel that ignores MAP_FIXED_NOREPLACE */
                sys2(SYS_munmap, r, o->len);
                r = -ENOMEM;
            } else if (r < 0) {
                r = -ENOMEM;
            }
            break;
        case COLO_PLAN_FILE:
            r = map(o->addr, o->len, o->prot, MAP_PRIVATE | MAP_FIXED, o->fd, o->offset);
            break;
        case COLO_PLAN_ANON:
            r = map(o->addr, o->len, o->prot, MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
            break;
        case COLO_PLAN_ZERO:
            if (zero < 0) zero = sys4(SYS_openat, AT_FDCWD, "/dev/zero", O_RDONLY | O_CLOEXEC, 0);
            r = zero < 0 ? zero : sys3(SYS_read, zero, o->addr, o->len);
            if (r >= 0 && (uint64_t)r != o->len) r = -EFAULT;
            if (r < 0 && !o->flags) r = 0;
            break;
        case COLO_PLAN_COPY:
            colo_memcpy((void *)o->addr, data + o->offset, o->len);
            break;
        default:
            r = -EINVAL;
        }
    }
    if (zero >= 0) sys1(SYS_close, zero);
    if (r < 0) {
        *failed = i - 1;
        undo(p, i - 1);
        return r;
    }
    return 0;
}
