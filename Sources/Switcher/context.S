/* context.S - continuing a saved guest context, on the switcher's terms: colo_resume (a
 * context colo_save_context kept), colo_sigreturn (the restorer of the handlers the runtime
 * installs, outside the guest region so the seccomp filter lets its rt_sigreturn through),
 * colo_on_stack (run a function on another stack). */
#define __ASSEMBLY__ 1           /* the kernel headers below: their assembler-safe part */
#include <asm/unistd_64.h>
#include <asm-generic/signal-defs.h>
#include "asm_offsets.h"

    .text
    .globl colo_sigreturn
    .type colo_sigreturn, @function
colo_sigreturn:
    mov     $__NR_rt_sigreturn, %eax
    syscall
    hlt
    .size colo_sigreturn, .-colo_sigreturn

/* colo_resume(const struct colo_resume *r): continue a saved guest context:
 * its signal mask, its extended (XSAVE) state, its general registers, and
 * rip/rflags/rsp through an iretq frame kept in the struct, so that nothing is
 * written to the guest's stack (its red zone may be live).  No return. */
    .globl colo_resume
    .type colo_resume, @function
colo_resume:
    mov     %rdi, %rbx
    lea     RESUME_MASK(%rbx), %rsi         /* rt_sigprocmask(SIG_SETMASK, &r->mask, NULL, 8) */
    mov     $SIG_SETMASK, %edi
    xor     %edx, %edx
    mov     $8, %r10d
    mov     $__NR_rt_sigprocmask, %eax
    syscall
    mov     $-1, %eax
    mov     $-1, %edx
    xrstor64 RESUME_XSAVE(%rbx)
    lea     RESUME_IRET(%rbx), %rsp         /* the iretq frame */
    mov     RESUME_R8(%rbx), %r8
    mov     RESUME_R9(%rbx), %r9
    mov     RESUME_R10(%rbx), %r10
    mov     RESUME_R11(%rbx), %r11
    mov     RESUME_R12(%rbx), %r12
    mov     RESUME_R13(%rbx), %r13
    mov     RESUME_R14(%rbx), %r14
    mov     RESUME_R15(%rbx), %r15
    mov     RESUME_RDI(%rbx), %rdi
    mov     RESUME_RSI(%rbx), %rsi
    mov     RESUME_RBP(%rbx), %rbp
    mov     RESUME_RDX(%rbx), %rdx
    mov     RESUME_RAX(%rbx), %rax
    mov     RESUME_RCX(%rbx), %rcx
    mov     RESUME_RBX(%rbx), %rbx
    iretq
    .size colo_resume, .-colo_resume

/* colo_on_stack(fn, arg, top): call fn(arg) on the stack ending at `top`.
 * fn does not return. */
    .globl colo_on_stack
    .type colo_on_stack, @function
colo_on_stack:
    mov     %rdx, %rsp
    and     $-16, %rsp
    mov     %rdi, %rax
    mov     %rsi, %rdi
    xor     %ebp, %ebp
    call    *%rax
    hlt
    .size colo_on_stack, .-colo_on_stack

    .section .note.GNU-stack,"",@progbits
