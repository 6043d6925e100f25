/* context.c - saving a trapped guest context for colo_resume (context.S): the switcher's
 * unborrow, the guest shim's vfork and exec, the tracer's new threads. */
#define _GNU_SOURCE
#include <signal.h>
#include <ucontext.h>
#include <stddef.h>
#include <bits/sigcontext.h>
#include "colo_sys.h"
#include "colo_switch.h"

#define SIGBIT(s) (1ULL << ((s) - 1))

/* Save the trapped guest context so colo_resume() continues it with `rax`
 * (and rsp = `rsp`). */
void colo_save_context(struct colo_resume *r, const ucontext_t *uc, long rax, uint64_t rsp)
{
    const greg_t *g = uc->uc_mcontext.gregs;
    for (int i = 0; i < 23; i++) r->gregs[i] = (uint64_t)g[i];
    r->gregs[REG_RAX] = (uint64_t)rax;
    r->gregs[REG_RSP] = rsp;
    r->mask = ((const uint64_t *)&uc->uc_sigmask)[0] & ~SIGBIT(SIGSYS);
    r->iret[0] = (uint64_t)g[REG_RIP];
    r->iret[1] = 0x33;                        /* __USER_CS */
    r->iret[2] = (uint64_t)g[REG_EFL];
    r->iret[3] = rsp;
    r->iret[4] = 0x2b;                        /* __USER_DS */
    /* The frame's XSAVE image; its size is in the software-reserved bytes of
     * the legacy area (struct _fpx_sw_bytes at 464: magic1, extended_size,
     * xfeatures, xstate_size). */
    const uint8_t *fp = (const uint8_t *)uc->uc_mcontext.fpregs;
    uint32_t size = 512 + 64;
    if (*(const uint32_t *)(fp + 464) == FP_XSTATE_MAGIC1) size = *(const uint32_t *)(fp + 464 + 16);
    if (size < 512 + 64 || size > sizeof r->xsave) size = size < 512 + 64 ? 512 + 64 : sizeof r->xsave;
    colo_memcpy(r->xsave, fp, size);
}
