/* asm_offsets.h - the offsets into C structs that the assembly uses (switch.S, clone.S), as
 * names; asm_offsets.c asserts each against the struct it describes, so a changed struct
 * fails the build instead of corrupting a context. */
#ifndef COLO_ASM_OFFSETS_H
#define COLO_ASM_OFFSETS_H

/* struct colo_switch_context (colo_abi.h) */
#define CTX_RSP     0
#define CTX_RIP     8
#define CTX_RBX     16
#define CTX_RBP     24
#define CTX_R12     32
#define CTX_R13     40
#define CTX_R14     48
#define CTX_R15     56
#define CTX_FSBASE  64
#define CTX_MXCSR   72
#define CTX_FPUCW   76

/* struct colo_resume (colo_abi.h): gregs[] in <sys/ucontext.h>'s REG_* order, then the mask,
 * the iretq frame and the XSAVE image */
#define RESUME_R8   (0 * 8)
#define RESUME_R9   (1 * 8)
#define RESUME_R10  (2 * 8)
#define RESUME_R11  (3 * 8)
#define RESUME_R12  (4 * 8)
#define RESUME_R13  (5 * 8)
#define RESUME_R14  (6 * 8)
#define RESUME_R15  (7 * 8)
#define RESUME_RDI  (8 * 8)
#define RESUME_RSI  (9 * 8)
#define RESUME_RBP  (10 * 8)
#define RESUME_RBX  (11 * 8)
#define RESUME_RDX  (12 * 8)
#define RESUME_RAX  (13 * 8)
#define RESUME_RCX  (14 * 8)
#define RESUME_MASK 184
#define RESUME_IRET 192
#define RESUME_XSAVE 256

#endif
