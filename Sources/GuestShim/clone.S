/* colo_clone_start(flags, stack, ctid, fn, arg): clone(2) without libc.  The
 * child starts on `stack` and calls fn(arg); if fn returns, the child thread
 * exits (SYS_exit, status 127: a process's only thread ends the process).
 * colo_clone3_start(args, size): clone3(2) whose child pops fn and arg from
 * the top of its new stack (the caller put them there), the same way.
 * colo_jump(entry, sp): enter a program the way the kernel does after execve.
 * colo_clone_resume, colo_clone_thread: clones whose child continues a saved guest context
 * (the switcher's colo_resume, context.S). */
#define __ASSEMBLY__ 1           /* the kernel headers below: their assembler-safe part */
#include <asm/unistd_64.h>
#include "asm_constants.h"

/* A new thread of a traced address space traps its system calls too:
 * prctl(PR_SET_SYSCALL_USER_DISPATCH, ON, runtime text, selector), without
 * touching the stack (a vfork child shares its parent's).  Keeps r9. */
.macro TRACE_ENABLE_HERE
    movabs  $ASM_TRACE_SELECTOR_ADDR, %rax
    cmpb    $1, (%rax)
    jne     9f
    mov     $__NR_prctl, %eax
    mov     $ASM_PR_SET_SYSCALL_USER_DISPATCH, %edi
    mov     $ASM_PR_SYS_DISPATCH_ON, %esi
    lea     __executable_start(%rip), %rdx
    lea     etext(%rip), %r10
    sub     %rdx, %r10
    movabs  $ASM_TRACE_SELECTOR_ADDR, %r8
    syscall
9:
.endm

    .text
    .globl colo_clone_start
    .type colo_clone_start, @function
colo_clone_start:
    and     $-16, %rsi
    sub     $16, %rsi
    mov     %rcx, 0(%rsi)           /* fn */
    mov     %r8, 8(%rsi)            /* arg */
    mov     %rdx, %r10              /* ctid */
    xor     %edx, %edx              /* ptid */
    xor     %r8d, %r8d              /* tls */
    mov     $__NR_clone, %eax       /* clone(flags, stack, ptid, ctid, tls) */
    syscall
    jmp     call_in_child
    .size colo_clone_start, .-colo_clone_start

    .globl colo_clone3_start
    .type colo_clone3_start, @function
colo_clone3_start:
    mov     $__NR_clone3, %eax      /* clone3(args, size) */
    syscall
    jmp     call_in_child
    .size colo_clone3_start, .-colo_clone3_start

/* After the clone: the parent returns the child's tid (or -errno); the child
 * pops fn and arg, calls fn(arg) and exits if it returns. */
call_in_child:
    test    %rax, %rax
    jnz     1f
    xor     %ebp, %ebp
    pop     %rax
    pop     %rdi
    call    *%rax
    mov     $127, %edi
    mov     $__NR_exit, %eax
    syscall
    hlt
1:  ret

    .globl colo_jump
    .type colo_jump, @function
colo_jump:
    mov     %rsi, %rsp
    mov     %rdi, %rax
    xor     %ebx, %ebx
    xor     %ecx, %ecx
    xor     %edx, %edx              /* no rtld_fini */
    xor     %esi, %esi
    xor     %edi, %edi
    xor     %ebp, %ebp
    xor     %r8d, %r8d
    xor     %r9d, %r9d
    xor     %r10d, %r10d
    xor     %r11d, %r11d
    xor     %r12d, %r12d
    xor     %r13d, %r13d
    xor     %r14d, %r14d
    xor     %r15d, %r15d
    jmp     *%rax
    .size colo_jump, .-colo_jump

/* colo_clone_resume(flags, ctid, child): clone(2) whose child continues the guest context
 * `child` (see colo_resume) without touching the current stack (traced, if the address space
 * is); a fork child (no CLONE_VM) first leaves its parent's shared structures
 * (colo_fork_child_resumed).  The parent gets the child's tid or -errno. */
    .globl colo_clone_resume
    .type colo_clone_resume, @function
colo_clone_resume:
    mov     %rdx, %r9
    mov     %rsi, %r10              /* ctid */
    xor     %esi, %esi              /* no new stack: the child never uses it */
    xor     %edx, %edx
    xor     %r8d, %r8d
    mov     $__NR_clone, %eax
    syscall
    test    %rax, %rax
    jnz     1f
    mov     %rdi, %rbx              /* the flags (the child never returns: rbx is its own) */
    TRACE_ENABLE_HERE
    test    $ASM_CLONE_VM, %ebx     /* a vfork child: nothing to leave */
    jnz     2f
    push    %r9                     /* a fork: the child's stack is its own copy */
    mov     %r9, %rdi
    call    colo_fork_child_resumed
    pop     %r9
2:  mov     %r9, %rdi
    jmp     colo_resume
1:  ret
    .size colo_clone_resume, .-colo_clone_resume

/* colo_clone_thread(flags, sp, ptid, ctid, tls, child): clone(2) of a traced
 * thread: the child starts on `sp` (just below `child`), turns tracing on
 * for itself (dispatch is not inherited) and continues the guest context
 * `child` (see colo_resume); the parent gets the child's tid or -errno. */
    .globl colo_clone_thread
    .type colo_clone_thread, @function
colo_clone_thread:
    mov     %rcx, %r10              /* ctid */
    mov     $__NR_clone, %eax       /* clone(flags, sp, ptid, ctid, tls) */
    syscall
    test    %rax, %rax
    jnz     1f
    mov     %r9, %rbx
    call    colo_trace_enable_here
    mov     %rbx, %rdi
    jmp     colo_resume
1:  ret
    .size colo_clone_thread, .-colo_clone_thread

    .section .note.GNU-stack,"",@progbits
