/* asm_offsets.c - the build-time checks of asm_offsets.h against the structs it describes. */
#define _GNU_SOURCE
#include <stddef.h>
#include <ucontext.h>
#include "asm_offsets.h"
#include "colo_switch.h"

#define SAME(name, value) _Static_assert((name) == (value), #name " is not " #value)

SAME(CTX_RSP, offsetof(struct colo_switch_context, rsp));
SAME(CTX_RIP, offsetof(struct colo_switch_context, rip));
SAME(CTX_RBX, offsetof(struct colo_switch_context, rbx));
SAME(CTX_RBP, offsetof(struct colo_switch_context, rbp));
SAME(CTX_R12, offsetof(struct colo_switch_context, r12));
SAME(CTX_R13, offsetof(struct colo_switch_context, r13));
SAME(CTX_R14, offsetof(struct colo_switch_context, r14));
SAME(CTX_R15, offsetof(struct colo_switch_context, r15));
SAME(CTX_FSBASE, offsetof(struct colo_switch_context, fsbase));
SAME(CTX_MXCSR, offsetof(struct colo_switch_context, mxcsr));
SAME(CTX_FPUCW, offsetof(struct colo_switch_context, fpucw));

SAME(RESUME_R8, offsetof(struct colo_resume, gregs) + 8 * REG_R8);
SAME(RESUME_R9, offsetof(struct colo_resume, gregs) + 8 * REG_R9);
SAME(RESUME_R10, offsetof(struct colo_resume, gregs) + 8 * REG_R10);
SAME(RESUME_R11, offsetof(struct colo_resume, gregs) + 8 * REG_R11);
SAME(RESUME_R12, offsetof(struct colo_resume, gregs) + 8 * REG_R12);
SAME(RESUME_R13, offsetof(struct colo_resume, gregs) + 8 * REG_R13);
SAME(RESUME_R14, offsetof(struct colo_resume, gregs) + 8 * REG_R14);
SAME(RESUME_R15, offsetof(struct colo_resume, gregs) + 8 * REG_R15);
SAME(RESUME_RDI, offsetof(struct colo_resume, gregs) + 8 * REG_RDI);
SAME(RESUME_RSI, offsetof(struct colo_resume, gregs) + 8 * REG_RSI);
SAME(RESUME_RBP, offsetof(struct colo_resume, gregs) + 8 * REG_RBP);
SAME(RESUME_RBX, offsetof(struct colo_resume, gregs) + 8 * REG_RBX);
SAME(RESUME_RDX, offsetof(struct colo_resume, gregs) + 8 * REG_RDX);
SAME(RESUME_RAX, offsetof(struct colo_resume, gregs) + 8 * REG_RAX);
SAME(RESUME_RCX, offsetof(struct colo_resume, gregs) + 8 * REG_RCX);
SAME(RESUME_MASK, offsetof(struct colo_resume, mask));
SAME(RESUME_IRET, offsetof(struct colo_resume, iret));
SAME(RESUME_XSAVE, offsetof(struct colo_resume, xsave));
