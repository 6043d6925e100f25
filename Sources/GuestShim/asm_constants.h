/* asm_constants.h - the Linux and layout constants clone.S uses, which the kernel's headers
 * cannot give assembly (their structs are not guarded); trace.c asserts each against them. */
#ifndef COLO_SHIM_ASM_CONSTANTS_H
#define COLO_SHIM_ASM_CONSTANTS_H

#define ASM_PR_SET_SYSCALL_USER_DISPATCH 59      /* <linux/prctl.h> */
#define ASM_PR_SYS_DISPATCH_ON 1                 /* <linux/prctl.h> */
#define ASM_CLONE_VM 0x100                       /* <linux/sched.h> */
#define ASM_TRACE_SELECTOR_ADDR 0x0ff000000100   /* COLO_TRACE_SELECTOR_ADDR, colo_abi.h */

#endif
