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
#define COLO_START_CLOSE_MAX    12                   /* descriptors a starting member closes */
#define COLO_SLOT_HEADER_SIZE   0x200000ULL          /* struct colo_slot, start-up stack, vfork areas */
#define COLO_SLOT_HEADER_RUNTIME_PART 0x10000ULL     /* what the runtime reads and writes of it: struct
                                                      * colo_slot and the re-colocation areas */
#define COLO_START_STACK_TOP    0x100000ULL          /* start-up / exec-in-place stack: [64 KiB, 1 MiB) */
#define COLO_VFORK_AREAS        0x100000ULL          /* 64 areas of 16 KiB: [1 MiB, 2 MiB) */
#define COLO_VFORK_AREA_SIZE    0x4000ULL
#define COLO_VFORK_AREA_COUNT   64
#define COLO_STACK_LIMIT_OFFSET 0x210000ULL          /* lowest address the stack may reach */
#define COLO_STACK_TOP_OFFSET   0x1FFF0000ULL        /* 512 MiB - 64 KiB guard */
#define COLO_IMAGE_OFFSET       0x20000000ULL        /* main program load bias: 512 MiB */
#define COLO_IMAGE_PACK_OFFSET  0x100000ULL          /* a program aligned to at most 1 MiB goes this
                                                      * much higher, its stack top 64 KiB below it: the
                                                      * two share a page-table page (2 MiB) */
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

/* ---- The colocation system calls (CheriBSD's numbers + 1000): one line each in
 * colo_syscalls.def, from which their numbers, dispatch, filter rules and trace formats come. ---- */
