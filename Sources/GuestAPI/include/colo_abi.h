/*
 * colo_abi.h - the binary interface between the colocation runtime, the code it
 * runs inside guest processes (Sources/Switcher) and the tools that inspect an
 * address space from outside.  Everything here is shared memory layout or a
 * number that must agree on both sides; nothing here is a function.
 */
#ifndef COLO_ABI_H
#define COLO_ABI_H

#include <stdint.h>

/* ---- Address-space layout -------------------------------------------------
 * Every colocated process owns one slot: an aligned 64 GiB range that holds its
 * image, interpreter, emulated brk heap, mmap(NULL) mappings and stack.  The slot
 * is the owner of every mapping in it (procstat's PID column, and the rule that
 * a process may not unmap or reprotect another process's memory).            */
#define COLO_SLOT_REGION_BASE   0x100000000000ULL   /* 16 TiB */
#define COLO_SLOT_SHIFT         36                  /* 64 GiB per slot */
#define COLO_SLOT_SIZE          (1ULL << COLO_SLOT_SHIFT)
#define COLO_MAX_SLOTS          256     /* [16 TiB, 32 TiB): well inside the 128 TiB user half */
#define COLO_SLOT_REGION_END    (COLO_SLOT_REGION_BASE + ((uint64_t)COLO_MAX_SLOTS << COLO_SLOT_SHIFT))

/* Offsets inside a slot.  The stack grows down from just below the program,
 * so that stack, image and brk heap of a small process share one page-table
 * page per level instead of needing one each. */
#define COLO_SLOT_HEADER_SIZE   0x200000ULL          /* struct colo_slot, start-up stack, vfork areas */
#define COLO_START_STACK_TOP    0x100000ULL          /* start-up / exec-in-place stack: [64 KiB, 1 MiB) */
#define COLO_VFORK_AREAS        0x100000ULL          /* 64 areas of 16 KiB: [1 MiB, 2 MiB) */
#define COLO_VFORK_AREA_SIZE    0x4000ULL
#define COLO_VFORK_AREA_COUNT   64
#define COLO_STACK_LIMIT_OFFSET 0x210000ULL          /* lowest address the stack may reach */
#define COLO_STACK_TOP_OFFSET   0x1FFF0000ULL        /* 512 MiB - 64 KiB guard */
#define COLO_IMAGE_OFFSET       0x20000000ULL        /* main program load bias: 512 MiB */
#define COLO_BRK_GAP            0x10000ULL           /* gap between image end and brk start */
#define COLO_BRK_LIMIT          0x200000000ULL       /* at most 8 GiB of brk heap */
#define COLO_MMAP_LO_OFFSET     0x400000000ULL       /* 16 GiB: interpreter, then mmap(NULL) */
#define COLO_MMAP_HI_OFFSET     0xF00000000ULL       /* 60 GiB */

/* The address-space table: a MAP_SHARED file mapped here in every address
 * space, and read-only by `colo ps` / `colo procstat` from outside.           */
#define COLO_TABLE_ADDR         0x0ff000000000ULL

#define COLO_SLOT_MAGIC         0x544f4c534f4c4f43ULL  /* "COLOSLOT" */
#define COLO_TABLE_MAGIC        0x45434150534f4c4fULL  /* "OLOSPACE" */
#define COLO_TABLE_VERSION      1

/* ---- System calls served by the runtime (CheriBSD's numbers + 1000). ---- */
#define COLO_SYS_coexecve       1151
#define COLO_SYS_coexecvec      1152
#define COLO_SYS_capfromfd      1167
#define COLO_SYS_captofd        1168
#define COLO_SYS_cosetup        1177
#define COLO_SYS_coregister     1178
#define COLO_SYS_colookup       1179
#define COLO_SYS_copark         1180
#define COLO_SYS_cogetpid       1193
#define COLO_SYS_cocall_slow    1548
#define COLO_SYS_coaccept_slow  1549
/* Internal: the SIGSYS handler asks the runtime to exec in place.  Reaches the
 * runtime from the handler's own code (outside the slot region) too. */
#define COLO_SYS_exec           1990
enum colo_exec_phase { COLO_EXEC_PLAN = 1, COLO_EXEC_COMMIT = 2, COLO_EXEC_PLAN_CO = 3, COLO_EXEC_PLAN_COVEC = 4 };
/* coexecvec(2) refuses vectors of this many entries or more (CheriBSD's limit). */
#define COLO_CAPV_MAX           42
enum colo_exec_plan { COLO_EXEC_NATIVE = 1, COLO_EXEC_COLOCATE = 2, COLO_EXEC_JOIN = 3 };
/* COLO_EXEC_JOIN: the runtime wrote a path and a NULL-terminated argv here, in
 * the caller's slot header, for a real execve of `colo --join`.  (It shares the
 * start-up stack's area, which only process start and exec in place use.) */
#define COLO_JOIN_ARGS_OFFSET   0x80000ULL
#define COLO_JOIN_ARGS_SIZE     0x70000ULL

/* ---- auxv entries carrying the capability vector (CheriBSD's values; Linux
 * defines neither 37 nor 38 on x86-64). ---- */
#define AT_CAPC                 37
#define AT_CAPV                 38

/* SECCOMP_RET_DATA of the colocation filter's traps, so the SIGSYS handler can
 * tell its own traps from those of a filter the guest installed itself.       */
#define COLO_TRAP_DATA          0xC01

