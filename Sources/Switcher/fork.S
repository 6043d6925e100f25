/* colo_thread_start(flags, stack_top, ctid, fn, arg): clone(2) a thread that
 * calls fn(arg) on `stack_top` and then exits (SYS_exit: that thread only).
 * colo_clone3_start(args, size): clone3(2) whose child pops fn and arg from
 * the top of its new stack (the caller put them there) and calls fn(arg);
 * fn does not return (if it does, the child exits with status 127). */
    .text
    .globl colo_thread_start
    .type colo_thread_start, @function
colo_thread_start:
    and     $-16, %rsi
    sub     $16, %rsi
    mov     %rcx, 0(%rsi)           /* fn */
    mov     %r8, 8(%rsi)            /* arg */
    mov     %rdx, %r10              /* ctid */
    xor     %edx, %edx              /* ptid */
    xor     %r8d, %r8d              /* tls */
    mov     $56, %eax
    syscall
    test    %rax, %rax
    jnz     1f
    xor     %ebp, %ebp
    pop     %rax
    pop     %rdi
    call    *%rax
    xor     %edi, %edi
    mov     $60, %eax               /* exit */
    syscall
    hlt
1:  ret
    .size colo_thread_start, .-colo_thread_start

    .globl colo_clone3_start
    .type colo_clone3_start, @function
colo_clone3_start:
    mov     $435, %eax              /* clone3(args, size) */
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
    .size colo_clone3_start, .-colo_clone3_start

    .section .note.GNU-stack,"",@progbits
