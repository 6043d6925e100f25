/* capsicum.c - capability mode as a seccomp filter (see sys/capsicum.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "colo_abi.h"
#include "sys/capsicum.h"

/* cap_getmode's probe: CheriBSD's cap_getmode(2) number plus 1000, as the
 * colocation calls are numbered.  The filter answers it with ECAPMODE; the
 * runtime (or the kernel outside colocation) with ENOSYS. */
#define CAP_PROBE 1517

#define MAXINSNS 512

struct prog {
    struct sock_filter f[MAXINSNS];
    unsigned n;
};

static void emit(struct prog *p, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
    if (p->n < MAXINSNS)
        p->f[p->n++] = (struct sock_filter)BPF_JUMP(code, k, jt, jf);
}

#define REFUSE  (SECCOMP_RET_ERRNO | (ECAPMODE & SECCOMP_RET_DATA))
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))

/* Calls refused whatever their arguments. */
static const int refused[] = {
    SYS_open, SYS_creat, SYS_stat, SYS_lstat, SYS_access, SYS_readlink, SYS_mkdir, SYS_rmdir,
    SYS_unlink, SYS_rename, SYS_link, SYS_symlink, SYS_chmod, SYS_chown, SYS_lchown, SYS_utime,
    SYS_utimes, SYS_truncate, SYS_chdir, SYS_chroot, SYS_mknod, SYS_statfs, SYS_setxattr,
    SYS_lsetxattr, SYS_getxattr, SYS_lgetxattr, SYS_listxattr, SYS_llistxattr, SYS_removexattr,
    SYS_lremovexattr, SYS_uselib, SYS_swapon, SYS_swapoff, SYS_mount, SYS_umount2, SYS_pivot_root,
    SYS_acct, SYS_inotify_add_watch, SYS_fanotify_mark, SYS_quotactl, SYS_sethostname,
    SYS_setdomainname, SYS_reboot, SYS_kexec_load, SYS_kexec_file_load, SYS_init_module,
    SYS_finit_module, SYS_delete_module, SYS_open_by_handle_at, SYS_name_to_handle_at,
    SYS_bind, SYS_connect, SYS_ptrace, SYS_process_vm_readv, SYS_process_vm_writev,
    SYS_pidfd_open, SYS_kcmp, SYS_perf_event_open, SYS_fsopen, SYS_fspick, SYS_open_tree,
    SYS_move_mount, SYS_mount_setattr,
    COLO_SYS_coexecve, COLO_SYS_coexecvec, COLO_SYS_coregister, COLO_SYS_colookup, CAP_PROBE,
};

/* *at calls: the argument holding a directory descriptor (refused when it is
 * AT_FDCWD). */
static const struct { int nr, arg; } at_calls[] = {
    { SYS_openat, 0 }, { SYS_openat2, 0 }, { SYS_mkdirat, 0 }, { SYS_mknodat, 0 },
    { SYS_fchownat, 0 }, { SYS_futimesat, 0 }, { SYS_newfstatat, 0 }, { SYS_unlinkat, 0 },
    { SYS_renameat, 0 }, { SYS_renameat, 2 }, { SYS_renameat2, 0 }, { SYS_renameat2, 2 },
    { SYS_linkat, 0 }, { SYS_linkat, 2 }, { SYS_symlinkat, 1 }, { SYS_readlinkat, 0 },
    { SYS_fchmodat, 0 }, { SYS_faccessat, 0 }, { SYS_faccessat2, 0 }, { SYS_utimensat, 0 },
    { SYS_statx, 0 },
#ifdef SYS_fchmodat2
    { SYS_fchmodat2, 0 },
#endif
};

/* Signals and scheduling calls naming a process: allowed for the caller only
 * (the PID when cap_enter ran). */
static const struct { int nr, arg; } pid_calls[] = {
    { SYS_kill, 0 }, { SYS_tgkill, 0 }, { SYS_rt_sigqueueinfo, 0 }, { SYS_rt_tgsigqueueinfo, 0 },
    { SYS_pidfd_send_signal, -1 },
};

int cap_enter(void)
{
    static struct prog p;
    unsigned int mode;
    if (cap_getmode(&mode) == 0 && mode)
        return 0;
    memset(&p, 0, sizeof p);
    pid_t self = getpid();

    emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch));
    emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, AUDIT_ARCH_X86_64);
    emit(&p, BPF_RET | BPF_K, 0, 0, REFUSE);                 /* other ABIs: refused */
    emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
    emit(&p, BPF_JMP | BPF_JGE | BPF_K, 0, 1, __X32_SYSCALL_BIT);    /* x32 */
    emit(&p, BPF_RET | BPF_K, 0, 0, REFUSE);
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (uint32_t)refused[i]);
        emit(&p, BPF_RET | BPF_K, 0, 0, REFUSE);
    }
    /* sendto(2) to an address */
    emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 0, 5, SYS_sendto);
    emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(4));
    emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 0, 2, 0);
    emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(4) + 4);
    emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, 0);
    emit(&p, BPF_RET | BPF_K, 0, 0, REFUSE);
    emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
    for (size_t i = 0; i < sizeof at_calls / sizeof at_calls[0]; i++) {
        emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 0, 4, (uint32_t)at_calls[i].nr);
        emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(at_calls[i].arg));      /* the int's low word */
        emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (uint32_t)AT_FDCWD);
        emit(&p, BPF_RET | BPF_K, 0, 0, REFUSE);
        emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
    }
    for (size_t i = 0; i < sizeof pid_calls / sizeof pid_calls[0]; i++) {
        if (pid_calls[i].arg < 0) {
            emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (uint32_t)pid_calls[i].nr);
            emit(&p, BPF_RET | BPF_K, 0, 0, REFUSE);
            continue;
        }
        emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 0, 4, (uint32_t)pid_calls[i].nr);
        emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(pid_calls[i].arg));
        emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, (uint32_t)self);
        emit(&p, BPF_RET | BPF_K, 0, 0, REFUSE);
        emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
    }
    emit(&p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
    if (p.n >= MAXINSNS) {
        errno = E2BIG;
        return -1;
    }

    struct sock_fprog fp = { .len = (unsigned short)p.n, .filter = p.f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    /* Every thread of the process, as Capsicum's mode is per process. */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fp) != 0)
        return -1;
    return 0;
}

int cap_getmode(unsigned int *modep)
{
    long r = colo_syscall(CAP_PROBE, 0, 0, 0, 0, 0, 0);
    *modep = r == -ECAPMODE;
    return 0;
}

int cap_sandboxed(void)
{
    unsigned int mode = 0;
    cap_getmode(&mode);
    return mode != 0;
}