enum {
#define COLO_SYSCALL(id, name, number, served, nargs, a0, a1, a2, a3, a4, a5) COLO_SYS_##id = number,
#include "colo_syscalls.def"
#undef COLO_SYSCALL
};
/* How many there are. */
enum { COLO_SYSCALL_COUNT = 0
#define COLO_SYSCALL(id, name, number, served, nargs, a0, a1, a2, a3, a4, a5) + 1
#include "colo_syscalls.def"
#undef COLO_SYSCALL
};
/* Where a call is served, and the kinds of its arguments (colo_syscalls.def). */
enum colo_served { COLO_SERVED_RUNTIME = 1, COLO_SERVED_GUEST = 2, COLO_SERVED_SWITCHER = 3 };
enum colo_arg_kind { COLO_ARG_NONE = 0, COLO_ARG_INT, COLO_ARG_FD, COLO_ARG_PTR, COLO_ARG_CAP, COLO_ARG_STR, COLO_ARG_ARGV };
struct colo_syscall_desc {
    const char *name;
    int32_t  number;
    uint8_t  served;              /* enum colo_served */
    uint8_t  nargs;
    uint8_t  kinds[6];            /* enum colo_arg_kind */
};
/* The table, in ascending order of number (colo_abi.c checks it). */
static const struct colo_syscall_desc colo_syscalls[COLO_SYSCALL_COUNT] = {
#define COLO_SYSCALL(id, name, number, served, nargs, a0, a1, a2, a3, a4, a5) \
    { name, number, COLO_SERVED_##served, nargs, { COLO_ARG_##a0, COLO_ARG_##a1, COLO_ARG_##a2, \
                                                   COLO_ARG_##a3, COLO_ARG_##a4, COLO_ARG_##a5 } },
#include "colo_syscalls.def"
#undef COLO_SYSCALL
};
/* Entry `i`, or NULL past the end (for Swift, which sees no C arrays). */
static inline const struct colo_syscall_desc *colo_syscall_at(uint32_t i)
{
    return i < COLO_SYSCALL_COUNT ? &colo_syscalls[i] : 0;
}
/* The entry of `number`, or NULL: no libc, usable on guest threads. */
static inline const struct colo_syscall_desc *colo_syscall_of(int32_t number)
{
    for (uint32_t i = 0; i < COLO_SYSCALL_COUNT; i++)
        if (colo_syscalls[i].number == number) return &colo_syscalls[i];
    return 0;
}
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

/* Where the colocation structures outside the slot region begin: the agent's staging area,
 * the SCB area, the tables (what a fork child maps anew when it becomes an address space,
 * and what the agent keeps of the runtime's memory). */
#define COLO_RUNTIME_AREA_BASE  0x0e0000000000ULL   /* 14 TiB */

/* Is a process an address space of its own (colo_slot.space_state)?  A fork child of a
 * colocated process is not until its first colocation call that needs one (space.c). */
enum colo_space_state {
    COLO_SPACE_MEMBER = 0,      /* a member of the address space the slot belongs to */
    COLO_SPACE_FORKED = 1,      /* a fork child, still in its parent's copied mm, served by nobody */
    COLO_SPACE_STARTING = 2,    /* its runtime is starting */
    COLO_SPACE_READY = 3,       /* its runtime serves it (then MEMBER again) */
};

/* A coexecve into a fork child that is no address space yet: the runtime asks it to become
 * one with a SIGSYS queued (SI_QUEUE) with this value in the high half of sival_ptr and its
 * slot in the low half. */
#define COLO_SPACE_SIGNAL       0x434f5350U         /* "COSP" */

/* Buffers of cocall/coaccept below this address (Linux's default vm.mmap_min_addr: nothing
 * is ever mapped there) are integers cast to pointers, which on CHERI carry no tag: a cocall
 * given one fails with EPROT (EPROTO here, as <colo.h> spells it), as CheriBSD's copy from an
 * untagged capability does; a coaccept given one waits, and its copy fails when a call comes. */
#define COLO_UNTAGGED_LIMIT     0x10000ULL

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

/* What a coexecve/coexecvec trapped in a slot passes to the runtime beyond the call's six
 * arguments (COLO_EXEC_PLAN_CO/_COVEC's last argument points at it). */
struct colo_coexec_extra {
    uint64_t capv;                /* the capability vector (coexecvec), or 0 */
    int64_t  capc;                /* its length */
    int64_t  slot;                /* the caller's slot */
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
    uint32_t space_state;         /* enum colo_space_state: is the owner a fork child that is not an
                                   * address space yet? (futex while its runtime starts) */
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
    /* Dispositions of signals whose kernel handler is the switcher's
     * dispatcher (colo_signal_entry): what the guest installed (SIGSYS: see
     * guest_sigsys).  For other signals the kernel's disposition is the truth. */
    struct colo_sigaction_rec guest_actions[64];
    /* 1 once a thread attached to the switcher: the synchronous fault signals
     * (SEGV, BUS, FPE, ILL, TRAP) always go through the dispatcher. */
    uint32_t switcher_signals;
    uint32_t exe_len;
    /* The parent a starting member must have (the runtime, or a fork child's agent): with
     * another, whoever started it is gone, and it ends (start.c). */
    int32_t  start_parent;
    /* The starter's close-on-exec descriptors, which the member closes (none of them is the
     * member's): what execve would close, without reading /proc/self/fd. */
    uint32_t start_nclose;
    int32_t  start_close[COLO_START_CLOSE_MAX];
    /* What /proc/self/exe names for the process (the file the loader mapped,
     * as the kernel would name it), and the runtime's own executable, which an
     * fd opened on /proc/self/exe really refers to. */
    uint64_t runtime_exe_dev, runtime_exe_ino;
    char     exe[4096];
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
    /* The switcher's entry points in the runtime's text (struct colo_switcher),
     * which the guest library calls; 0 where a runtime has no switcher. */
    uint64_t switcher[8];
    /* The switcher's event log (see COLO_SWITCH_LOG_ADDR): events are written
     * while switch_log != 0.  Bit 0 mirrors debug.colocation_debug; every
     * `colo trace` adds COLO_SWITCH_LOG_TRACER while it traces. */
    uint32_t switch_log;
    uint32_t switch_log_pad[5];
    uint64_t switch_log_head;     /* (own cache line) number of the next event; atomic fetch-add */
    uint64_t switch_log_pad2[7];
    /* In-process tracing (see COLO_TRACE_RING_ADDR): the Syscall User
     * Dispatch selector of traced threads (COLO_TRACE_SELECTOR_ADDR; 1 while
     * a `colo trace` traces, else 0), and the runtime's text, which is exempt. */
    uint8_t  trace_selector;
    uint8_t  trace_pad[7];
    uint64_t sud_exempt_start, sud_exempt_len;
    /* A process of the address space's mm, for kcmp KCMP_VM: its agent, or the runtime where
     * the runtime lives in the mm it serves (a fork child's address space). */
    int32_t  mm_pid;
    uint32_t mm_pad;
    uint8_t  reserved[4096 - 40 - 4 * COLO_KNOB_COUNT - 64 - 88 - 24 - 8];
};
#define COLO_TRACE_SELECTOR_ADDR (COLO_TABLE_ADDR + 256)   /* &header.trace_selector (also in clone.S) */

/* ---- The switcher (fast cocall/coaccept) ------------------------------------
 * Every thread that called cosetup or coregister has a switcher control block
 * (SCB) in the SCB area, at the index of its SCB capability.  The switcher
 * code runs on guest threads; the runtime initialises an SCB when it mints the
 * capability and retires it when the thread exits.  While a caller borrows a
 * callee's context, the caller's Syscall User Dispatch selector is BLOCK, so a
 * system call made by callee code becomes SIGSYS and is handed to the callee's
 * own thread, parked in the SCB's park loop ("copark"). */
#define COLO_SCB_AREA_ADDR      0x0f0000000000ULL   /* below the process table */
#define COLO_SCB_SIZE           0x10000ULL          /* 64 KiB: state, then the park stack */
#define COLO_STAGE_SIZE         2048                /* an SCB's slow-path staging area (bytes) */
#define COLO_SCB_MAGIC          0x42435343534f4c43ULL /* "CLOSCSCB" */

/* Callee side: what a cocall to the thread finds. */
enum colo_scb_state {
    COLO_SCB_NEW = 0,       /* has never accepted: EAGAIN */
    COLO_SCB_IDLE = 1,      /* parked in a fast coaccept: its context may be borrowed */
    COLO_SCB_BUSY = 2,      /* running (its own code, or serving a call) */
    COLO_SCB_SLOW = 3,      /* accepts with coaccept_slow: EPROTOTYPE */
    COLO_SCB_DEAD = 4,      /* the thread exited: ENOLINK */
};

/* What the park loop of a callee's own thread is asked to do. */
enum colo_park_command {
    COLO_PARK_NONE = 0,
    COLO_PARK_UNBORROW = 1, /* continue the borrowed context saved in `resume` */
    COLO_PARK_ABANDON = 2,  /* the borrower died: coaccept returns EINTR here */
    COLO_PARK_RETURN = 3,   /* coaccept returns park_value here */
};

/* The low two bits of colo_scb.done. */
enum colo_call_done {
    COLO_CALL_WAITING = 0,  /* the callee's thread runs the call */
    COLO_CALL_ANSWERED = 1, /* result holds the answer */
    COLO_CALL_CANCELLED = 2,/* the caller stopped waiting (EINTR) */
    COLO_CALL_COPYING = 3,  /* the callee is writing the answer */
};

/* The callee-saved part of a context: what cocall and coaccept switch. */
struct colo_switch_context {
    uint64_t rsp, rip, rbx, rbp, r12, r13, r14, r15;
    uint64_t fsbase;
    uint32_t mxcsr;
    uint16_t fpucw, pad;
};

struct colo_scb {
    uint64_t magic;
    int32_t  pid, tid;            /* the thread it belongs to */
    uint64_t cookie;              /* its cookie (SCB capability without tag) */
    uint64_t slot;                /* address of its process's struct colo_slot */
    char    *wchan;               /* its process's WCHAN field in the table */
    /* callee side */
    uint32_t state;               /* enum colo_scb_state (atomic) */
    uint32_t park;                /* enum colo_park_command: futex of the park loop */
    struct colo_scb *caller;      /* the caller being served, or 0 */
    uint32_t caller_seq;          /* that caller's call number */
    uint32_t waiters;             /* callers asleep on `state` until it is no longer BUSY */
    int64_t  park_value;          /* what coaccept returns on COLO_PARK_RETURN */
    uint64_t cookiep, out, outlen, in, inlen;   /* arguments of the waiting coaccept */
    struct colo_switch_context accept_ctx;      /* where the waiting coaccept returns */
    /* caller side */
    uint8_t  selector;            /* Syscall User Dispatch: 0 allow, 1 block */
    uint8_t  idle_selector;       /* what `selector` is while not borrowing: 1 while traced */
    uint8_t  pad1[2];
    uint32_t seq;                 /* number of the thread's current call */
    uint32_t done;                /* futex: seq << 2 | enum colo_call_done, for an unborrowed call */
    uint32_t redeliver;           /* the callee's input buffer faulted: its next coaccept gets the request */
    struct colo_scb *borrowing;   /* the callee whose context this thread runs, or 0 */
    struct colo_scb *wake_after;  /* a callee to wake once this thread has its own context back */
    uint64_t call_out, call_outlen, call_in, call_inlen;   /* the cocall's buffers */
    int64_t  result;              /* an unborrowed call's result (bytes or -errno) */
    uint64_t saved_mask;          /* signal mask when an unborrow started */
    struct colo_switch_context call_ctx;        /* where the cocall returns */
    uint64_t pending;             /* signals that arrived while borrowing (bit sig-1) */
    uint64_t stats_calls, stats_unborrows;
    /* The last target this thread called, and the SCB it named then (valid
     * while that SCB still has the cookie it had then). */
    uint64_t last_target, last_cookie;
    struct colo_scb *last_callee;
    uint8_t  pending_info[64][128];             /* their siginfo */
    struct colo_resume resume;    /* an unborrowed context for the park loop */
    /* the event log (events.c): the current cocall's start (rdtsc; 0: not
     * logged) and its request's op */
    uint64_t log_start;
    int32_t  log_op;
    uint32_t log_pad;
    /* The slow path's staging area.  cocall_slow and coaccept_slow through the library put
     * the call's output here and name both buffers; the runtime, which maps the SCB area
     * too, then copies through it instead of between mms (process_vm_readv/writev: about
     * 1.5 us each on this VM, four a round trip).  The runtime takes the record when the
     * call arrives (stage_out/stage_in back to 0) and uses it only if it names the call's
     * own buffers; what the call receives for a named `stage_in` it puts in `stage` when it
     * fits (else in the buffer), with its length in stage_got (else -1), and the library
     * copies it to the buffer.  A call made without the library finds no record and is
     * served as before. */
    uint64_t stage_out, stage_outlen;     /* the output buffer whose bytes are in `stage` (0: none) */
    uint64_t stage_in, stage_inlen;       /* the input buffer, which may receive through `stage` (0: none) */
    int64_t  stage_got;                   /* bytes put in `stage` for stage_in, or -1 */
    uint8_t  stage[COLO_STAGE_SIZE];
};

/* ---- The switcher's event log ---------------------------------------------
 * A ring of COLO_SWITCH_LOG_EVENTS records in the SCB area's last block (the
 * last capability index, 65535, is never minted, so that block is never an
 * SCB, and the SCBs stay where they were without the log).  Any
 * thread appends: n = fetch-add(header.switch_log_head), record n % EVENTS;
 * the record's `seq` is 2n+1 while it is written and 2n+2 once complete, so a
 * reader (which copies the ring out with process_vm_readv) detects records
 * not yet written, overwritten or torn.  Times are rdtsc values: readers
 * calibrate them against CLOCK_MONOTONIC themselves. */
#define COLO_SWITCH_LOG_INDEX   65535ULL     /* COLO_CAP_TABLE_CAPACITY - 1 */
#define COLO_SWITCH_LOG_ADDR    0x0f00ffff0000ULL   /* COLO_SCB_AREA_ADDR + INDEX * COLO_SCB_SIZE */
#define COLO_SWITCH_LOG_EVENTS  1024
#define COLO_SWITCH_LOG_TRACER  2           /* what each tracer adds to switch_log */

enum colo_switch_event_kind {
    COLO_EV_CALL = 1,       /* a fast cocall ended: result = bytes received or -errno */
    COLO_EV_UNBORROW = 2,   /* callee code made system call `result`: its own thread makes it */
    COLO_EV_FAULT = 3,      /* callee code faulted (signal `result`, address `arg`): handed to the callee */
    COLO_EV_KILLED = 4,     /* the borrower (pid/tid) exited while borrowing the callee's context */
    COLO_EV_FALLBACK = 5,   /* the callee accepts with coaccept_slow: EPROTOTYPE, the call goes slow */
};

struct colo_switch_event {
    uint64_t seq;             /* 2n+1 while being written, 2n+2 once complete */
    uint64_t tsc;             /* when it happened (a call: when it ended) */
    uint64_t arg;             /* COLO_EV_CALL: tsc when it began; COLO_EV_FAULT: the faulting address */
    uint32_t kind;            /* enum colo_switch_event_kind */
    int32_t  op;              /* COLO_EV_CALL: the op of the request's capv_t header (-1: none) */
    int32_t  pid, tid;        /* the caller (borrower) */
    int32_t  peer_pid, peer_tid;   /* the callee */
    int64_t  result;          /* see the kinds */
    uint32_t out, in;         /* COLO_EV_CALL: bytes copied to the callee and back */
};

/* ---- In-process system-call tracing (colo trace) ---------------------------
 * While a `colo trace` traces an address space, its guest threads run with
 * Syscall User Dispatch, the runtime's text exempt: a thread's selector is
 * the header's trace_selector, or, on a switcher caller thread, its SCB's
 * selector (kept BLOCK by idle_selector).  A guest system call then raises
 * SIGSYS; the handler (Sources/GuestShim/trace.c) makes the call as the
 * seccomp filter would have let it happen and appends a record to the trace
 * ring: a MAP_SHARED file (the table's path + ".trace") mapped here and by
 * the tracer.  A writer claims record n = fetch-add(head); its seq is 2n+1
 * while written and 2n+2 once complete.  The reader publishes `tail` (the
 * records it has consumed); a writer whose record would overwrite an unread
 * one sleeps on tail's low word (counted in `waiters`) while the reader
 * process lives, so nothing is lost; if the reader has gone, the writer
 * switches tracing off.  Times are rdtsc values, as in the switcher's log. */
#define COLO_TRACE_RING_ADDR    0x0fe000000000ULL
#define COLO_TRACE_RECORDS      8192
#define COLO_TRACE_RECORD_SIZE  512
#define COLO_TRACE_RING_SIZE    (4096 + COLO_TRACE_RECORDS * COLO_TRACE_RECORD_SIZE)

enum colo_trace_kind {
    COLO_TRACE_CALL = 1,      /* a system call that returned `result` */
    COLO_TRACE_ENTRY = 2,     /* a call whose end is a later COLO_TRACE_RESULT of the same tid
                               * (exec, vfork), or never comes (exit, exit_group) */
    COLO_TRACE_RESULT = 3,    /* the end of the tid's COLO_TRACE_ENTRY: `result` */
    COLO_TRACE_SIGNAL = 4,    /* signal `nr` reached the thread: args[0] si_code, args[1] si_addr, args[2] si_pid */
    COLO_TRACE_WAIT = 5,      /* a process the runtime started exited, was killed or stopped:
                               * `result` is its wait status */
    COLO_TRACE_BEGIN = 6,     /* a call that may block has begun: its COLO_TRACE_CALL follows
                               * when it returns */
};

struct colo_trace_ring {
    uint64_t head;            /* the number of the next record to claim (atomic fetch-add) */
    uint64_t head_pad[7];
    uint64_t tail;            /* records the reader has consumed (its low word is a futex) */
    uint32_t waiters;         /* writers asleep on tail */
    int32_t  reader_pid;      /* the tracer; 0: none yet */
    uint32_t reader_ready;    /* futex: the tracer has mapped the ring (`colo trace -- COMMAND`
                               * waits for it before the first program starts) */
    uint32_t ready_pad;
    uint64_t tail_pad[5];
};

struct colo_trace_record {
    uint64_t seq;             /* 2n+1 while being written, 2n+2 once complete */
    uint64_t tsc;             /* when it was written (a call: when it returned) */
    uint64_t start;           /* a call: when it was trapped */
    int32_t  pid, tid;
    uint16_t kind;            /* enum colo_trace_kind */
    uint16_t data_len;        /* bytes of data used */
    int32_t  nr;              /* the system call (or signal) */
    uint64_t args[6];
    int64_t  result;
    uint16_t strings;         /* bit i: args[i]'s string is in data (NUL-terminated, in argument order) */
    uint16_t argv_count;      /* strings of an argument vector that follow (colo_trace_argv_arg) */
    uint16_t truncated;       /* 1: data was too small for every string */
    uint16_t pad;
    char     data[COLO_TRACE_RECORD_SIZE - 104];
};

/* -COLO_SWITCH_UNBORROW_FIRST from the switcher's cocall: the caller is
 * callee code running on a borrowed context; it must make any system call
 * (which moves it to its own thread) and call again. */
#define COLO_SWITCH_UNBORROW_FIRST 512

/* Index of the switcher's entry points in colo_table_header.switcher. */
enum colo_switcher_entry {
    COLO_SWITCHER_ATTACH = 0,     /* long (struct colo_scb *) */
    COLO_SWITCHER_COCALL = 1,     /* long (scb, target, out, outlen, in, inlen) */
    COLO_SWITCHER_COACCEPT = 2,   /* long (scb, cookiep, out, outlen, in, inlen) */
    COLO_SWITCHER_SELF = 3,       /* struct colo_scb *(void): the thread's SCB (GS base) */
    COLO_SWITCHER_COPY = 4,       /* long (dst, src, n, uint64_t *fault): a copy that gives
                                   * -EFAULT instead of a fault (n a multiple of 8; attached
                                   * threads only: their process's faults are dispatched) */
};

/* A raw system call: the result, or -errno.  No errno, no libc. */
long colo_syscall(long n, long a, long b, long c, long d, long e, long f);

#endif
