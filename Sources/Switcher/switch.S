/* switch.S - the switcher's context primitives (struct colo_switch_context, its offsets
 * named in asm_offsets.h) and its fault-safe copy.  No system calls here.
 *
 * colo_switch(save, load, ret, publish, value), colo_switch_back(...): save the caller's
 *   callee-saved context in `save`, continue `load` with `ret` in rax; once
 *   on the loaded stack, store `value` at `publish` if it is not NULL (so the
 *   saved context is complete before anyone else may take it).
 * colo_switch_load(load, ret): continue `load` with `ret`.  No return.
 * colo_switch_park(save, fn, arg, top): save like colo_switch, then call
 *   fn(arg) on the stack ending at `top`; fn does not return, and the saved
 *   context is continued later by someone else with colo_switch*.
 * colo_copy_user(dst, src, n, fault): copy n bytes; 0, or -EFAULT if either
 *   side faults, with the faulting address in *fault if fault is not NULL
 *   (the signal dispatcher moves a fault at colo_copy_begin..end to
 *   colo_copy_fault). */
#include "asm_offsets.h"

    .text

.macro SAVE_CONTEXT reg
    mov     (%rsp), %rax
    mov     %rax, CTX_RIP(\reg)
    lea     8(%rsp), %rax
    mov     %rax, CTX_RSP(\reg)
    mov     %rbx, CTX_RBX(\reg)
    mov     %rbp, CTX_RBP(\reg)
    mov     %r12, CTX_R12(\reg)
    mov     %r13, CTX_R13(\reg)
    mov     %r14, CTX_R14(\reg)
    mov     %r15, CTX_R15(\reg)
    rdfsbase %rax
    mov     %rax, CTX_FSBASE(\reg)
    stmxcsr CTX_MXCSR(\reg)
    fnstcw  CTX_FPUCW(\reg)
.endm

.macro LOAD_REGISTERS reg
    mov     CTX_RSP(\reg), %rsp
    mov     CTX_RBX(\reg), %rbx
    mov     CTX_RBP(\reg), %rbp
    mov     CTX_R12(\reg), %r12
    mov     CTX_R13(\reg), %r13
    mov     CTX_R14(\reg), %r14
    mov     CTX_R15(\reg), %r15
    mov     CTX_FSBASE(\reg), %rax
    wrfsbase %rax
.endm

.macro LOAD_CONTEXT reg
    LOAD_REGISTERS \reg
    ldmxcsr CTX_MXCSR(\reg)
    fldcw   CTX_FPUCW(\reg)
.endm

/* The control words of `load`, where they differ from those just saved in
 * `save` (they rarely do; loading them costs more than comparing). */
.macro LOAD_CONTROL_WORDS save, load
    mov     CTX_MXCSR(\save), %eax
    cmp     CTX_MXCSR(\load), %eax
    je      1f
    ldmxcsr CTX_MXCSR(\load)
1:  movzwl  CTX_FPUCW(\save), %eax
    cmpw    CTX_FPUCW(\load), %ax
    je      2f
    fldcw   CTX_FPUCW(\load)
2:
.endm

.macro SWITCH
    SAVE_CONTEXT %rdi
    LOAD_CONTROL_WORDS %rdi, %rsi
    LOAD_REGISTERS %rsi
    test    %rcx, %rcx
    jz      3f
    movl    %r8d, (%rcx)            /* x86 stores are ordered: the save is visible first */
3:  mov     %rdx, %rax
    jmp     *CTX_RIP(%rsi)
.endm

    .globl colo_switch
    .type colo_switch, @function
colo_switch:
    SWITCH
    .size colo_switch, .-colo_switch

/* The same, for the way back from a callee: a jump of its own, so that each
 * indirect jump keeps going to one place and stays predicted. */
    .globl colo_switch_back
    .type colo_switch_back, @function
colo_switch_back:
    SWITCH
    .size colo_switch_back, .-colo_switch_back

    .globl colo_switch_load
    .type colo_switch_load, @function
colo_switch_load:
    LOAD_CONTEXT %rdi
    mov     %rsi, %rax
    jmp     *CTX_RIP(%rdi)
    .size colo_switch_load, .-colo_switch_load

    .globl colo_switch_park
    .type colo_switch_park, @function
colo_switch_park:
    SAVE_CONTEXT %rdi
    mov     %rcx, %rsp
    and     $-16, %rsp
    mov     %rsi, %rax
    mov     %rdx, %rdi
    xor     %ebp, %ebp
    call    *%rax
    hlt
    .size colo_switch_park, .-colo_switch_park

    .globl colo_copy_user, colo_copy_begin, colo_copy_end, colo_copy_fault
    .type colo_copy_user, @function
colo_copy_user:
    mov     %rcx, %r8
    mov     %rdx, %rcx
colo_copy_begin:
    cmp     $64, %rcx               /* short and 8-byte multiples (cocall's rule): by words */
    ja      2f
    test    $7, %cl
    jnz     2f
    shr     $3, %rcx
    jz      3f
1:  mov     (%rsi), %rax
    mov     %rax, (%rdi)
    add     $8, %rsi
    add     $8, %rdi
    dec     %rcx
    jnz     1b
    jmp     3f
2:  rep movsb
colo_copy_end:
3:  xor     %eax, %eax
    ret
colo_copy_fault:                    /* the dispatcher left the faulting address in r9 */
    test    %r8, %r8
    jz      4f
    mov     %r9, (%r8)
4:  mov     $-14, %rax
    ret
    .size colo_copy_user, .-colo_copy_user

    .section .note.GNU-stack,"",@progbits
