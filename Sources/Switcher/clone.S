/* colo_clone_start(flags, stack, fn, arg): clone(2) without libc.  The child
 * starts on `stack`, calls fn(arg) and exits with status 127 if fn returns.
 * colo_jump(entry, sp): enter a program the way the kernel does after execve.
 * colo_sigreturn: the SIGSYS handler's restorer (outside the guest region, so
 * the seccomp filter lets its rt_sigreturn through). */
    .text
    .globl colo_clone_start
    .type colo_clone_start, @function
colo_clone_start:
    and     $-16, %rsi
    sub     $16, %rsi
    mov     %rcx, 8(%rsi)
    mov     %rdx, 0(%rsi)
    mov     $56, %eax               /* SYS_clone(flags, stack, ptid, ctid, tls) */
    xor     %edx, %edx
    xor     %r10d, %r10d
    xor     %r8d, %r8d
    syscall
    test    %rax, %rax
    jnz     1f
    xor     %ebp, %ebp
    pop     %rax
    pop     %rdi
    call    *%rax
    mov     $127, %edi
    mov     $231, %eax              /* exit_group */
    syscall
    hlt
1:  ret
    .size colo_clone_start, .-colo_clone_start

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

    .globl colo_sigreturn
    .type colo_sigreturn, @function
colo_sigreturn:
    mov     $15, %eax
    syscall
    hlt
    .size colo_sigreturn, .-colo_sigreturn

    .section .note.GNU-stack,"",@progbits