/* ---- Per-process state, at the start of the process's slot (private anonymous
 * memory, so a fork()ed child gets its own copy). ---- */
struct colo_sigaction_rec {
    uint64_t handler, flags, restorer, mask;
};

#define COLO_FILTER_MAX 128
struct colo_sock_filter { uint16_t code; uint8_t jt, jf; uint32_t k; };

/* A saved guest context that colo_resume() continues: general registers in
 * glibc's gregs order, the signal mask, an iretq frame, the XSAVE area. */
struct colo_resume {
    uint64_t gregs[23];
    uint64_t mask;
    uint64_t iret[5];             /* rip, cs, rflags, rsp, ss */
    uint64_t pad[3];
    uint8_t  xsave[3584] __attribute__((aligned(64)));
};

/* Per-thread (tid % COLO_VFORK_AREA_COUNT) state of an emulated vfork: the
 * parent's and the child's contexts, and the stack the parent waits on. */
struct colo_vfork_area {
    struct colo_resume parent;
    struct colo_resume child;
    uint64_t flags;               /* clone flags for the child (without CLONE_VFORK) */
    uint32_t done;                /* futex: the child's tid until it execs or exits */
};

/* What exec in place carries from the old program to the new one. */
struct colo_exec_ctx {
    uint64_t mask;                /* the signal mask, kept across exec */
    uint32_t *vfork_done;         /* a vfork parent to release, or NULL */
    int32_t  slot;                /* the slot the runtime put the program in */
    int32_t  pad;
};

struct colo_slot {
    uint64_t magic;
    uint32_t index;
    int32_t  runtime_pid;
    int32_t  owner_pid;           /* the process the slot belongs to */
    int32_t  pad2;
    struct colo_exec_ctx exec;
    /* emulated program break */
    uint64_t brk_start, brk_cur, brk_mapped_end, brk_limit;
    /* mmap(NULL) placement inside the slot (next fit) */
    uint64_t mmap_lo, mmap_hi, mmap_cursor;
    /* the guest's own SIGSYS disposition, which the runtime's handler shadows */
    struct colo_sigaction_rec guest_sigsys;
    /* start-up: what the trampoline does before jumping to the program */
    uint64_t entry, initial_sp;
    uint64_t ignored_signals;       /* bit (sig-1): keep SIG_IGN across the "exec" */
    uint64_t signal_mask;           /* initial blocked set (SIGSYS never in it) */
    char     comm[16];              /* PR_SET_NAME */
    int32_t  stdio[3];              /* fds to dup2 onto 0,1,2 (-1: keep) */
    int32_t  set_creds;             /* 1: switch to uid/gid below */
    uint32_t uid, gid;
    char     cwd[512];              /* chdir here first ("" keeps the cwd) */
    int32_t  start_error;           /* errno if start-up failed before the jump */
    int32_t  start_step;            /* which start-up step failed */
    uint64_t stats_traps;           /* SIGSYS traps served for this process */
};

/* ---- The address-space table (shared file) ---- */
enum colo_proc_state { COLO_PROC_FREE = 0, COLO_PROC_STARTING = 1, COLO_PROC_RUNNING = 2 };

#define COLO_PATH_LEN    512
#define COLO_CMDLINE_LEN 1024
#define COLO_WCHAN_LEN   16
#define COLO_MAX_IMAGES  2

struct colo_image_rec {           /* one ELF object the loader mapped */
    uint64_t base, start, end;    /* load bias and mapped span */
    char     path[COLO_PATH_LEN];
};

struct colo_proc_entry {
    int32_t  pid;
    int32_t  ppid;
    uint32_t state;
    uint32_t slot;
    uint64_t start_ns;            /* CLOCK_REALTIME at start */
    uint64_t brk_start;
    char     wchan[COLO_WCHAN_LEN];
    struct colo_image_rec images[COLO_MAX_IMAGES];   /* [0] program, [1] interpreter */
    uint32_t cmdline_len;         /* NUL-separated argv, as executed */
    uint32_t pad;
    char     cmdline[COLO_CMDLINE_LEN];
};

/* Knobs of an address space (CheriBSD's sysctls), kept in its table so that
 * `colo sysctl` can read and set them from outside. */
enum colo_knob {
    COLO_KNOB_OPPORTUNISTIC_COEXECVE = 0,   /* kern.opportunistic_coexecve, default 1 */
    COLO_KNOB_OPPORTUNISTIC_CAPV = 1,       /* kern.opportunistic_capv, default 1 */
    COLO_KNOB_ALLOW_COLOOKUP = 2,           /* security.bsd.allow_colookup, default 1 */
    COLO_KNOB_COUNREGISTER_ON_EXIT = 3,     /* debug.counregister_on_exit, default 1 */
    COLO_KNOB_COLOCATION_DEBUG = 4,         /* debug.colocation_debug, default 0 */
    COLO_KNOB_COUNT = 16
};

struct colo_table_header {
    uint64_t magic;
    uint32_t version;
    int32_t  runtime_pid;
    uint64_t vmaddr;              /* identity of the address space (ps -o vmaddr) */
    uint32_t max_slots;
    uint32_t entry_size;
    uint64_t created_ns;
    int32_t  knobs[COLO_KNOB_COUNT];
    uint8_t  reserved[4096 - 40 - 4 * COLO_KNOB_COUNT];
};

/* A raw system call: the result, or -errno.  No errno, no libc. */
long colo_syscall(long n, long a, long b, long c, long d, long e, long f);

#endif
